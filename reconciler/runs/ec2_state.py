"""What AWS says about EC2 tasks, shaped like Batch's DescribeJobs entries.

An EC2 task's "job" is its instance, read by tags (DescribeInstances, one call for every task
of a pipeline), with the exit code the agent kept in S3. Shaping it as a job (status, reason,
timestamps, attempts with the exit code) lets everything that follows, reports and shows runs
(runs/watch.py, runs/report/, `get`) treat Batch and EC2 tasks alike.

A finished run's tasks are written to `run.json` under the run's prefix when its driver ends
it: instances vanish from DescribeInstances about an hour after they terminate, and the record
keeps the run from ever looking unlaunched (and being launched again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.aws.tags import MANAGED_BY, NAME, STACK, TOOL
from reconciler.engine.context import Context
from reconciler.runs import ec2_scratch as scratch
from reconciler.runs import identity

ENDED = ("shutting-down", "terminated", "stopping", "stopped")
RUN_RECORD = "run.json"
SKIPPED = "skipped"
DETACHED = "reconciler.io/detached"
# A task interrupted by Ctrl-C did not fail: its next apply launches it again. Each interrupt
# leaves `interrupted-<n>` in the task's prefix; the launches of generation n are tagged with n
# and recorded as `launch-<n>.json`, so an interrupted generation's instance and record are
# set aside, and the next launch has a token of its own.
GENERATION = "reconciler.io/generation"
INTERRUPTED = "interrupted-"


def launch_record(generation: int) -> str:
    return f"launch-{generation}.json"


def output_prefix(run_prefix: str, task: str, generation: int) -> str:
    """Where the agent of one launch keeps the task's output (each generation its own, so an
    interrupted launch's late writes never pass for the next one's)."""
    return f"{run_prefix}{task}/" + (f"g{generation}/" if generation else "")


def generation_of(names: set[str]) -> int:
    return sum(1 for n in names if n.startswith(INTERRUPTED))


TIMED_OUT = 124  # what the agent reports for a script it ended at its timeout (as timeout(1))


def _ms(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return None


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags") or []}


def instance_job(
    instance: dict[str, Any], exit_code: int | None, stopped_at: int | None = None
) -> dict[str, Any]:
    """One instance as a DescribeJobs entry (pure): its task's status from the instance's
    state and the script's exit code, which decides once it is known."""
    tags = _tags(instance)
    state = (instance.get("State") or {}).get("Name", "pending")
    reason = (instance.get("StateReason") or {}).get("Message") or ""
    job: dict[str, Any] = {
        "jobId": instance["InstanceId"],
        "jobName": tags.get(identity.TASK, ""),
        "createdAt": _ms(instance.get("LaunchTime")),
        "tags": tags,
        "outputPrefix": task_prefix(tags),
        "ec2": {
            "instanceId": instance["InstanceId"],
            "state": state,
            "instanceType": instance.get("InstanceType"),
            "subnetId": instance.get("SubnetId"),
            "spot": instance.get("InstanceLifecycle") == "spot",
        },
    }
    if state != "pending":
        job["startedAt"] = job["createdAt"]
    if exit_code is not None:
        job["status"] = "SUCCEEDED" if exit_code == 0 else "FAILED"
        job["attempts"] = [{"container": {"exitCode": exit_code}}]
        job["stoppedAt"] = stopped_at or job["createdAt"]
        if exit_code == TIMED_OUT:
            job["statusReason"] = (
                "timed out: the agent ended the script at timeout.attemptDurationSeconds "
                f"(exit code {TIMED_OUT})"
            )
        elif exit_code:
            job["statusReason"] = f"the script exited with {exit_code}"
    elif state in ENDED:
        job["status"] = "FAILED"
        job["statusReason"] = f"instance {state} before the script ended" + (
            f": {reason}" if reason else ""
        )
        job["stoppedAt"] = stopped_at or job["createdAt"]
    else:
        job["status"] = "STARTING" if state == "pending" else "RUNNING"
    return job


FILTER_VALUES = 200  # values one EC2 filter takes


def owned_instances(
    ctx: Context, filters: list[dict[str, Any]], ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Instances of ours matching `filters` (or with these IDs), oldest launch first; a call
    per 1,000 instances (a page), or per 200 IDs. By an instance-id filter, not InstanceIds:
    an instance long gone is left out, not an error."""
    pages = ctx.aws.client("ec2").get_paginator("describe_instances")
    ours = {"Name": f"tag:{MANAGED_BY}", "Values": [TOOL]}
    queries = (
        [
            [ours, {"Name": "instance-id", "Values": ids[i : i + FILTER_VALUES]}]
            for i in range(0, len(ids), FILTER_VALUES)
        ]
        if ids
        else [[ours, *filters]]
    )
    found = [
        i
        for query in queries
        for page in pages.paginate(Filters=query)
        for r in page.get("Reservations") or []
        for i in r.get("Instances") or []
        if _tags(i).get(MANAGED_BY) == TOOL
    ]
    return sorted(found, key=lambda i: _ms(i.get("LaunchTime")) or 0)


EXIT_CODE = "exitCode"  # what the agent (reconciler/agent/exec.py) writes last, under the prefix


def exit_code(ctx: Context, prefix: str) -> int | None:
    """The script's exit code as the agent kept it in S3; None if it never wrote one."""
    text = (scratch.read_text(ctx, prefix + EXIT_CODE) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


@dataclass
class DrivenRuns:
    """What AWS and the runs' prefixes say about the driven runs of one pipeline or task."""

    jobs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # run -> task -> job
    generations: dict[str, dict[str, int]] = field(default_factory=dict)  # run -> task -> n
    recorded: set[str] = field(default_factory=set)  # runs whose driver ended them (run.json)


def read_ec2_runs(ctx: Context, kind: str, name: str) -> DrivenRuns:
    """The EC2 (and skipped) tasks of every run of one pipeline or task: one listing of its
    prefix, one DescribeInstances, and a read of each record or exit code it needs."""
    base = scratch.resource_prefix(ctx.stack, kind, name)
    objects = scratch.list_objects(ctx, base)
    instances = owned_instances(
        ctx,
        [
            {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
            {"Name": f"tag:{identity.KIND}", "Values": [kind]},
            {"Name": f"tag:{NAME}", "Values": [name]},
        ],
    )
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    generations: dict[str, dict[str, int]] = {}
    recorded: set[str] = set()
    files: dict[str, dict[str, set[str]]] = {}
    for key in objects:
        parts = key[len(base) :].split("/")
        if len(parts) == 2 and parts[1] == RUN_RECORD:
            files.setdefault(parts[0], {})
        elif len(parts) >= 3:
            files.setdefault(parts[0], {}).setdefault(parts[1], set()).add("/".join(parts[2:]))
    for run, tasks in files.items():
        if f"{base}{run}/{RUN_RECORD}" in objects:
            text = scratch.read_text(ctx, f"{base}{run}/{RUN_RECORD}") or "{}"
            runs[run] = json.loads(text).get("tasks", {})
            recorded.add(run)
            continue
        jobs = runs.setdefault(run, {})
        for task, names in tasks.items():
            generations.setdefault(run, {})[task] = generation_of(names)
            if SKIPPED in names:
                jobs[task] = skipped_job(task)
            elif launch_record(generation_of(names)) in names:
                # Launched; the instance (below) says more while it is still listed.
                prefix = output_prefix(f"{base}{run}/", task, generation_of(names))
                jobs[task] = gone_job(task, exit_code(ctx, prefix), prefix)
    for instance in instances:
        tags = _tags(instance)
        run, task = tags.get(identity.RUN), tags.get(identity.TASK)
        if not run or not task or (run in recorded and task in runs.get(run, {})):
            continue  # a recorded run's attached tasks are final; detached ones are not in it
        if int(tags.get(GENERATION) or 0) != generations.get(run, {}).get(task, 0):
            continue  # launched before an interrupt: set aside
        known = runs.setdefault(run, {}).get(task) or {}
        code = (known.get("attempts") or [{}])[0].get("container", {}).get("exitCode")
        if code is None and (instance.get("State") or {}).get("Name") in ENDED:
            code = exit_code(ctx, task_prefix(tags))  # a detached task, or a killed driver's
        runs[run][task] = instance_job(instance, code)
    return DrivenRuns(runs, generations, recorded)


def skipped_job(task: str) -> dict[str, Any]:
    return {
        "jobId": f"skipped:{task}",
        "jobName": task,
        "status": "SUCCEEDED",
        "statusReason": "up to date: every output is newer than every input",
        "skipped": True,
    }


def gone_job(task: str, exit_code: int | None, prefix: str) -> dict[str, Any]:
    """A launched task whose instance is no longer listed: its exit code decides."""
    if exit_code is None:
        return {
            "jobId": f"gone:{task}",
            "jobName": task,
            "outputPrefix": prefix,
            "status": "FAILED",
            "statusReason": "the instance ended without an exit code",
        }
    return {
        "jobId": f"gone:{task}",
        "jobName": task,
        "outputPrefix": prefix,
        "status": "SUCCEEDED" if exit_code == 0 else "FAILED",
        "attempts": [{"container": {"exitCode": exit_code}}],
        **({"statusReason": f"the script exited with {exit_code}"} if exit_code else {}),
    }


def describe_instances_as_jobs(ctx: Context, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Instance ID -> job, for following runs (runs/state.describe routes `i-` IDs here)."""
    out: dict[str, dict[str, Any]] = {}
    if ids:
        for instance in owned_instances(ctx, [], ids):
            code = None
            if (instance.get("State") or {}).get("Name") in ENDED:
                code = exit_code(ctx, task_prefix(_tags(instance)))
            out[instance["InstanceId"]] = instance_job(instance, code)
    return out


def task_prefix(tags: dict[str, str]) -> str:
    """Where the agent of the instance so tagged keeps the task's output."""
    kind, name, run = tags.get(identity.KIND, ""), tags.get(NAME, ""), tags.get(identity.RUN, "")
    return (
        f"{scratch.run_prefix(tags.get(STACK, ''), kind, name, run)}{tags.get(identity.TASK, '')}/"
    )
