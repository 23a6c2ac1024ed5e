"""From desired state and observed state to an ordered plan. Read-only: no AWS writes here.

The flow is the same for every kind, in dependency order: match each declared resource to what
lives in AWS (by ownership tags first, by name second), diff, and let the kind decide how the
change is carried out. Ownership is checked here, once, for every kind: a same-named resource
this stack does not own is a conflict unless `--adopt` was given.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reconciler.engine.context import Context
from reconciler.engine.diff import diff
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.kinds import HANDLERS, KindHandler
from reconciler.manifests.validate import ResourceSet
from reconciler.models.common import Resource

GONE = ("DELETED",)


def observe(ctx: Context, stack: ResourceSet, everything: bool) -> dict[str, list[Observed]]:
    """Every kind's live state, read concurrently; read-only."""

    def read(item: tuple[str, KindHandler]) -> tuple[str, list[Observed]]:
        kind, handler = item
        declared = stack.of_kind(kind)
        live = handler.observe(ctx, declared, everything) if declared or everything else []
        return kind, [o for o in live if o.status not in GONE]

    with ThreadPoolExecutor(max_workers=len(HANDLERS)) as pool:
        return dict(pool.map(read, HANDLERS.items()))


def _owner_text(live: Observed) -> str:
    if live.owner is None:
        return "exists and is not managed by reconciler"
    return f"is owned by stack {live.owner.stack!r}"


def _owned(live: list[Observed], stack: str, name: str) -> list[Observed]:
    return [o for o in live if o.owned_by(stack) and o.owner is not None and o.owner.name == name]


def _plan_resource(
    ctx: Context, handler: KindHandler, res: Resource, live: list[Observed], plan: Plan
) -> None:
    owned = _owned(live, ctx.stack, res.name)
    adopting = False
    if not owned:
        same = [o for o in live if handler.matches_name(o, res.name)]
        if same and not ctx.options.adopt:
            plan.add(
                Action.of(
                    res.KIND,
                    res.name,
                    Verb.CONFLICT,
                    aws_name=same[0].aws_name,
                    summary=f"{same[0].arn} {_owner_text(same[0])}; use --adopt to take it over",
                )
            )
            return
        if not same:
            plan.add(handler.plan_create(ctx, res, handler.desired(ctx, res, plan), plan))
            return
        owned, adopting = same[:1], True
    desired = handler.desired(ctx, res, plan)
    current, leftovers = handler.pick(res, owned, desired)
    plan.observed[res.key] = current
    changes = diff(desired, current.spec, handler.spec_model, handler.ignored(res))
    for action in handler.plan_change(ctx, res, current, desired, changes, plan):
        if adopting and action.id == f"{res.KIND}/{res.name}" and action.verb is Verb.UPDATE:
            action.verb = Verb.ADOPT
            action.summary = f"take over from its current owner ({_owner_text(current)})"
        plan.add(action)
    for extra in leftovers:
        plan.add(
            handler.plan_delete(
                ctx, res.name, extra, plan, "leftover of an interrupted replacement"
            )
        )


def plan_apply(ctx: Context, stack: ResourceSet) -> Plan:
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.desired = {r.key: r for r in stack.resources}
    plan.observed_all = observe(ctx, stack, everything=ctx.options.prune)
    for kind, handler in HANDLERS.items():
        live = plan.observed_all[kind]
        for res in stack.of_kind(kind):
            _plan_resource(ctx, handler, res, live, plan)
        if ctx.options.prune:
            declared = {r.name for r in stack.of_kind(kind)}
            for o in live:
                if o.owned_by(ctx.stack) and o.owner and o.owner.name not in declared:
                    plan.add(
                        handler.plan_delete(
                            ctx, o.owner.name, o, plan, "no longer declared (--prune)"
                        )
                    )
    for handler in HANDLERS.values():
        handler.link(plan)
    return plan


def plan_delete(ctx: Context, stack: ResourceSet) -> Plan:
    """Deletes what the manifests declare and this stack owns; leaves everything else alone."""
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.desired = {r.key: r for r in stack.resources}
    plan.observed_all = observe(ctx, stack, everything=False)
    for kind, handler in HANDLERS.items():
        live = plan.observed_all[kind]
        for res in stack.of_kind(kind):
            owned = _owned(live, ctx.stack, res.name)
            for o in owned:
                plan.add(handler.plan_delete(ctx, res.name, o, plan, "deleted on request"))
            if owned:
                continue
            same = [o for o in live if handler.matches_name(o, res.name)]
            note = f"{_owner_text(same[0])}: left alone" if same else "does not exist"
            plan.add(Action.of(kind, res.name, Verb.NOOP, summary=note))
    for handler in HANDLERS.values():
        handler.link(plan)
    return plan
