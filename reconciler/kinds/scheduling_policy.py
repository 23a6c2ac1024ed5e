"""SchedulingPolicy: its AWS calls and mapping.

AWS quirks handled here:
- Scheduling policies are addressed by ARN, not by name, in every call but create: the ARN is
  read from the listing.
- ListSchedulingPolicies returns ARNs only; DescribeSchedulingPolicies takes up to 100 ARNs. Only
  the ARNs whose name is declared are described, unless everything owned is wanted (--prune).
- Creating, updating and deleting are immediate: there is no status to wait for.
- An update replaces the whole fairsharePolicy: it is sent whole, whatever changed in it.
"""

from __future__ import annotations

from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import spec_changes
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Work
from reconciler.kinds.base import (
    Column,
    Kind,
    Permission,
    desired_tags,
    spec_dict,
    sync_tags,
)
from reconciler.models.scheduling_policy import SchedulingPolicy, SchedulingPolicySpec

BATCH = 100  # ARNs per DescribeSchedulingPolicies


def _name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


class SchedulingPolicyKind(Kind):
    model = SchedulingPolicy
    spec_model = SchedulingPolicySpec
    busy_statuses = ()
    ready_statuses = ("ACTIVE",)
    columns = (
        Column("AWS Name", "awsName", description="The name in AWS."),
        Column("Shares", "shares", "integer", "Share identifiers in the fair-share policy."),
    )
    permissions = (
        Permission(
            "BatchInfrastructure",
            "batch",
            ("CreateSchedulingPolicy", "UpdateSchedulingPolicy", "DeleteSchedulingPolicy"),
            ("scheduling-policy/*",),
        ),
    )

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        batch = ctx.aws.client("batch")
        names = {r.name for r in declared}
        arns = [
            p["arn"]
            for page in batch.get_paginator("list_scheduling_policies").paginate()
            for p in page["schedulingPolicies"]
            if everything or _name_of(p["arn"]) in names
        ]
        found = []
        for i in range(0, len(arns), BATCH):
            out = batch.describe_scheduling_policies(arns=arns[i : i + BATCH])
            found += [self.from_aws(raw) for raw in out["schedulingPolicies"]]
        return found

    def from_aws(self, raw: dict[str, Any]) -> Observed:
        return Observed(
            kind=self.name,
            aws_name=raw["name"],
            arn=raw["arn"],
            spec={
                "fairsharePolicy": raw.get("fairsharePolicy"),
                "tags": user_tags(raw.get("tags")),
            },
            owner=owner_of(raw.get("tags")),
            status="ACTIVE",  # AWS reports no status: a policy that is listed exists
        )

    def desired(self, ctx: Context, res: SchedulingPolicy, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def create(
        self,
        ctx: Context,
        res: SchedulingPolicy,
        desired: dict[str, Any],
        aws_name: str,
        refs: Refs,
    ) -> Work:
        def run(c: Context) -> str:
            body: dict[str, Any] = {"name": aws_name, "tags": desired["tags"]}
            if desired.get("fairsharePolicy"):
                body["fairsharePolicy"] = desired["fairsharePolicy"]
            out = c.aws.client("batch").create_scheduling_policy(**body)
            return out["arn"]

        return Work(run=run)

    def update(
        self,
        ctx: Context,
        res: SchedulingPolicy,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        policy_changed = bool(spec_changes(changes))

        def run(c: Context) -> str:
            if policy_changed:
                c.aws.client("batch").update_scheduling_policy(
                    arn=current.arn, fairsharePolicy=desired.get("fairsharePolicy") or {}
                )
            sync_tags(c, current.arn, current.tags, desired["tags"])
            return f"{current.aws_name} updated"

        return Work(run=run, summary="" if policy_changed else "tags only")

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        def run(c: Context) -> str:
            c.aws.client("batch").delete_scheduling_policy(arn=live.arn)
            return f"{live.aws_name} deleted"

        return Work(run=run, summary=why, aws_name=live.aws_name)

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        policy = (live.spec.get("fairsharePolicy") or {}) if live else {}
        out["shares"] = len(policy.get("shareDistribution") or []) if live else None
        return out


KINDS = (SchedulingPolicyKind(),)
