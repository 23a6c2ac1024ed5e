"""What the status of a custom resource says about its AWS side; no kopf here.

Infrastructure kinds report the live resource the plan observed (ARN, AWS name, AWS status,
a job definition's revision). Pipelines and tasks report the run the spec calls for: its ID,
its status and how many jobs of each task are in each state (an array task's children are
counted from its parent's summary).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from reconciler.engine.context import Context
from reconciler.engine.types import Observed, Plan
from reconciler.kinds import HANDLERS
from reconciler.kinds.pipeline import watch_targets
from reconciler.manifests.validate import ResourceSet
from reconciler.operator import conditions as c
from reconciler.runs.report import run_status
from reconciler.runs.state import FINISHED, STATES, counts
from reconciler.runs.watch import poll

READY_STATUSES = {
    "ComputeEnvironment": ("VALID",),
    "JobQueue": ("VALID",),
    "JobDefinition": ("ACTIVE",),
}
BUSY_STATUSES = ("CREATING", "UPDATING", "DELETING")
MAX_TASKS_IN_STATUS = 200  # a status must stay far below etcd's object size limit

Readiness = tuple[bool, str, str]  # ready, reason, message


def resource_fields(kind: str, observed: Observed | None) -> dict[str, Any]:
    if observed is None:
        return {"arn": None, "awsName": None, "awsStatus": None}
    out: dict[str, Any] = {
        "arn": observed.arn or None,
        "awsName": observed.aws_name,
        "awsStatus": observed.status,
    }
    if kind == "JobDefinition":
        out["revision"] = observed.revision
    return out


def resource_readiness(kind: str, observed: Observed | None) -> Readiness:
    if observed is None:
        return False, c.UNAVAILABLE, "not found in AWS"
    status = observed.status or ""
    if status in READY_STATUSES.get(kind, ()):
        return True, c.AVAILABLE, f"{observed.aws_name} is {status}"
    if status in BUSY_STATUSES:
        return False, c.CREATING, f"{observed.aws_name} is {status}"
    why = f": {observed.status_reason}" if observed.status_reason else ""
    return False, c.UNAVAILABLE, f"{observed.aws_name} is {status or 'in an unknown state'}{why}"


def desired_only(ctx: Context, stack: ResourceSet) -> Plan:
    """A plan that holds the desired resources only: enough to name the spec's run."""
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.desired = {r.key: r for r in stack.resources}
    return plan


def spec_run_id(ctx: Context, stack: ResourceSet, key: tuple[str, str]) -> str:
    """The run the spec calls for (a hash of the spec and its job definitions; no AWS call)."""
    res = stack.get(*key)
    return str(HANDLERS[key[0]].desired(ctx, res, desired_only(ctx, stack))["runId"])


def run_fields(ctx: Context, plan: Plan, key: tuple[str, str]) -> dict[str, Any]:
    """The run the spec calls for, read from AWS (DescribeJobs, 100 jobs a call)."""
    targets = watch_targets(ctx, plan, {key})
    if not targets:
        return {"runId": None, "runStatus": None, "jobs": {}, "tasks": {}}
    target = targets[0]
    poll(ctx, [target])
    tasks: dict[str, dict[str, int]] = {}
    total: Counter[str] = Counter()
    for task in target.tasks:
        job = target.jobs.get(task)
        by_state = counts(job) if job else Counter({"SUBMITTED": 1})
        total.update(by_state)
        if len(tasks) < MAX_TASKS_IN_STATUS:
            tasks[task] = {s: by_state[s] for s in STATES if by_state[s]}
    statuses = [str(target.jobs[t].get("status")) for t in target.tasks if t in target.jobs]
    return {
        "runId": target.run_id,
        "runStatus": run_status(statuses) if statuses else "SUBMITTED",
        "jobs": {s: total[s] for s in STATES if total[s]},
        "tasks": tasks,
    }


def run_readiness(fields: dict[str, Any]) -> Readiness:
    if not fields.get("runId"):
        return False, c.UNAVAILABLE, "the run is not submitted"
    return True, c.AVAILABLE, f"run {fields['runId']}: {fields.get('runStatus')}"


def run_finished(status: dict[str, Any]) -> bool:
    return status.get("runStatus") in FINISHED
