"""The drift sweep: one loop per operator checks every object once per `drift_interval`.

kopf's timers were per object: kopf keeps a task, a daemon record, a stopper, a logger and the
object's last body for each, for as long as the object exists, about half of what the operator
held per object (issue #9: at most 150 MB with 1,000 objects; benchmarks/README.md). Without
timers kopf keeps no body at all: the sweep works from the objects index, whose summaries
(operator/objects.py) already hold each object's manifest, readiness and status fields.

Each pass, for each object:
- an object that is Ready, Synced at its generation and in its stack's shared plan
  (operator/drift.py), and whose index entry shows the status the operator last wrote, is
  checked there, without a Kubernetes call: if its part of the plan writes nothing and its
  status would stay as served, nothing more happens (a no-op pass makes the CLI's reads and
  no patch);
- an invalid spec, an object being deleted, a finished run, or one a handler is busy with is
  left alone (an edit, the delete handler or that handler acts on it);
- anything else (drift found, a status to update, an object waiting or not ready, a run to
  follow, an object the shared plan does not answer for) is read from the API server and
  converged as kopf's timer did, its status written with one merge patch. A TemporaryError
  retries it after its delay, as kopf would; other failures wait for the next pass.

kopf pauses an operator that another replica with a higher priority (or none, when peering
is mandatory and missing) outranks: it stops the watches and every daemon. A sweep is no kopf
daemon, so it asks `kube.PausingMemories`: kopf's own per-object memories, through which
kopf's daemon killer goes every second while paused; a paused operator neither reads nor
writes AWS from the sweep.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from reconciler.engine.context import Context
from reconciler.engine.planner import plan_apply
from reconciler.engine.reconcile import part_of
from reconciler.engine.runs import is_run_kind
from reconciler.engine.status import run_finished
from reconciler.operator import kube
from reconciler.operator.draft import Draft
from reconciler.operator.drift import DriftPasses, Key, Place, batchable, observe, stack_members
from reconciler.operator.memory import KeyedLocks
from reconciler.operator.objects import STACK_LABEL, Summary
from reconciler.operator.waking import objects_index, referrers_index
from reconciler.registry import models

logger = logging.getLogger(__name__)

SLOW_AT_ONCE = 16  # objects converged at once by a pass (the engine's pool bounds AWS calls)

# converge(kind, body, patch, indices, retry): the timer's handling of one object.
Converge = Callable[[str, kopf.Body, kopf.Patch, Mapping[str, Any], int], Awaitable[None]]


def operator_indices(kw: Mapping[str, Any]) -> dict[str, Any]:
    """Only kopf's indices out of a handler's kwargs (its body must not be kept)."""
    ids = [f(kind) for kind in models() for f in (objects_index, referrers_index)]
    return {i: kw[i] for i in ids if i in kw}


def served_draft(summary: Summary) -> Draft:
    served = json.loads(summary.status)
    return Draft(served, json.loads(summary.status), summary.generation)


def skipped(summary: Summary, draft: Draft) -> bool:
    """Nothing for a pass to do: only an edit can change an invalid spec (no AWS call, as the
    timer did), the delete handler has a deleted object, and a finished run at its generation
    is never read again."""
    if not summary.valid or summary.deleting:
        return True
    return (
        is_run_kind(summary.kind)
        and draft.current
        and draft.synced()
        and run_finished(draft.after)
        and bool(draft.after.get("runId"))
    )


def quiet(summary: Summary, draft: Draft, plan: Any) -> bool:
    """Its part of the shared plan writes nothing, waits for nothing, and leaves its status
    as served: nothing to patch, no event."""
    key = (summary.kind, summary.name)
    result = part_of(plan, key)
    if result.waiting_for or result.blocked or any(a.verb.writes for a in result.actions):
        return False
    observe(summary.kind, result, key, draft)
    return not draft.delta()


def plain_body(summary: Summary) -> dict[str, Any]:
    """What the engine's context needs of a batchable object (no annotation matters)."""
    labels = {STACK_LABEL: summary.stack}
    meta = {"name": summary.name, "namespace": summary.namespace, "labels": labels}
    return {"kind": summary.kind, "metadata": meta}


@dataclass
class Sweep:
    """The operator's drift loop; `run` until cancelled."""

    interval: float
    passes: DriftPasses
    locks: KeyedLocks
    settings: kopf.OperatorSettings
    converge: Converge
    context: Callable[[Any], Context]
    call: Callable[..., Awaitable[Any]]
    written: Callable[[str], dict[str, Any] | None]  # the status last written, if recent
    paused: Callable[[], bool] = lambda: False
    _retries: dict[str, int] = field(default_factory=dict)  # uid -> retry, while failing
    _later: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # uid -> its retry

    @classmethod
    def of(cls, op: Any) -> Sweep:
        """The sweep of an operator (handlers.Operator: its locks, plans, engine calls)."""
        return cls(
            op.drift_interval,
            op.drift,
            op._locks,
            op.settings,
            lambda kind, body, patch, indices, retry: op.converge(
                kind, body, patch, indices, timer=True, retry=retry
            ),
            op._context,
            op._call,
            op._written.get,
            op.memories.paused,
        )

    async def run(self, indices: Mapping[str, Any]) -> None:
        """A pass every `interval` seconds, the first one interval from now (as kopf's timers
        began); a pass that takes longer than that is followed by the next one at once."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + self.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            if self.paused():
                continue
            try:
                await self.sweep(indices)
            except Exception:  # a bug must not end drift detection for the process's life
                logger.exception("drift sweep failed; trying again in %ss", self.interval)

    async def sweep(self, indices: Mapping[str, Any]) -> None:
        """One pass over every object the indices hold (see the module's docstring)."""
        self.passes.clear()  # each pass reads AWS afresh
        members: dict[Place, dict[Key, Summary]] = {}
        slow: list[Summary] = []
        for kind in models():
            for store in list(indices[objects_index(kind)].values()):
                summary = next(iter(store), None)
                if summary is None or summary.uid in self._later:
                    continue
                if self.paused():
                    return
                if not await self._quiet(summary, indices, members):
                    slow.append(summary)
        gate = asyncio.Semaphore(SLOW_AT_ONCE)

        async def one(summary: Summary) -> None:
            async with gate:
                await self.converge_one(summary.kind, summary.namespace, summary.name, indices)

        await asyncio.gather(*(one(s) for s in slow))
        self.passes.clear()  # what the plan holds is not needed until the next pass

    async def _quiet(
        self,
        summary: Summary,
        indices: Mapping[str, Any],
        members: dict[Place, dict[Key, Summary]],
    ) -> bool:
        """True if the object needs nothing this pass (no Kubernetes call made for it)."""
        draft = served_draft(summary)
        if skipped(summary, draft) or summary.uid in self.locks:
            return True  # a handler busy with it checks it as it goes
        if not (batchable(summary) and draft.synced() and draft.current):
            return False
        sent = self.written(summary.uid)
        if sent is not None and sent != draft.before:
            return False  # the index does not show the status last written yet
        place = (summary.namespace, summary.stack)
        if place not in members:
            members[place] = stack_members(indices, *place)
        ctx = self.context(plain_body(summary))
        key = (summary.kind, summary.name)
        plan = await self.passes.plan(
            place, members[place], lambda whole: self.call(plan_apply, ctx, whole), key
        )
        return plan is not None and quiet(summary, draft, plan)

    async def converge_one(
        self, kind: str, namespace: str, name: str, indices: Mapping[str, Any]
    ) -> None:
        """What kopf's timer did for one object: converge it as it is now, write its status."""
        if self.paused():
            return
        raw = await kube.get(self.settings, kind, namespace, name)
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            return
        body, patch = kopf.Body(raw), kopf.Patch()
        uid = str(body.metadata.uid)
        retry = self._retries.get(uid, 0)
        delay: float | None = None
        try:
            await self.converge(kind, body, patch, indices, retry)
            self._retries.pop(uid, None)
        except kopf.TemporaryError as exc:
            delay = exc.delay
        except kopf.PermanentError:
            self._retries.pop(uid, None)
        except Exception as exc:  # as kopf's timers: logged, tried again by the next pass
            logger.warning("drift check of %s %s/%s failed: %s", kind, namespace, name, exc)
            self._retries.pop(uid, None)
        status = patch.get("status")
        if status:
            await kube.merge_patch(
                self.settings, kind, namespace, name, {"status": status}, "status"
            )
        if delay is not None:
            self._retries[uid] = retry + 1
            self._later[uid] = asyncio.create_task(
                self._retry(delay, uid, kind, namespace, name, indices)
            )

    async def _retry(
        self, delay: float, uid: str, kind: str, namespace: str, name: str, indices: Any
    ) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._later.pop(uid, None)
        await self.converge_one(kind, namespace, name, indices)

    def forget(self, uid: str) -> None:
        """The object is gone: its retry, if any, too."""
        self._retries.pop(uid, None)
        task = self._later.pop(uid, None)
        if task is not None:
            task.cancel()

    def stop(self) -> None:
        for task in list(self._later.values()):
            task.cancel()
        self._later.clear()
