"""One read of a stack answers the drift checks of all its objects.

The drift sweep (operator/sweep.py) checks every object once per `drift_interval`. Planned one
object at a time, a pass over 1,000 objects made a plan (and its reads) per object, about 2.3
calls each, where a no-op `apply` of the same stack through the CLI reads it in about a dozen
calls (every read is batched, 100 resources a call). So the checks of one stack share a plan
of the whole stack: the first check of a pass makes it (one at a time: checks that come
meanwhile wait for it), and the checks after it take their object's part, until the pass ends
(`clear`) or `drift_interval` has passed. A drift made by hand is thus noticed within one
interval, and a drift found is reconciled as before, planned on its own.

The plan answers for an object only as long as it is right about it: the object and what it
refers to (directly or not) have the specs the plan was made from, and the operator has not
written to any of them since the plan's reads began. Any other object is planned on its own
until the next pass. Writes and new specs elsewhere in the stack do not make the plan again:
while hundreds of objects were created, every write remade it (a read and a validation of the
whole stack, held in memory, up to dozens at a time at 500 objects: 45 MiB more RSS and 2,400
calls for 250 objects created, bench_operator.py), where a pass needs one.

Only what a whole-stack plan answers exactly as the object's own plan would is batched: valid
objects with every reference in the namespace, Ready and Synced, and without an annotation
that changes how they are planned (adopt, drain or force); a run kind (a pipeline or task) is
only in the plan as what another object refers to. Anything else (or a plan that cannot be
made) is planned on its own, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine import conditions as c
from reconciler.engine.context import Context
from reconciler.engine.planner import plan_apply
from reconciler.engine.reconcile import Result, part_of, reconcile
from reconciler.engine.runs import is_run_kind
from reconciler.engine.status import resource_fields, resource_readiness
from reconciler.engine.types import Plan
from reconciler.manifests.validate import ResourceSet, validate_documents
from reconciler.operator.draft import Draft
from reconciler.operator.objects import Summary, document
from reconciler.operator.waking import objects_index
from reconciler.registry import models

Place = tuple[str, str]  # (namespace, stack)
Key = tuple[str, str]  # (kind, name)


@dataclass
class _Pass:
    made: float
    digests: dict[Key, str]  # the specs the plan is of
    refs: dict[Key, tuple[Key, ...]]
    task: asyncio.Future[Plan]
    written: set[Key] = field(default_factory=set)  # by the operator since the reads began

    def answers(self, key: Key, members: dict[Key, Summary]) -> bool:
        """Whether the plan is right about `key`: it and all it refers to are as planned."""
        todo, seen = [key], set()
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen.add(k)
            member = members.get(k)
            if k in self.written or member is None or self.digests.get(k) != member.digest:
                return False
            todo.extend(self.refs.get(k, ()))
        return True


def stack_members(indices: dict[str, Any], namespace: str, stack: str) -> dict[Key, Summary]:
    """Every object of the stack in the namespace, as kopf's indices hold them."""
    found: dict[Key, Summary] = {}
    for kind in models():
        for (ns, name), store in indices[objects_index(kind)].items():
            summary = next(iter(store), None)
            if ns == namespace and summary is not None and summary.stack == stack:
                found[(kind, name)] = summary
    return found


def batchable(summary: Summary) -> bool:
    """Planned in the stack's plan exactly as on its own (see the module's docstring)."""
    return (
        summary.valid
        and summary.ready
        and not summary.waiting
        and summary.plain
        and not is_run_kind(summary.kind)
    )


def stack_choice(members: dict[Key, Summary]) -> tuple[list[Summary], str] | None:
    """The batchable objects with everything they refer to, and a digest of their specs (cheap:
    every tick computes it); None if a reference is missing."""
    chosen: dict[Key, Summary] = {k: s for k, s in members.items() if batchable(s)}
    todo = [ref for s in chosen.values() for ref in s.refs]
    while todo:
        ref = todo.pop()
        if ref in chosen:
            continue
        dep = members.get(ref)
        if dep is None or not dep.valid:
            return None
        chosen[ref] = dep
        todo.extend(dep.refs)
    if not chosen:
        return None
    digest = hashlib.sha256(
        "\n".join(f"{k[0]}/{k[1]}/{s.digest}" for k, s in sorted(chosen.items())).encode()
    ).hexdigest()
    return list(chosen.values()), digest


class DriftPasses:
    """The stacks' shared plans, one per (namespace, stack), made at most once an interval."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._passes: dict[Place, _Pass] = {}

    def clear(self) -> None:
        """A pass begins or has ended: its plans are not needed any more."""
        self._passes.clear()

    def wrote(self, place: Place, changed: bool = True, key: Key | None = None) -> None:
        """The operator wrote to `key` of the stack (or may have; None: to what, it cannot
        tell): the plan no longer answers for it, nor for what refers to it. A reconcile that
        changed nothing keeps it (while objects are created, most do not)."""
        if not changed:
            return
        current = self._passes.get(place)
        if key is None:
            self._passes.pop(place, None)
        elif current is not None:
            current.written.add(key)

    async def plan(
        self,
        place: Place,
        members: dict[Key, Summary],
        make: Callable[[ResourceSet], Awaitable[Plan]],
        key: Key | None = None,
    ) -> Plan | None:
        """The stack's plan, made now or earlier in this pass, if it answers for `key` (None:
        for every member); else None: plan the object alone."""
        now = self._clock()
        current = self._passes.get(place)
        if (
            current is None
            or now - current.made >= self.interval
            or (current.task.done() and (current.task.cancelled() or current.task.exception()))
        ):
            found = stack_choice(members)
            if found is None:
                return None
            chosen = found[0]
            try:  # once a pass: validating 1,000 objects on every tick would cost O(N²)
                declared = validate_documents([document(s.manifest) for s in chosen])
            except Exception:  # a problem of the set (two objects at odds): each on its own
                return None
            digests = {(s.kind, s.name): s.digest for s in chosen}
            refs = {(s.kind, s.name): s.refs for s in chosen}
            current = _Pass(now, digests, refs, asyncio.ensure_future(make(declared)))
            self._passes[place] = current
        keys = [key] if key is not None else list(members)
        if not all(current.answers(k, members) for k in keys):
            return None
        try:
            plan = await asyncio.shield(current.task)
        except Exception:  # AWS unreachable: the object's own check says so
            return None
        # Written while the plan was being made: its reads may be from before the write.
        return plan if all(current.answers(k, members) for k in keys) else None


async def drift_result(
    passes: DriftPasses,
    indices: dict[str, Any],
    summary: Summary,
    ctx: Context,
    declared: ResourceSet,
    call: Callable[..., Awaitable[Any]],
) -> Result:
    """The object's drift check: its part of the stack's shared plan when it is in it as the
    object now is (`summary`, made from its body as read), else a plan of its own."""
    key = (summary.kind, summary.name)
    members = stack_members(indices, summary.namespace, summary.stack)
    indexed = members.get(key)
    if batchable(summary) and indexed is not None and indexed.digest == summary.digest:
        place = (summary.namespace, summary.stack)
        plan = await passes.plan(place, members, lambda whole: call(plan_apply, ctx, whole), key)
        if plan is not None:
            return part_of(plan, key)
    result: Result = await call(reconcile, ctx, declared, key, True)
    return result


def observe(kind: str, result: Result, key: Key, draft: Draft) -> None:
    """What a read of AWS changes in the object's status: its fields (ARN, AWS status...) and,
    while it is Synced, its readiness."""
    observed = result.plan.observed.get(key)
    draft.after.update(resource_fields(result.plan, key))
    if not is_run_kind(kind) and draft.synced():
        draft.put(c.READY, *resource_readiness(kind, observed))
