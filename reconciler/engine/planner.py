"""From desired state and observed state to an ordered plan. Read-only: no AWS writes here.

The flow is the same for every kind: observe every kind at once; then, resource by resource in
the order of their references, match what lives in AWS (by ownership tags first, by name
second), diff, decide (engine/decide.py) and ask the kind how to carry out the decision.
Ownership is checked here, once, for every kind: a same-named resource this stack does not own
is a conflict unless `--adopt` was given. The planner knows no kind by name: it asks the
registry.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.engine.context import Context
from reconciler.engine.decide import Decision, decide
from reconciler.engine.diff import diff
from reconciler.engine.order import link, refuse_deleting_what_others_use, topological
from reconciler.engine.refs import Refs
from reconciler.engine.types import Action, Observed, Plan, Verb, Work
from reconciler.manifests.validate import ResourceSet
from reconciler.models.common import Resource
from reconciler.models.sensitive import Path, sensitivity_flags
from reconciler.registry import kinds

GONE = ("DELETED",)


def _uses_others(kind: Any) -> bool:
    """Whether the kind's resources can use others': its model declares references."""
    return kind.model.references is not Resource.references


def observe(
    ctx: Context,
    declared: ResourceSet,
    everything: bool,
    users: bool = False,
    whole: frozenset[str] = frozenset(),
) -> dict[str, list[Observed]]:
    """Every kind's live state, read concurrently; read-only. With `users`, kinds whose
    resources can use others (queues use environments) are read even when none is declared:
    a delete must see who still uses what it deletes. Kinds in `whole` are read as with
    `everything` (every owned one), the others as the declared resources ask: what `get` and
    `delete` of a kind without manifests read."""

    def read(kind: Any) -> tuple[str, list[Observed]]:
        mine = declared.of_kind(kind.name)
        # A user of what is deleted may be one the stack owns but no manifest names (a job
        # definition still on the role being deleted): kinds whose live resources say what
        # they use are read whole (every one the stack owns). Runs use nothing that way.
        user = users and kind.tracks_use and not kind.runs
        every = everything or kind.name in whole
        wanted = mine or every or (users and _uses_others(kind))
        live = kind.observe(ctx, mine, every or user) if wanted else []
        return kind.name, [o for o in live if o.status not in GONE]

    registered = list(kinds().values())
    with ThreadPoolExecutor(max_workers=len(registered)) as pool:
        found = dict(pool.map(read, registered))
    for live in found.values():
        for o in live[:1]:
            if o.arn:
                ctx.resolver.learn_account(o.arn)
    return found


def owner_text(live: Observed) -> str:
    if live.owner is None:
        return "exists and is not managed by reconciler"
    return f"is owned by stack {live.owner.stack!r}"


def _owned(live: list[Observed], stack: str, name: str) -> list[Observed]:
    return [o for o in live if o.owned_by(stack) and o.owner is not None and o.owner.name == name]


def action_of(res_kind: str, name: str, verb: Verb, work: Work, **kw: Any) -> Action:
    """An action from what a kind said it will do."""
    fallback = kw.pop("aws_name", "")
    action = Action.of(
        res_kind,
        name,
        work.verb or verb,
        work.suffix,
        aws_name=work.aws_name or fallback,
        summary=work.summary,
        notes=list(work.notes),
        run=work.run,
        **kw,
    )
    if work.refused:
        action.verb = Verb.REFUSED
        action.summary = work.refused
        action.run = None
    return action


def _delete(ctx: Context, plan: Plan, kind: Any, name: str, live: Observed, why: str) -> Action:
    work = kind.delete(ctx, live, why)
    work.suffix = work.suffix or f"#delete:{live.aws_name}"
    return plan.add(action_of(kind.name, name, Verb.DELETE, work, aws_name=live.aws_name))


def _remove(ctx: Context, plan: Plan, kind: Any, name: str, live: Observed, why: str) -> Action:
    """Deletes a resource the stack no longer wants, unless its deletion policy keeps it."""
    policy = kind.deletion_policy(plan.desired.get((kind.name, name)), live)
    if policy == "Retain":
        summary = f"deletionPolicy Retain: {live.aws_name} stays in AWS as it is ({why})"
        return plan.add(
            Action.of(kind.name, name, Verb.RETAIN, aws_name=live.aws_name, summary=summary)
        )
    return _delete(ctx, plan, kind, name, live, why)


def _flags(res: Resource, kind: Any) -> dict[Path, bool]:
    """The spec's `sensitive` flags, when what is compared is the spec itself (a run kind
    compares a view of its run: nothing of the spec's values reaches its diff)."""
    return sensitivity_flags(res.spec) if isinstance(res.spec, kind.spec_model) else {}


def plan_resource(
    ctx: Context,
    plan: Plan,
    res: Resource,
    current: Observed | None,
    desired: dict[str, Any] | None = None,
    adopting: bool = False,
) -> list[Action]:
    """Decides for one declared resource and adds its actions to `plan`; returns them."""
    kind = kinds()[res.KIND]
    refs = Refs(plan)
    first = len(plan.actions)
    desired = kind.desired(ctx, res, refs) if desired is None else desired
    changes = (
        diff(desired, current.spec, kind.spec_model, kind.ignored(res), _flags(res, kind))
        if current
        else []
    )
    decision = decide(kind, current, desired, changes)
    main = _carry_out(ctx, plan, refs, kind, res, current, desired, decision)
    if adopting and main.verb is Verb.UPDATE:
        main.verb = Verb.ADOPT
        main.summary = f"take over from its current owner ({owner_text(current)})"  # type: ignore[arg-type]
    if current is not None:
        plan.observed[res.key] = current
        for work in kind.housekeeping(ctx, res, current, main.verb):
            extra = plan.add(action_of(res.KIND, res.name, Verb.DELETE, work))
            extra.routine = True
            if main.verb.runs:
                extra.after.add(main.id)
    return plan.actions[first:]


def _carry_out(
    ctx: Context,
    plan: Plan,
    refs: Refs,
    kind: Any,
    res: Resource,
    current: Observed | None,
    desired: dict[str, Any],
    decision: Decision,
) -> Action:
    verb, changes = decision.verb, decision.changes
    if current is None:
        aws_name = kind.aws_name(ctx, res)
        plan.targets[res.key] = aws_name
        work = kind.create(ctx, res, desired, aws_name, refs)
        return plan.add(action_of(res.KIND, res.name, verb, work, aws_name=aws_name))
    plan.targets[res.key] = current.aws_name
    name = current.aws_name
    if verb is Verb.NOOP:
        work = kind.unchanged(ctx, res, current)
        return plan.add(action_of(res.KIND, res.name, verb, work, aws_name=name))
    if verb is Verb.WAIT:
        work = kind.wait(ctx, current)
    elif verb is Verb.UPDATE:
        work = kind.update(ctx, res, current, desired, changes, refs)
    else:
        return _replace(ctx, plan, refs, kind, res, current, desired, decision)
    return plan.add(action_of(res.KIND, res.name, verb, work, aws_name=name, changes=changes))


def _replace(
    ctx: Context,
    plan: Plan,
    refs: Refs,
    kind: Any,
    res: Resource,
    current: Observed,
    desired: dict[str, Any],
    decision: Decision,
) -> Action:
    own = kind.replace(ctx, res, current, desired, decision.reason, refs)
    if own is not None:  # the kind's own way (a run: cancel the active one, submit the new)
        first = plan.add(
            action_of(
                res.KIND,
                res.name,
                Verb.REPLACE,
                own[0],
                aws_name=current.aws_name,
                changes=decision.changes,
            )
        )
        for work in own[1:]:
            plan.add(action_of(res.KIND, res.name, Verb.REPLACE, work)).after.add(first.id)
        return first
    if kind.create_before_destroy:
        new_name = kind.replacement_name(res, desired, refs.taken(res.KIND) | {current.aws_name})
    else:
        new_name = res.name
    plan.targets[res.key] = new_name
    work = kind.create(ctx, res, desired, new_name, refs)
    work.summary = (
        f"blue/green: create {new_name}, re-point queues, then delete "
        f"{current.aws_name} ({decision.reason})"
        if kind.create_before_destroy
        else f"delete {current.aws_name}, then create it again ({decision.reason})"
    )
    create = plan.add(
        action_of(
            res.KIND, res.name, Verb.REPLACE, work, aws_name=new_name, changes=decision.changes
        )
    )
    retire = _delete(ctx, plan, kind, res.name, current, f"replaced by {new_name}")
    if kind.create_before_destroy:
        retire.after.add(create.id)
    else:
        create.after.add(retire.id)
    return create


class Planner:
    """Plans one apply or delete: observes every kind once, then resource by resource."""

    def __init__(self, ctx: Context, declared: ResourceSet, everything: bool, users: bool = False):
        self.ctx = ctx
        self.plan = Plan(stack=ctx.stack, region=ctx.aws.region)
        self.plan.desired = {r.key: r for r in declared.resources}
        self.plan.observed_all = observe(ctx, declared, everything, users)
        self.declared = declared

    def apply(self, res: Resource) -> None:
        kind = kinds()[res.KIND]
        ctx, plan = self.ctx, self.plan
        live = plan.observed_all.get(res.KIND, [])
        owned = _owned(live, ctx.stack, res.name)
        adopting = False
        if not owned:
            wanted = kind.aws_name(ctx, res)
            same = [o for o in live if kind.conflicts_by_name and kind.matches_name(o, wanted)]
            if same and not ctx.options.adopt:
                summary = f"{same[0].arn} {owner_text(same[0])}; use --adopt to take it over"
                plan.add(
                    Action.of(
                        res.KIND,
                        res.name,
                        Verb.CONFLICT,
                        aws_name=same[0].aws_name,
                        summary=summary,
                    )
                )
                return
            owned, adopting = same[:1], bool(same)
        desired = kind.desired(ctx, res, Refs(plan))
        current, leftovers = kind.pick(res, owned, desired) if owned else (None, [])
        plan_resource(ctx, plan, res, current, desired, adopting)
        for extra_live in leftovers:
            _delete(ctx, plan, kind, res.name, extra_live, "leftover of an interrupted replacement")

    def prune(self, kind: Any) -> None:
        declared = {r.name for r in self.declared.of_kind(kind.name)}
        for o in self.plan.observed_all.get(kind.name, []):
            if o.owned_by(self.ctx.stack) and o.owner and o.owner.name not in declared:
                _remove(self.ctx, self.plan, kind, o.owner.name, o, "no longer declared (--prune)")


def plan_apply(ctx: Context, declared: ResourceSet) -> Plan:
    planner = Planner(ctx, declared, everything=ctx.options.prune)
    for res in topological(declared.resources):
        planner.apply(res)
    if ctx.options.prune:
        for kind in kinds().values():
            planner.prune(kind)
    refuse_deleting_what_others_use(planner.plan, kinds(), ctx.options.force)
    link(planner.plan, kinds())
    return planner.plan


def plan_delete(ctx: Context, declared: ResourceSet) -> Plan:
    """Deletes what the manifests declare and this stack owns; leaves everything else alone."""
    planner = Planner(ctx, declared, everything=False, users=True)
    plan = planner.plan
    for res in declared.resources:
        kind = kinds()[res.KIND]
        live = plan.observed_all.get(res.KIND, [])
        owned = _owned(live, ctx.stack, res.name)
        for o in owned:
            _remove(ctx, plan, kind, res.name, o, "deleted on request")
        if owned:
            continue
        wanted = kind.aws_name(ctx, res)
        same = [o for o in live if kind.conflicts_by_name and kind.matches_name(o, wanted)]
        note = f"{owner_text(same[0])}: left alone" if same else "does not exist"
        plan.add(Action.of(res.KIND, res.name, Verb.NOOP, summary=note))
    refuse_deleting_what_others_use(plan, kinds(), ctx.options.force)
    link(plan, kinds())
    return plan
