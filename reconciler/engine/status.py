"""What a resource's status says about its AWS side: the fields and the Ready condition that
`reconciler get` shows and the operator writes into a custom resource's status. No kopf here.

Infrastructure kinds report the live resource the plan observed (ARN, AWS name, AWS status,
and what the kind adds, such as a job definition's revision); readiness follows the statuses
the kind declares. Kinds of work report the run the spec calls for: its ID, its status and
how many jobs of each task are in each state.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine import conditions as c
from reconciler.engine.context import Context
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Plan
from reconciler.manifests.validate import ResourceSet
from reconciler.registry import kinds

FINISHED_RUN = ("SUCCEEDED", "FAILED")

Readiness = tuple[bool, str, str]  # ready, reason, message


def resource_fields(plan: Plan, key: tuple[str, str]) -> dict[str, Any]:
    return kinds()[key[0]].status_fields(plan.desired.get(key), plan.observed.get(key))


def resource_readiness(kind: str, observed: Observed | None) -> Readiness:
    if observed is None:
        return False, c.UNAVAILABLE, "not found in AWS"
    found = kinds()[kind]
    status = observed.status or ""
    if status in found.ready_statuses:
        return True, c.AVAILABLE, f"{observed.aws_name} is {status}"
    if status in found.busy_statuses:
        return False, c.CREATING, f"{observed.aws_name} is {status}"
    why = f": {observed.status_reason}" if observed.status_reason else ""
    return False, c.UNAVAILABLE, f"{observed.aws_name} is {status or 'in an unknown state'}{why}"


def desired_only(ctx: Context, declared: ResourceSet) -> Plan:
    """A plan that holds the desired resources only: enough to name the spec's run."""
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.desired = {r.key: r for r in declared.resources}
    return plan


def spec_run_id(ctx: Context, declared: ResourceSet, key: tuple[str, str]) -> str:
    """The run the spec calls for (a hash of the spec and its job definitions; no AWS call)."""
    plan = desired_only(ctx, declared)
    return str(kinds()[key[0]].run_id(plan.desired[key], Refs(plan)))


def run_fields(ctx: Context, plan: Plan, key: tuple[str, str]) -> dict[str, Any]:
    """The run the spec calls for, read from AWS (DescribeJobs, 100 jobs a call)."""
    return dict(kinds()[key[0]].run_status(ctx, plan.desired[key], Refs(plan)))


def run_readiness(fields: dict[str, Any]) -> Readiness:
    if not fields.get("runId"):
        return False, c.UNAVAILABLE, "the run is not submitted"
    return True, c.AVAILABLE, f"run {fields['runId']}: {fields.get('runStatus')}"


def run_finished(status: dict[str, Any]) -> bool:
    return status.get("runStatus") in FINISHED_RUN
