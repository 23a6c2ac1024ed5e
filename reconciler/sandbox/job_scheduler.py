"""The sandbox's job scheduler: moves each job through AWS Batch's states, as Batch would.

moto's no-Docker backend (BatchSimpleBackend) marks every job SUCCEEDED as it is submitted and
ignores dependsOn, retries and timeouts. Instead, `reconciler.sandbox.job_patches` hands every
submitted job to the server's `JobScheduler` (created by `moto_ext.install()`), whose daemon
thread ticks every TICK seconds while any job is unfinished and sleeps otherwise:
- SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED, one state per
  `JobRun.step` seconds, RUNNING for `JobRun.run_seconds` (RECONCILER_SANDBOX_STEP_SECONDS and
  RECONCILER_SANDBOX_JOB_SECONDS when the job was submitted). Like Batch, a job stays RUNNABLE
  while no compute environment of its queue is ENABLED.
- dependsOn: a job stays PENDING until every job in `waits_on` SUCCEEDED, and fails with
  "Dependent Job failed" a step after one FAILED.
- Array jobs: children run independently; the parent is PENDING until a child runs, then
  RUNNING, and SUCCEEDED or FAILED once every child finished.
- A failed attempt goes back to RUNNABLE while attempts are left and the retry strategy's
  evaluateOnExit allows it; each attempt is recorded in the job's `attempts`. An attempt that
  runs longer than the timeout ends with "Job attempt duration exceeded timeout", and, as in
  Batch, a timed-out job is not retried.
- With `JobRun.run_commands` the attempt's command runs locally (`job_runner.LocalRunner`) and
  its exit code decides the attempt; otherwise it exits 0, or `JobRun.fail_code`.
- `stop()` is CancelJob (SUBMITTED/PENDING/RUNNABLE jobs) and TerminateJob (also STARTING and
  RUNNING ones); on an array parent it applies to the unfinished children.
The job's state lives on moto's Job (`_status`, `attempts`, `job_started_at`, ...), which is
what DescribeJobs shows; `JobRun` holds what the scheduler needs besides.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.utilities.utils import get_partition

from reconciler.sandbox.job_runner import CannotStart, LocalProcess, LocalRunner

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

TICK = 0.05
KILLED = 128 + signal.SIGKILL  # what a container killed by Batch exits with
RUN_ATTR = "_sandbox"  # the attribute of moto's Job that holds its JobRun

log = logging.getLogger(__name__)


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
    parent: JobRun | None = None
    index: int | None = None  # array child index
    children: list[JobRun] = field(default_factory=list)
    waits_on: list[Any] = field(default_factory=list)  # Jobs that must succeed first
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


def run_of(job: Any) -> JobRun | None:
    """The JobRun of a moto Job the scheduler manages; None for any other job."""
    return getattr(job, RUN_ATTR, None)


def status_of(job: Any) -> str:
    return str(job._status if run_of(job) is not None else job.status)


def now() -> datetime.datetime:
    return datetime.datetime.now()


def ms(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1000)


def should_retry(rules: list[dict[str, Any]], code: int, reason: str) -> bool:
    """evaluateOnExit: the first rule whose conditions all match decides; none -> retry."""
    container_reason = reason if reason.startswith("CannotStartContainerError") else ""
    for rule in rules:
        checks = [
            ("onExitCode", str(code)),
            ("onStatusReason", reason),
            ("onReason", container_reason),
        ]
        if all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule):
            return str(rule.get("action", "")).upper() == "RETRY"
    return True


class JobScheduler:
    """Runs the sandbox's jobs; one per server, owned by its `moto_ext.Extensions`."""

    def __init__(self, runner: LocalRunner) -> None:
        self.runner = runner
        self.lock = threading.RLock()  # guards every managed job's state, _active and _thread
        self._wake = threading.Condition(self.lock)
        self._active: list[JobRun] = []  # unfinished jobs, array children before their parent
        self._thread: threading.Thread | None = None
        # Called with the Job on each status change after SUBMITTED (batch_events: AWS sends
        # no event for the submission itself).
        self.listeners: list[Callable[[Any], None]] = []

    def add(self, run: JobRun) -> None:
        """Takes a just-created job over, as SUBMITTED."""
        with self.lock:
            run.job._transitions = []  # moto's ManagedState would jump to RUNNING when read
            run.job._status = SUBMITTED
            run.since = time.monotonic()
            run.backend._jobs[run.job.job_id] = run.job
            self._active.append(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="sandbox-batch-scheduler", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def stop(self, run: JobRun, reason: str, running: bool) -> None:
        """CancelJob (running=False) or TerminateJob (running=True)."""
        with self.lock:
            self._stop(run, reason, running)
            self._wake.notify_all()

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        with self.lock:
            while True:
                if not self._active:
                    self._wake.wait()
                    continue
                self._wake.wait(TICK)
                self._tick()

    def _tick(self) -> None:
        moment = time.monotonic()
        for run in list(self._active):
            if run.stale:
                run.kill()
                continue
            try:
                if run.children:
                    self._tick_parent(run, moment)
                else:
                    self._tick_job(run, moment)
            except Exception as err:
                if run.stale:
                    continue
                log.exception("sandbox scheduler: job %s", run.job.job_id)
                run.kill()
                self._finish(run, False, f"Sandbox scheduler error: {err}")
        self._active[:] = [r for r in self._active if not r.stale and r.job._status not in DONE]

    def _set(self, run: JobRun, status: str) -> None:
        run.job._status = status
        run.since = time.monotonic()
        self._changed(run)

    def _changed(self, run: JobRun) -> None:
        for listener in self.listeners:
            listener(run.job)

    def _finish(
        self, run: JobRun, success: bool, reason: str | None, exit_code: int | None = None
    ) -> None:
        job = run.job
        job.job_stopped = True
        job.job_stopped_at = now()
        job.job_stopped_reason = reason
        job.exit_code = exit_code
        self._set(run, SUCCEEDED if success else FAILED)

    # --- array parents ----------------------------------------------------------------------

    def _settle_parent(self, run: JobRun) -> bool:
        """Finishes an array parent whose children all finished; True if it did."""
        states = [child.job._status for child in run.children]
        if run.job._status in DONE or not all(s in DONE for s in states):
            return False
        if all(s == SUCCEEDED for s in states):
            self._finish(run, True, None)
        elif run.stop_reason is not None:
            self._finish(run, False, run.stop_reason)
        elif any(status_of(dep) == FAILED for dep in run.waits_on):
            self._finish(run, False, DEPENDENCY_FAILED)
        else:
            self._finish(run, False, None)
        return True

    def _tick_parent(self, run: JobRun, moment: float) -> None:
        if self._settle_parent(run):
            return
        if run.job._status == SUBMITTED and moment - run.since >= run.step:
            self._set(run, PENDING)
        elif run.job._status == PENDING and run.ran:
            run.started = True
            run.job.job_started_at = now()
            self._set(run, RUNNING)

    # --- single jobs and array children -----------------------------------------------------

    def _tick_job(self, run: JobRun, moment: float) -> None:
        status = run.job._status
        due = moment - run.since >= run.step
        if status == SUBMITTED:
            if due:
                self._set(run, PENDING)
        elif status == PENDING:
            states = [status_of(dep) for dep in run.waits_on]
            if FAILED in states:
                # A step after the dependency failed, as every change here: a dependant cancelled
                # right after its dependency was terminated is cancelled, as it would be in Batch.
                if max(_failed_for(dep, moment) for dep in run.waits_on) >= run.step:
                    self._finish(run, False, DEPENDENCY_FAILED)
            elif due and all(s == SUCCEEDED for s in states):
                self._set(run, RUNNABLE)
        elif status == RUNNABLE:
            if due and _can_place(run.job):
                self._set(run, STARTING)
        elif status == STARTING:
            if due:
                self._set(run, RUNNING)
                self._begin_attempt(run)
        elif status == RUNNING:
            self._tick_running(run, moment)

    def _tick_running(self, run: JobRun, moment: float) -> None:
        if run.start_error is not None:
            code, reason = run.start_error
            run.start_error = None
            self._outcome(run, code, reason, success=False)
        elif run.timeout is not None and moment - run.attempt_since >= run.timeout:
            run.kill()
            self._end_attempt(run, KILLED, TIMED_OUT)
            self._finish(run, False, TIMED_OUT, KILLED)  # Batch does not retry a timed-out job
        elif run.process is not None:
            code = run.process.exit_code()
            if code is not None:
                self._outcome(run, code, CONTAINER_EXITED, success=code == 0)
        elif moment - run.attempt_since >= run.run_seconds:
            code = 0 if run.fail_code is None else run.fail_code
            self._outcome(run, code, CONTAINER_EXITED, success=run.fail_code is None)

    def _begin_attempt(self, run: JobRun) -> None:
        job = run.job
        run.attempt += 1
        run.started = True
        run.attempt_since = time.monotonic()
        job.job_started_at = now()
        job.job_stopped = False
        job.exit_code = None
        run.task_id = hashlib.sha256(f"{job.arn}#{run.attempt}".encode()).hexdigest()[:32]
        run.stream = job.log_stream_name = f"{job.job_definition.name}/default/{run.task_id}"
        if run.parent is not None:
            run.parent.ran = True
        if run.run_commands:
            try:
                run.process = self.runner.start(job, run.attempt, run.index, run.stream)
            except CannotStart as err:
                run.start_error = (err.exit_code, err.reason)  # the attempt fails on the next tick

    def _end_attempt(self, run: JobRun, exit_code: int, reason: str) -> None:
        """Records the attempt as Batch shows it: its container (ECS task), times and reason."""
        job = run.job
        region, account = job.job_queue.backend.region_name, job.job_queue.backend.account_id
        prefix = f"arn:{get_partition(region)}:ecs:{region}:{account}"
        envs = job.job_queue.environments
        cluster = (getattr(envs[0], "ecs_name", "") if envs else "") or "AWSBatch"
        container = {
            "containerInstanceArn": f"{prefix}:container-instance/{cluster}/{run.task_id[::-1]}",
            "taskArn": f"{prefix}:task/{cluster}/{run.task_id}",
            "exitCode": exit_code,
            "logStreamName": run.stream,
            "networkInterfaces": [],
        }
        job.attempts.append(
            {
                "container": container,
                "startedAt": ms(job.job_started_at),
                "stoppedAt": ms(now()),
                "statusReason": reason,
            }
        )
        run.process = None

    def _outcome(self, run: JobRun, code: int, reason: str, success: bool) -> None:
        self._end_attempt(run, code, reason)
        if success:
            self._finish(run, True, reason, code)
        elif run.attempt < run.attempts and should_retry(run.retry_rules, code, reason):
            self._set(run, RUNNABLE)
        else:
            self._finish(run, False, reason, code)

    # --- cancel and terminate ---------------------------------------------------------------

    def _stop(self, run: JobRun, reason: str, running: bool) -> None:
        if run.children:
            if run.job._status not in DONE:
                run.stop_reason = reason
                for child in run.children:
                    self._stop(child, reason, running)
                self._settle_parent(run)
            return
        status = run.job._status
        if status in (SUBMITTED, PENDING, RUNNABLE) or (running and status == STARTING):
            self._finish(run, False, reason)
        elif running and status == RUNNING:
            run.kill()
            self._end_attempt(run, KILLED, reason)
            self._finish(run, False, reason, KILLED)


def _failed_for(job: Any, moment: float) -> float:
    """How long a job has been FAILED: 0 if it has not, forever if moto failed it."""
    if status_of(job) != FAILED:
        return 0.0
    run = run_of(job)
    return float("inf") if run is None else moment - run.since


def _can_place(job: Any) -> bool:
    return any(env.state == "ENABLED" for env in job.job_queue.environments)
