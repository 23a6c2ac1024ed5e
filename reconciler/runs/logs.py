"""A task's CloudWatch log stream, as `kubectl logs` shows a pod's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.backoff import Backoff
from reconciler.engine.context import Context
from reconciler.errors import NotFoundError, PlanError
from reconciler.runs.state import FINISHED, describe

LOG_GROUP = "/aws/batch/job"


def job_of(ctx: Context, job: dict[str, Any], index: int | None) -> dict[str, Any]:
    """The job whose log to show: an array needs `index` (its child), a single job none."""
    size = (job.get("arrayProperties") or {}).get("size")
    if size is None:
        if index is not None:
            raise PlanError(f"job {job['jobName']} is not an array job: drop --index")
        return job
    if index is None or not 0 <= index < size:
        raise PlanError(f"job {job['jobName']} is an array of {size}: give --index 0..{size - 1}")
    child = describe(ctx, [f"{job['jobId']}:{index}"])
    if not child:
        raise PlanError(f"child {index} of {job['jobName']} not found")
    return next(iter(child.values()))


def stream_name(job: dict[str, Any]) -> str | None:
    attempts = job.get("attempts") or []
    for source in [job.get("container") or {}, *(a.get("container") or {} for a in attempts[::-1])]:
        if source.get("logStreamName"):
            return str(source["logStreamName"])
    return None


FOLLOW = Backoff(first=1.0, ceiling=5.0, factor=1.5)  # a quiet job is polled less often


def lines(
    ctx: Context, job: dict[str, Any], follow: bool, sleep: Callable[[float], None] = time.sleep
) -> Iterator[str]:
    logs = ctx.aws.client("logs")
    token: str | None = None
    delay: float | None = None
    while True:
        name = stream_name(job)
        if name:
            while True:
                kw: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                if token:
                    kw["nextToken"] = token
                try:
                    page = logs.get_log_events(**kw)
                except NotFoundError:
                    break
                if page["events"]:
                    delay = None  # output is flowing: look again soon
                yield from (e["message"] for e in page["events"])
                if page.get("nextForwardToken") in (None, token):
                    break
                token = page["nextForwardToken"]
        if not follow or job.get("status") in FINISHED:
            return
        delay = FOLLOW.after(delay)
        sleep(delay)
        job = describe(ctx, [job["jobId"]]).get(job["jobId"], job)


def ec2_lines(
    ctx: Context, prefix: str, follow: bool, sleep: Callable[[float], None] = time.sleep
) -> Iterator[str]:
    """An EC2 task's output as its agent keeps it under `prefix` in S3 (stdout, then stderr
    lines marked `!`), re-read while the task runs when following."""
    from reconciler.runs import ec2_scratch as scratch
    from reconciler.runs.ec2_state import EXIT_CODE

    shown = 0
    delay: float | None = None
    while True:
        done = scratch.read_text(ctx, prefix + EXIT_CODE) is not None
        stdout = scratch.read_text(ctx, prefix + "stdout") or ""
        if not done:  # a line still being written waits for its end
            stdout = stdout[: stdout.rfind("\n") + 1]
        fresh = stdout.splitlines()[shown:]
        shown += len(fresh)
        yield from fresh
        if fresh:
            delay = None
        if done or not follow:
            if done:
                stderr = scratch.read_text(ctx, prefix + "stderr") or ""
                yield from (f"! {line}" for line in stderr.splitlines())
            return
        delay = FOLLOW.after(delay)
        sleep(delay)
