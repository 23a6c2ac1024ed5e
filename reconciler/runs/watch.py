"""Following a run until it ends: live progress, then what failed and why.

Each poll reads the run's top-level jobs with DescribeJobs, 100 per call; an array parent's
statusSummary stands for all its children, so a poll costs ceil(top-level jobs / 100) calls
whatever the array sizes. Polls back off from `first` to `ceiling` seconds.

What a follower prints is one line per state change of a task's job, with the fields of the
Slack message a Notification sends (`notify/slack.py`: status, job name, job ID, queue, log
stream; reason and exit code for a failure), and for an array, a line each time its
children's counts change. A state a job passed through between two polls is not seen: the
Notification's EventBridge rule, not a poll, is what sees every change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.backoff import Backoff
from reconciler.engine.context import Context
from reconciler.notify import slack
from reconciler.runs.report import TaskJobs
from reconciler.runs.state import FINISHED, STATES, counts, describe
from reconciler.runs.submit import BARRIER_MARK

FOLLOW = Backoff(first=0.5, ceiling=10.0, factor=1.5)


@dataclass
class Watched:
    kind: str
    name: str
    run_id: str
    job_ids: dict[str, str]  # task (or barrier) key -> job ID
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest descriptions

    @property
    def subject(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def tasks(self) -> list[str]:
        return [k for k in self.job_ids if BARRIER_MARK not in k]  # barriers are plumbing

    @property
    def finished(self) -> bool:
        return bool(self.jobs) and all(j.get("status") in FINISHED for j in self.jobs.values())

    @property
    def succeeded(self) -> bool:
        return self.finished and all(j.get("status") == "SUCCEEDED" for j in self.jobs.values())


def progress(job: dict[str, Any]) -> str:
    c = counts(job)
    size = (job.get("arrayProperties") or {}).get("size")
    if size:
        parts = ", ".join(f"{c[s]} {s}" for s in STATES if c[s])
        return f"{job.get('status')} ({size} jobs: {parts})"
    return str(job.get("status"))


def change_lines(target: Watched, shown: dict[str, str]) -> list[tuple[str, str]]:
    """(task, line) for each task whose job changed since `shown` (task -> what was last
    said of it, updated here): its new status with the Slack message's fields, or, for an
    array whose status stayed, its children's counts."""
    lines = []
    for key in target.tasks:
        job = target.jobs.get(key)
        if job is None:
            said = "not found yet"
        elif (shown.get(key) or "").split(" ", 1)[0] != job.get("status"):
            said = slack.line(slack.of_job(job))
        elif (job.get("arrayProperties") or {}).get("size"):
            said = progress(job)
        else:
            continue
        if shown.get(key) != said:
            shown[key] = said
            lines.append((key, said))
    return lines


def state_lines(target: Watched, tasks: list[str]) -> dict[str, str]:
    """Each of `tasks`' job state, as a line with the Slack message's fields."""
    return {k: slack.line(slack.of_job(target.jobs[k])) for k in tasks if k in target.jobs}


def poll(ctx: Context, targets: list[Watched]) -> None:
    """Re-reads the jobs not known to be finished: a finished job never changes again."""
    ids = [
        i
        for t in targets
        for k, i in t.job_ids.items()
        if (t.jobs.get(k) or {}).get("status") not in FINISHED
    ]
    seen = describe(ctx, ids)
    for t in targets:
        t.jobs.update({k: seen[i] for k, i in t.job_ids.items() if i in seen})


def follow(
    ctx: Context,
    targets: list[Watched],
    log: Callable[[str], None],
    timeout: float,
    backoff: Backoff = FOLLOW,
) -> None:
    start = time.monotonic()
    shown: dict[str, dict[str, str]] = {t.subject: {} for t in targets}
    delay: float | None = None
    while True:
        poll(ctx, targets)
        for t in targets:
            for key, line in change_lines(t, shown[t.subject]):
                log(f"  {t.subject} {key}: {line}  [{time.monotonic() - start:.0f}s]")
        if all(t.finished for t in targets):
            return
        delay = backoff.after(delay)
        if time.monotonic() - start + delay > timeout:
            raise TimeoutError(f"runs still unfinished after {timeout:.0f}s")
        time.sleep(delay)


def children(ctx: Context, job: dict[str, Any], statuses: tuple[str, ...] = STATES) -> list[Any]:
    """An array's children, as ListJobs summaries (only for reports and failures)."""
    if not (job.get("arrayProperties") or {}).get("size"):
        return []
    pages = ctx.aws.client("batch").get_paginator("list_jobs")
    return [
        s
        for status in statuses
        for p in pages.paginate(arrayJobId=job["jobId"], jobStatus=status)
        for s in p["jobSummaryList"]
    ]


def failures(ctx: Context, target: Watched) -> list[str]:
    """One line per failed task: why, and with which exit codes."""
    lines = []
    for key in target.tasks:
        job = target.jobs.get(key) or {}
        if job.get("status") != "FAILED":
            continue
        codes = [a.get("container", {}).get("exitCode") for a in job.get("attempts") or []]
        failed_children = children(ctx, job, ("FAILED",))
        if failed_children:
            codes = [c.get("container", {}).get("exitCode") for c in failed_children]
            detail = f"{len(failed_children)} child job(s) failed"
        else:
            detail = job.get("statusReason") or "failed"
        shown = sorted({str(c) for c in codes if c is not None})
        lines.append(
            f"{target.subject} task {key}: {detail}"
            + (f" (exit codes: {', '.join(shown)})" if shown else "")
        )
    return lines


def described_children(ctx: Context, job: dict[str, Any]) -> list[Any]:
    """An array's children as DescribeJobs gives them (100 a call, by their `<parent>:<index>`
    ids): with attempts and log streams, which ListJobs summaries lack, for as many calls."""
    size = (job.get("arrayProperties") or {}).get("size")
    if not size:
        return []
    return list(describe(ctx, [f"{job['jobId']}:{i}" for i in range(int(size))]).values())


def task_jobs(ctx: Context, target: Watched) -> list[TaskJobs]:
    """The run as the report wants it: every task's job, arrays with their children."""
    return [
        TaskJobs(
            name=key,
            job=target.jobs.get(key),
            children=described_children(ctx, target.jobs[key]) if key in target.jobs else [],
        )
        for key in target.tasks
    ]
