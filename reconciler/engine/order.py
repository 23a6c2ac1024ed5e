"""The order of a plan, from the references models declare: nothing is hand-kept per kind.

- Resources are planned after what they refer to (`topological`), so a queue's plan knows the
  name its compute environment will have.
- An action that creates or changes a resource runs after the creating and changing actions
  of everything that resource refers to, directly or not (a run is submitted once its queue,
  the queue's environments and its job definitions are in place).
- Deletes go in reverse: deleting something waits for every action of the resources that use
  it, by declared reference or, as observed in AWS, by what they use now (an environment is
  deleted only after the queue that pointed at it has been re-pointed or deleted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from reconciler.engine.types import Action, Plan, Verb
from reconciler.models.common import Resource

Key = tuple[str, str]


def topological(resources: Iterable[Resource]) -> list[Resource]:
    """Resources with everything they refer to first; otherwise in the order given."""
    items = list(resources)
    by_key = {r.key: r for r in items}
    out: list[Resource] = []
    state: dict[Key, int] = {}  # 1 visiting, 2 done

    def visit(res: Resource) -> None:
        if state.get(res.key):
            return  # done, or a cycle (validation reports cycles; order is then best effort)
        state[res.key] = 1
        for kind, name, _path in res.references():
            dep = by_key.get((kind, name))
            if dep is not None:
                visit(dep)
        state[res.key] = 2
        out.append(res)

    for res in items:
        visit(res)
    return out


def _closure(plan: Plan) -> dict[Key, set[Key]]:
    """Everything each declared resource refers to, directly or not."""
    direct = {
        key: {(k, n) for k, n, _ in res.references() if (k, n) in plan.desired}
        for key, res in plan.desired.items()
    }
    out: dict[Key, set[Key]] = {}
    for key in direct:
        seen: set[Key] = set()
        todo = list(direct[key])
        while todo:
            dep = todo.pop()
            if dep not in seen and dep != key:
                seen.add(dep)
                todo.extend(direct.get(dep, ()))
        out[key] = seen
    return out


def _users(plan: Plan, kinds: dict[str, Any]) -> dict[Key, set[Key]]:
    """(kind, name or AWS name) of a resource -> the resources using it, declared or live."""
    users: dict[Key, set[Key]] = defaultdict(set)
    for key, res in plan.desired.items():
        for kind, name, _ in res.references():
            users[(kind, name)].add(key)
            users[(kind, plan.targets.get((kind, name), name))].add(key)
    for kind_name, live in plan.observed_all.items():
        kind = kinds.get(kind_name)
        for o in live:
            if kind is None or o.owner is None or not o.owned_by(plan.stack):
                continue
            for used in kind.observed_refs(o):
                users[used].add((kind_name, o.owner.name))
    return users


def link(plan: Plan, kinds: dict[str, Any]) -> None:
    """Adds to each action's `after` the actions it must wait for."""
    by_key: dict[Key, list[Action]] = defaultdict(list)
    for a in plan.actions:
        if a.verb.runs:
            by_key[(a.kind, a.name)].append(a)
    closure = _closure(plan)
    for key, actions in by_key.items():
        before = [
            b.id
            for dep in closure.get(key, ())
            for b in by_key.get(dep, ())
            if b.verb is not Verb.DELETE
        ]
        for a in actions:
            if a.verb is not Verb.DELETE:
                a.after.update(before)
    users = _users(plan, kinds)
    for a in plan.actions:
        if a.verb is not Verb.DELETE:
            continue
        using = users.get((a.kind, a.aws_name), set()) | users.get((a.kind, a.name), set())
        for user in using - {(a.kind, a.name)}:
            a.after.update(b.id for b in by_key.get(user, ()))


def refuse_deleting_what_others_use(plan: Plan, kinds: dict[str, Any], force: bool) -> None:
    """A delete of something a resource outside this plan's deletes still uses (an unowned
    queue on our compute environment) is refused in the plan, before any write: deleting it
    would starve that resource, or fail half-way after disabling it. `--force` lets it go."""
    deleting = {(a.kind, a.aws_name): a for a in plan.actions if a.verb is Verb.DELETE}
    if not deleting or force:
        return
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for kind_name, live in plan.observed_all.items():
        kind = kinds.get(kind_name)
        if kind is None:
            continue
        for o in live:
            if (kind_name, o.aws_name) in deleting and o.owned_by(plan.stack):
                continue  # deleted in this plan too: the order takes care of it
            declared = plan.desired.get((kind_name, o.owner.name)) if o.owner else None
            keeps: set[tuple[str, str]] | None = None
            if declared is not None and o.owned_by(plan.stack):
                # Ours and declared: it ends up using what its spec names (after the plan).
                keeps = {(k, plan.targets.get((k, n), n)) for k, n, _ in declared.references()}
            owner = "unowned" if o.owner is None else f"stack {o.owner.stack!r}"
            for used in kind.observed_refs(o):
                if keeps is None or used in keeps:
                    users[used].append(f"{kind_name} {o.aws_name} ({owner})")
    for key, action in deleting.items():
        if users.get(key) and action.verb is Verb.DELETE:
            action.verb = Verb.REFUSED
            action.run = None
            action.summary = (
                f"still used by {', '.join(sorted(users[key]))}: deleting it would starve "
                "them; remove that use first, or use --force"
            )
