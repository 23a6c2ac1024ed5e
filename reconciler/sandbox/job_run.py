"""A sandbox job as the scheduler sees it (`JobRun`), and the pure rules about its attempts.

Shared by `job_scheduler` (which moves jobs through their states), `job_patches` (the API) and
`job_restore` (jobs put back after a restart). Nothing here keeps state of its own.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from moto.utilities.utils import get_partition

from reconciler.sandbox.job_runner import LocalProcess

SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED = STATES = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
)
DONE = (SUCCEEDED, FAILED)

# AWS's own wording.
DEPENDENCY_FAILED = "Dependent Job failed"
CONTAINER_EXITED = "Essential container in task exited"
TIMED_OUT = "Job attempt duration exceeded timeout"
# AWS: "Host EC2 (instance i-...) terminated." when an attempt's instance goes away; the sandbox
# restarting under a running attempt is that (and evaluateOnExit's "Host EC2*" matches it).
HOST_LOST = "Host EC2 (instance sandbox) terminated: the sandbox restarted while the attempt ran"

KILLED = 128 + signal.SIGKILL  # what a container killed by Batch exits with
RUN_ATTR = "_sandbox"  # the attribute of moto's Job that holds its JobRun


@dataclass(eq=False)
class JobRun:
    """The scheduler's view of one job (an array parent, a child, or a plain job)."""

    job: Any  # moto's Job; its _status, attempts, job_started_at, ... are what describe shows
    backend: Any  # the BatchBackend whose _jobs holds it (a reset account drops it)
    step: float
    run_seconds: float
    attempts: int = 1
    retry_rules: list[dict[str, Any]] = field(default_factory=list)
    timeout: float | None = None
    fail_code: int | None = None  # each attempt exits with this when the job is told to fail
    run_commands: bool = False
    endpoint: str | None = None  # the sandbox's URL, for the job's process
    parent: JobRun | None = None
    index: int | None = None  # array child index
    children: list[JobRun] = field(default_factory=list)
    waits_on: list[Any] = field(default_factory=list)  # Jobs that must succeed first
    # What the scheduler changes as the job goes on (`PROGRESS`); the rest is set at SubmitJob.
    since: float = 0.0  # monotonic time of the last state change
    started: bool = False  # reached RUNNING at least once (startedAt is shown)
    ran: bool = False  # array parent: a child reached RUNNING
    attempt: int = 0
    attempt_since: float = 0.0
    task_id: str = ""
    stream: str | None = None
    process: LocalProcess | None = None
    start_error: tuple[int, str] | None = None
    stop_reason: str | None = None  # array parent: why it was cancelled or terminated

    def __post_init__(self) -> None:
        setattr(self.job, RUN_ATTR, self)  # how run_of() finds it from the Job moto hands us

    @property
    def stale(self) -> bool:
        """The job is gone from its backend (the account was reset)."""
        jobs = getattr(self.backend, "_jobs", None)  # None while moto resets the backend
        return jobs is None or jobs.get(self.job.job_id) is not self.job

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


# What the scheduler changes on a JobRun as its job goes on (every field from `since` on), as
# SubmitJob left them (their defaults): `job_restore.rewind` puts them back.
_NAMES = tuple(f.name for f in fields(JobRun))
PROGRESS: Mapping[str, Any] = MappingProxyType(
    {f.name: f.default for f in fields(JobRun)[_NAMES.index("since") :]}
)


def run_of(job: Any) -> JobRun | None:
    """The JobRun of a moto Job the scheduler manages; None for any other job."""
    return getattr(job, RUN_ATTR, None)


def status_of(job: Any) -> str:
    return str(job._status if run_of(job) is not None else job.status)


def now() -> datetime.datetime:
    return datetime.datetime.now()


def ms(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1000)


def should_retry(rules: list[dict[str, Any]], code: int | None, reason: str) -> bool:
    """evaluateOnExit: the first rule whose conditions all match decides; none -> retry.

    An attempt without an exit code (its host was lost) matches no onExitCode pattern."""
    container_reason = reason if reason.startswith("CannotStartContainerError") else ""
    for rule in rules:
        if code is None and "onExitCode" in rule:
            continue
        checks = [
            ("onExitCode", str(code)),
            ("onStatusReason", reason),
            ("onReason", container_reason),
        ]
        if all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule):
            return str(rule.get("action", "")).upper() == "RETRY"
    return True


def task_of(job: Any, attempt: int) -> str:
    """The ECS task ID of the job's attempt (numbered from 1)."""
    return hashlib.sha256(f"{job.arn}#{attempt}".encode()).hexdigest()[:32]


def stream_of(job: Any, attempt: int) -> str:
    """The log stream of the job's attempt, as Batch names it."""
    return f"{job.job_definition.name}/default/{task_of(job, attempt)}"


def name_attempt(run: JobRun, attempt: int) -> None:
    """Makes `attempt` the job's current one: its ECS task ID and log stream, as Batch names
    them (the same on every server, so that a restored job's stream is the one it wrote)."""
    job = run.job
    run.attempt = attempt
    run.task_id = task_of(job, attempt)
    run.stream = job.log_stream_name = stream_of(job, attempt)
    if run.parent is not None:
        run.parent.ran = True


def attempt_record(run: JobRun, exit_code: int | None, reason: str, stopped: int) -> dict[str, Any]:
    """The current attempt as DescribeJobs shows it: its container (ECS task), times, reason."""
    job = run.job
    region, account = job.job_queue.backend.region_name, job.job_queue.backend.account_id
    prefix = f"arn:{get_partition(region)}:ecs:{region}:{account}"
    envs = job.job_queue.environments
    cluster = (getattr(envs[0], "ecs_name", "") if envs else "") or "AWSBatch"
    container: dict[str, Any] = {
        "containerInstanceArn": f"{prefix}:container-instance/{cluster}/{run.task_id[::-1]}",
        "taskArn": f"{prefix}:task/{cluster}/{run.task_id}",
        "logStreamName": run.stream,
        "networkInterfaces": [],
    }
    if exit_code is not None:  # AWS: a lost host's attempt has none
        container["exitCode"] = exit_code
    return {
        "container": container,
        "startedAt": ms(job.job_started_at),
        "stoppedAt": stopped,
        "statusReason": reason,
    }
