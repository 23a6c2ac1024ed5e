"""What a kind may know of the other resources of a plan: only what its model refers to.

The planner plans resources in the order of their references, so when a queue is planned its
compute environments already have their decisions: `aws_name` is the name each will have
after the plan (a blue/green replacement's new name), `resource` the declared model, `live` the
resource as observed. A kind that needs something of another resource asks here; no kind reads
the plan, and no planning step writes anything for a later one to find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.registry import kinds

if TYPE_CHECKING:
    from reconciler.engine.context import Context
    from reconciler.engine.types import Observed, Plan


class Refs:
    def __init__(self, plan: Plan):
        self._plan = plan

    def aws_name(self, kind: str, name: str) -> str:
        """The AWS name `kind/name` has once the plan is applied."""
        return self._plan.targets.get((kind, name), name)

    def resource(self, kind: str, name: str) -> Any | None:
        """The declared model of `kind/name`, if the manifests declare it."""
        return self._plan.desired.get((kind, name))

    def live(self, kind: str, aws_name: str) -> Observed | None:
        """The live resource of `kind` called `aws_name`, as observed before the plan."""
        return next(
            (o for o in self._plan.observed_all.get(kind, []) if o.aws_name == aws_name), None
        )

    def taken(self, kind: str) -> set[str]:
        """Every AWS name of `kind` seen live (a new name must avoid them)."""
        return {o.aws_name for o in self._plan.observed_all.get(kind, [])}

    def output(self, ctx: Context, kind: str, name: str, what: str) -> str:
        """A value `kind/name` gives others once it exists (a role's ARN, a bucket's URL),
        known at plan time: the kind computes it from its AWS name after the plan."""
        return str(kinds()[kind].output(ctx, self, name, what))
