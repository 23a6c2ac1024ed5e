"""A pipeline run's report as plain data: what AWS said about each task, in reading order.

Pure: the caller reads the jobs from AWS (DescribeJobs, ListJobs for array children) and hands
them in, so reports are built and tested without AWS, and a page can be rendered again from a
saved report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Job = dict[str, Any]
Report = dict[str, Any]

NOT_SUBMITTED = "NOT_SUBMITTED"
FINISHED = ("SUCCEEDED", "FAILED")
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class TaskJobs:
    """What AWS holds for one task of a run; `job` is None until the task is submitted."""

    name: str
    job: Job | None = None
    children: list[Job] = field(default_factory=list)


def build_report(
    pipeline: str, run_id: str, tasks: list[TaskJobs], now: datetime | None = None
) -> Report:
    """Plain data only, so the same dict feeds YAML, HTML and JSON without a model in between.

    `now` is when the report was taken: running bars end there, and tests pin it.
    """
    names = {t.job["jobId"]: t.name for t in tasks if t.job and t.job.get("jobId")}
    entries = [_task_entry(t, names) for t in tasks]
    status = run_status([e["status"] for e in entries])
    started = min((e["startedAt"] for e in entries if e["startedAt"]), default=None)
    stopped = _run_stopped(entries, status)
    return {
        "pipeline": pipeline,
        "runId": run_id,
        "status": status,
        "startedAt": started,
        "stoppedAt": stopped,
        "durationSeconds": duration(started, stopped),
        "tasks": entries,
        "generatedAt": _iso_dt(now or datetime.now(UTC)),
    }


def run_status(statuses: list[str]) -> str:
    """A failure anywhere fails the run: later tasks depend on earlier ones, so it cannot heal."""
    if all(s == NOT_SUBMITTED for s in statuses):
        return NOT_SUBMITTED
    if "FAILED" in statuses:
        return "FAILED"
    if all(s == "SUCCEEDED" for s in statuses):
        return "SUCCEEDED"
    if any(s in ("STARTING", "RUNNING", "SUCCEEDED") for s in statuses):
        return "RUNNING"
    return "PENDING"


def _run_stopped(entries: list[dict[str, Any]], status: str) -> str | None:
    """A failed run whose other tasks still run has not stopped yet: its clock keeps going."""
    if status not in FINISHED or any(e["status"] in ACTIVE for e in entries):
        return None
    # Every timestamp has the same ISO format, so the string order is the time order.
    return max((e["stoppedAt"] for e in entries if e["stoppedAt"]), default=None)


def _task_entry(task: TaskJobs, names: dict[str, str]) -> dict[str, Any]:
    job = task.job or {}
    depends = job.get("dependsOn") or []
    status = str(job.get("status") or "UNKNOWN") if task.job is not None else NOT_SUBMITTED
    start, stop = _task_span(job, status, task.children)
    return {
        "name": task.name,
        "jobId": job.get("jobId"),
        "jobName": job.get("jobName"),
        "status": status,
        "statusReason": job.get("statusReason"),
        "createdAt": _iso(job.get("createdAt")),
        "startedAt": start,
        "stoppedAt": stop,
        "durationSeconds": duration(start, stop),
        "dependsOn": [_dependency(d, names) for d in depends],
        "arraySize": (job.get("arrayProperties") or {}).get("size"),
        "statusSummary": _status_summary(job, task.children),
        "attempts": [_attempt(a) for a in job.get("attempts") or []],
        "children": sorted((_child(c) for c in task.children), key=_child_order),
    }


def _dependency(dep: dict[str, Any], names: dict[str, str]) -> str:
    """A task name where the job is in this run; SEQUENTIAL (no job) orders the children."""
    job_id = dep.get("jobId")
    if job_id:
        return str(names.get(job_id, job_id))
    return f"own children ({dep.get('type') or 'SEQUENTIAL'})"


def _task_span(job: Job, status: str, children: list[Job]) -> tuple[str | None, str | None]:
    """From the first attempt (retries restart the job's own startedAt) or array child to the
    last stop; an unfinished task has no stop even if an earlier attempt stopped."""
    runs = [job, *(job.get("attempts") or []), *children]
    start = min((r["startedAt"] for r in runs if r.get("startedAt") is not None), default=None)
    stops = [r["stoppedAt"] for r in runs if r.get("stoppedAt") is not None]
    stop = max(stops, default=None) if status in FINISHED else None
    return _iso(start), _iso(stop)


def _status_summary(job: Job, children: list[Job]) -> dict[str, int] | None:
    """Batch's own counts when it gave them; otherwise counted from the children we were given."""
    summary = (job.get("arrayProperties") or {}).get("statusSummary")
    if summary:
        return dict(summary)
    if children:
        return dict(Counter(str(c.get("status")) for c in children))
    return None


def _attempt(attempt: Job) -> dict[str, Any]:
    container = attempt.get("container") or {}
    return {
        "exitCode": container.get("exitCode"),
        "startedAt": _iso(attempt.get("startedAt")),
        "stoppedAt": _iso(attempt.get("stoppedAt")),
        "statusReason": attempt.get("statusReason") or container.get("reason"),
        "logStreamName": container.get("logStreamName"),
    }


def _child(child: Job) -> dict[str, Any]:
    container = child.get("container") or {}
    attempts = child.get("attempts") or []
    return {
        "index": _child_index(child),
        "jobId": child.get("jobId"),
        "status": child.get("status"),
        "exitCode": container.get("exitCode"),
        "startedAt": _iso(child.get("startedAt")),
        "stoppedAt": _iso(child.get("stoppedAt")),
        "statusReason": child.get("statusReason") or container.get("reason"),
        # Where `reconciler logs --index N` reads: the current attempt's, else the last one's.
        "logStreamName": log_stream(child),
        # A child retried on its own: each attempt (one attempt is the child itself).
        "attempts": [_attempt(a) for a in attempts] if len(attempts) > 1 else [],
    }


def log_stream(job: Job) -> str | None:
    """The job's log stream: its container's, else that of its latest attempt that has one."""
    attempts = job.get("attempts") or []
    for source in [job.get("container") or {}, *(a.get("container") or {} for a in attempts[::-1])]:
        if source.get("logStreamName"):
            return str(source["logStreamName"])
    return None


def _child_index(child: Job) -> int | None:
    """Child job ids are `<parent>:<index>`, a fallback when arrayProperties is missing."""
    index = (child.get("arrayProperties") or {}).get("index")
    if index is None and str(child.get("jobId", "")).rpartition(":")[2].isdigit():
        index = int(str(child["jobId"]).rpartition(":")[2])
    return index


def _child_order(child: dict[str, Any]) -> tuple[bool, int]:
    return child["index"] is None, child["index"] or 0


# -------------------------------------------------------------------------------------- time


def _iso(ms: int | float | None) -> str | None:
    """Milliseconds through timedelta, not float seconds, so .123 never prints as .122."""
    return None if ms is None else _iso_dt(EPOCH + timedelta(milliseconds=ms))


def _iso_dt(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_epoch(iso: str | None) -> float | None:
    """Reports keep ISO strings, which read well in YAML; drawing a timeline needs numbers."""
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def duration(start: str | None, stop: str | None) -> float | None:
    """Rounded to the millisecond AWS gives, so float noise never reaches the report."""
    if start is None or stop is None:
        return None
    return round(to_epoch(stop) - to_epoch(start), 3)  # type: ignore[operator]
