"""Reconciling one resource, for callers that own one object at a time (the operator).

The resource is planned together with the resources it refers to (so that references resolve
exactly as in a whole-stack apply), but only its own actions run. If one of them has to wait
for another resource's action (a queue whose compute environment does not exist yet), nothing
runs and the caller is told what it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.engine.apply import Outcome, execute
from reconciler.engine.context import Context
from reconciler.engine.locking import leased_plan
from reconciler.engine.planner import plan_apply, plan_delete
from reconciler.engine.types import Action, Plan
from reconciler.manifests.validate import ResourceSet

Key = tuple[str, str]


@dataclass
class Result:
    plan: Plan
    actions: list[Action] = field(default_factory=list)  # this resource's
    outcomes: list[Outcome] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)  # other resources' pending actions

    @property
    def blocked(self) -> list[Action]:
        return [a for a in self.actions if a.verb.blocks]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "skipped")]

    @property
    def pending(self) -> list[Outcome]:
        """Actions AWS is still carrying out: look again after `retry_after` seconds."""
        return [o for o in self.outcomes if o.status == "pending"]

    @property
    def changed(self) -> bool:
        return any(a.verb.writes for a in self.actions)


def part_of(plan: Plan, key: Key) -> Result:
    """The resource `key`'s part of a plan, not carried out: its actions, and the actions of
    others it would wait for. The plan may be of more than `key` needs (the operator's drift
    checks share a plan of the whole stack: operator/drift.py)."""
    mine = [a for a in plan.actions if (a.kind, a.name) == key]
    others = {a.id for a in plan.actions if (a.kind, a.name) != key and a.verb.writes}
    result = Result(plan, mine)
    result.waiting_for = sorted({d for a in mine for d in a.after if d in others})
    return result


def _run_own(ctx: Context, plan: Plan, key: Key, dry_run: bool) -> Result:
    result = part_of(plan, key)
    mine = result.actions
    if dry_run or result.waiting_for or result.blocked:
        return result
    own = Plan(
        stack=plan.stack,
        region=plan.region,
        actions=mine,
        observed=plan.observed,
        observed_all=plan.observed_all,
        desired=plan.desired,
        targets=plan.targets,
    )
    # Long work is never waited for here: pending actions are reported, and the caller
    # reconciles again later (the operator, from a timer), re-planning from what AWS says.
    result.outcomes = execute(ctx, own, follow=False)
    return result


def reconcile(ctx: Context, declared: ResourceSet, key: Key, dry_run: bool = False) -> Result:
    """Converges the resource `key` of `declared`; the other resources only give context.
    Writing holds the stack's lease, as the CLI's apply does; a dry run takes none."""
    if dry_run:
        return _run_own(ctx, plan_apply(ctx, declared), key, dry_run)
    timeout = ctx.options.lock_timeout
    with leased_plan(ctx, "operator", timeout, lambda: plan_apply(ctx, declared)) as plan:
        return _run_own(ctx, plan, key, dry_run)


def remove(ctx: Context, declared: ResourceSet, key: Key) -> Result:
    """Deletes the AWS side of `key` (only if this stack owns it)."""
    res = declared.get(*key)
    only = ResourceSet(resources=[res] if res else [], sources=dict(declared.sources))
    timeout = ctx.options.lock_timeout
    with leased_plan(ctx, "operator", timeout, lambda: plan_delete(ctx, only)) as plan:
        return _run_own(ctx, plan, key, dry_run=False)
