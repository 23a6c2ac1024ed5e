"""What AWS says about a pipeline's runs, read in batches.

ListJobs (with a name filter, which returns every status) finds the jobs of one pipeline in a
queue, 100 a page; DescribeJobs reads 100 at a time. Array children are never listed one by
one: the parent's statusSummary counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.context import Context
from reconciler.errors import ProviderError
from reconciler.runs import identity
from reconciler.runs.report import run_status

FINISHED = ("SUCCEEDED", "FAILED")
STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
BATCH = 100


@dataclass
class RunState:
    run_id: str
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> DescribeJobs entry
    generations: dict[str, int] = field(default_factory=dict)  # EC2 task -> interrupts so far
    recorded: bool = False  # a driven run its driver ended (runs/drive.py wrote its record)

    @property
    def created(self) -> int:
        return min((j.get("createdAt") or 0 for j in self.jobs.values()), default=0)

    @property
    def active(self) -> bool:
        return any(j.get("status") not in FINISHED for j in self.jobs.values())

    def status(self, expected: int | None = None) -> str:
        """As the report states it; INCOMPLETE while an interrupted submission lacks jobs."""
        if expected is not None and len(self.jobs) < expected:
            return "INCOMPLETE"
        return run_status([str(j.get("status")) for j in self.jobs.values()])


def describe(ctx: Context, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Jobs by ID, 100 per DescribeJobs; an EC2 task's "job" is its instance (`i-...`)."""
    from reconciler.runs.ec2_state import describe_instances_as_jobs

    instances = [i for i in job_ids if i.startswith("i-")]
    out: dict[str, dict[str, Any]] = describe_instances_as_jobs(ctx, instances) if instances else {}
    # Skipped, blocked and gone tasks are final and were never jobs: nothing to read again.
    job_ids = [i for i in job_ids if not i.startswith(("i-", "skipped:", "gone:", "blocked:"))]
    batch = ctx.aws.client("batch")
    for i in range(0, len(job_ids), BATCH):
        for job in batch.describe_jobs(jobs=job_ids[i : i + BATCH])["jobs"]:
            out[job["jobId"]] = job
    return out


def _job_ids(ctx: Context, name: str, queue: str) -> list[str]:
    pages = ctx.aws.client("batch").get_paginator("list_jobs")
    flt = [{"name": "JOB_NAME", "values": [identity.name_prefix(name) + "*"]}]
    try:
        return [
            s["jobId"]
            for page in pages.paginate(
                jobQueue=queue, filters=flt, PaginationConfig={"PageSize": BATCH}
            )
            for s in page["jobSummaryList"]
            # Array children share their parent's name; the parent's summary covers them.
            if ":" not in s["jobId"]
        ]
    except ProviderError as exc:
        if "does not exist" in str(exc):
            return []  # a queue not created yet has no jobs
        raise


def read_runs(
    ctx: Context, kind: str, name: str, queues: list[str], driven: bool = False
) -> dict[str, RunState]:
    """The runs of one pipeline or task; `driven` ones also have EC2 and skipped tasks, read
    from the instances' tags and the run's S3 record (runs/ec2_state.py)."""
    ids = [i for queue in sorted(set(queues)) for i in _job_ids(ctx, name, queue)]
    runs: dict[str, RunState] = {}
    if driven:
        from reconciler.runs.ec2_state import read_ec2_runs

        found = read_ec2_runs(ctx, kind, name)
        for run in {*found.jobs, *found.generations, *found.recorded}:
            runs[run] = RunState(
                run,
                dict(found.jobs.get(run, {})),
                found.generations.get(run, {}),
                run in found.recorded,
            )
    for job in describe(ctx, ids).values():
        tags = job.get("tags") or {}
        if identity.belongs(tags, kind, name, ctx.stack):
            run = runs.setdefault(tags[identity.RUN], RunState(tags[identity.RUN]))
            run.jobs[tags[identity.TASK]] = job
    return runs


def counts(job: dict[str, Any]) -> Counter[str]:
    """Jobs by state for one task: an array's children from its summary, else the job itself."""
    summary = (job.get("arrayProperties") or {}).get("statusSummary")
    if summary:
        return Counter({k: v for k, v in summary.items() if v})
    return Counter({job.get("status", "SUBMITTED"): 1})
