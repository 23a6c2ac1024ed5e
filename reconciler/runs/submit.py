"""Submitting one run: every task at once, in topological order, wired with Batch dependsOn.

The DAG then progresses in AWS even if the CLI exits. A task that depends on more jobs than
AWS allows (20) gets barrier jobs: each waits for up to 20 of the dependencies and the task
waits for the barriers (a tree, if there are many). Tasks already submitted in this run (an
earlier, interrupted apply) are reused, never submitted twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler.aws.once import write_once
from reconciler.aws.tags import ownership_tags
from reconciler.engine.context import Context
from reconciler.models.common import Resource
from reconciler.models.fields import drop_local
from reconciler.models.submission import MAX_DEPENDENCIES, NOT_SUBMITTED, PipelineTask
from reconciler.runs import identity

BARRIER_DEFINITION = "reconciler-barrier"
# Barrier keys are "<task>@b<level>.<n>": "@" is allowed in tags and never in task names.
BARRIER_MARK = "@"
BARRIER_SPEC = {
    "type": "container",
    "containerProperties": {
        "image": "public.ecr.aws/docker/library/busybox:stable",
        "command": ["true"],
        "vcpus": 1,
        "memory": 128,
    },
}


@dataclass
class Unit:
    """One job of the run: a task, or a barrier standing in for part of a task's fan-in."""

    key: str
    task: PipelineTask | None
    depends: list[tuple[str | None, str | None]] = field(default_factory=list)  # (key, type)


def _barriers(owner: str, keys: list[str], units: list[Unit]) -> list[str]:
    """Keys that stand for `keys`, at most MAX_DEPENDENCIES of them, adding barrier units."""
    level = 0
    while len(keys) > MAX_DEPENDENCIES:
        grouped = []
        for i in range(0, len(keys), MAX_DEPENDENCIES):
            key = f"{owner}{BARRIER_MARK}b{level}.{i // MAX_DEPENDENCIES}"
            units.append(Unit(key, None, [(k, None) for k in keys[i : i + MAX_DEPENDENCIES]]))
            grouped.append(key)
        keys, level = grouped, level + 1
    return keys


def expand(tasks: list[PipelineTask]) -> list[Unit]:
    units: list[Unit] = []
    for t in tasks:
        deps = t.dependsOn or []
        plain = [d.task for d in deps if d.type is None and d.task]
        special = [(d.task, d.type) for d in deps if d.type is not None]
        through = (
            _barriers(t.name, plain, units)
            if len(plain) + len(special) > MAX_DEPENDENCIES
            else plain
        )
        units.append(Unit(t.name, t, [(k, None) for k in through] + special))
    return units


def barrier_count(tasks: list[PipelineTask]) -> int:
    return sum(1 for u in expand(tasks) if u.task is None)


def levels(units: list[Unit]) -> list[list[Unit]]:
    """Units grouped so that each group depends only on earlier groups."""
    by_key = {u.key: u for u in units}
    depth: dict[str, int] = {}

    def depth_of(key: str) -> int:
        stack = [key]
        while stack:
            k = stack[-1]
            pending = [d for d, _ in by_key[k].depends if d and d in by_key and d not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[k] = 1 + max((depth[d] for d, _ in by_key[k].depends if d in depth), default=-1)
        return depth[key]

    grouped: dict[int, list[Unit]] = {}
    for u in units:
        grouped.setdefault(depth_of(u.key), []).append(u)
    return [grouped[i] for i in sorted(grouped)]


def _request(
    ctx: Context, res: Resource, run: str, unit: Unit, queue: str, job_ids: dict[str, str]
) -> dict[str, Any]:
    depends = [
        {"jobId": job_ids[k], **({"type": t} if t else {})} if k else {"type": t}
        for k, t in unit.depends
    ]
    tags = {**res.metadata.labels, **identity.run_tags(res, ctx.stack, unit.key, run)}
    request: dict[str, Any] = {
        "jobName": identity.job_name(res.name, unit.key, run),
        "jobQueue": queue,
        "dependsOn": depends,
    }
    task = unit.task
    if task is None:
        request["jobDefinition"] = BARRIER_DEFINITION
        request["tags"] = tags
        return request
    body = task.model_dump(mode="json", exclude_none=True, exclude=NOT_SUBMITTED)
    request.update(drop_local(body, PipelineTask))  # an entry's `sensitive` flag is ours
    request["tags"] = {**(task.tags or {}), **tags}
    if ctx.options.sandbox and task.sandbox and task.sandbox.outcome == "fail":
        request["tags"][identity.SANDBOX_OUTCOME] = "fail"
        if task.sandbox.exitCode is not None:
            request["tags"][identity.SANDBOX_EXIT_CODE] = str(task.sandbox.exitCode)
    return request


def ensure_barrier_definition(ctx: Context) -> None:
    batch = ctx.aws.client("batch")
    found = batch.describe_job_definitions(jobDefinitionName=BARRIER_DEFINITION, status="ACTIVE")
    if not found["jobDefinitions"]:
        batch.register_job_definition(
            jobDefinitionName=BARRIER_DEFINITION,
            tags=ownership_tags(ctx.stack, BARRIER_DEFINITION),
            **BARRIER_SPEC,
        )


def _submitted(ctx: Context, request: dict[str, Any]) -> dict[str, Any] | None:
    """The job a SubmitJob whose reply was lost made, if it made one: job names are unique to a
    run and a task, and ListJobs with a name filter sees every status."""
    page = ctx.aws.client("batch").list_jobs(
        jobQueue=request["jobQueue"],
        filters=[{"name": "JOB_NAME", "values": [request["jobName"]]}],
    )
    found = [j for j in page.get("jobSummaryList") or [] if j.get("jobName") == request["jobName"]]
    return {"jobId": found[0]["jobId"]} if found else None


def submit_unit(
    ctx: Context,
    res: Resource,
    run: str,
    unit: Unit,
    queue_of: dict[str, str],
    job_ids: dict[str, str],
) -> str:
    """Submits one unit wired to the jobs of `job_ids` it depends on; returns its job ID. A
    lost reply is found by the job's name (unique to the run and the unit), never resent."""
    if unit.task is None:
        ensure_barrier_definition(ctx)
    queue = queue_of[unit.task.name if unit.task else unit.key.split(BARRIER_MARK)[0]]
    request = _request(ctx, res, run, unit, queue, job_ids)
    once = ctx.aws.client("batch", retries=False)
    out = write_once(lambda: once.submit_job(**request), lambda: _submitted(ctx, request))
    return str(out["jobId"])


def submit_run(
    ctx: Context,
    res: Resource,
    run: str,
    tasks: list[PipelineTask],
    queue_of: dict[str, str],
    existing: dict[str, str],
) -> dict[str, str]:
    """Submits what `existing` (unit key -> job ID) lacks; returns every unit's job ID."""
    units = expand(tasks)
    job_ids = dict(existing)
    if any(u.task is None and u.key not in job_ids for u in units):
        ensure_barrier_definition(ctx)
    once = ctx.aws.client("batch", retries=False)

    def submit(unit: Unit) -> tuple[str, str]:
        queue = queue_of[unit.task.name if unit.task else unit.key.split(BARRIER_MARK)[0]]
        request = _request(ctx, res, run, unit, queue, job_ids)
        # SubmitJob is not idempotent: a lost reply must not become a second job.
        out = write_once(lambda: once.submit_job(**request), lambda: _submitted(ctx, request))
        return unit.key, out["jobId"]

    with ThreadPoolExecutor(max_workers=max(1, ctx.options.parallelism)) as pool:
        for level in levels(units):
            todo = [u for u in level if u.key not in job_ids]
            job_ids.update(pool.map(submit, todo))
    return job_ids
