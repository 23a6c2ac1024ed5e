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
- Every step is written to the server's `Journal` as it happens; a job the journal knows (a
  restarted server replaying its recording) is handed to the `restorer` (`job_restore`)
  instead of being run again. While the recording is replayed the scheduler is paused, so
  that no job runs, and no request of a job's goes unrecorded, before the account is whole.
The job's state lives on moto's Job (`_status`, `attempts`, `job_started_at`, ...), which is
what DescribeJobs shows; `JobRun` holds what the scheduler needs besides.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from reconciler.sandbox import job_journal
from reconciler.sandbox.job_run import (
    CONTAINER_EXITED,
    DEPENDENCY_FAILED,
    DONE,
    FAILED,
    KILLED,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    SUBMITTED,
    SUCCEEDED,
    TIMED_OUT,
    JobRun,
    attempt_record,
    ms,
    name_attempt,
    now,
    run_of,
    should_retry,
    status_of,
)
from reconciler.sandbox.job_runner import CannotStart, LocalRunner

TICK = 0.05

log = logging.getLogger(__name__)


class Restorer(Protocol):
    """Puts a journalled job back (`job_restore.restore`); True: it is unfinished."""

    def __call__(
        self, scheduler: JobScheduler, run: JobRun, history: list[dict[str, Any]]
    ) -> bool: ...


class JobScheduler:
    """Runs the sandbox's jobs; one per server, owned by its `moto_ext.Extensions`."""

    def __init__(
        self,
        runner: LocalRunner,
        journal: job_journal.Journal | None = None,
        restorer: Restorer | None = None,
    ) -> None:
        self.runner = runner
        self.journal = journal or job_journal.Journal()
        self.restorer = restorer
        self.lock = threading.RLock()  # guards every managed job's state, _active and _thread
        self._wake = threading.Condition(self.lock)
        self._active: list[JobRun] = []  # unfinished jobs, array children before their parent
        self._thread: threading.Thread | None = None
        self._paused = False
        # Called with the Job on each status change after SUBMITTED (batch_events: AWS sends
        # no event for the submission itself).
        self.listeners: list[Callable[[Any], None]] = []

    def add(self, run: JobRun) -> None:
        """Takes a just-created job over, as SUBMITTED (or as the journal last saw it)."""
        with self.lock:
            job = run.job
            job._transitions = []  # moto's ManagedState would jump to RUNNING when read
            job._status = SUBMITTED
            run.since = time.monotonic()
            run.backend._jobs[job.job_id] = job
            history = self.journal.take(job.job_id)
            if history and self.restorer is not None:
                if not self.restorer(self, run, history):
                    return  # finished before the restart: kept as it was, never run again
            else:
                created = job_journal.stamp(job.job_created_at)
                self.journal.record(job_journal.SUBMITTED, job.job_id, createdAt=created)
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

    def fail_lost_attempt(self, run: JobRun, reason: str) -> None:
        """The attempt running on a lost host fails without an exit code; the job's retry
        strategy decides what follows (`job_restore`)."""
        with self.lock:
            self._outcome(run, None, reason, success=False)

    def pause(self, paused: bool) -> None:
        """Holds every job where it is (while the recording is replayed), or lets them go on."""
        with self.lock:
            self._paused = paused
            self._wake.notify_all()

    def shutdown(self) -> None:
        """The server is stopping: its job processes go with it, as a lost host's containers.

        Nothing is journalled: a restarted server finds those attempts begun and not ended."""
        acquired = self.lock.acquire(timeout=2.0)  # a stopping server must not wait for ever
        try:
            self._paused = True  # no tick records the killed processes' exits
            self.journal.close(for_good=True)
            for run in list(self._active):
                run.kill()
        finally:
            if acquired:
                self.lock.release()

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        with self.lock:
            while True:
                if not self._active or self._paused:
                    self._wake.wait()
                    continue
                self._wake.wait(TICK)
                if not self._paused:  # paused meanwhile (a shutdown killed its processes)
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
        self,
        run: JobRun,
        success: bool,
        reason: str | None,
        exit_code: int | None = None,
        stopped_at: datetime.datetime | None = None,
    ) -> None:
        """`stopped_at` is the last attempt's stop: Batch shows the job's stoppedAt equal to it."""
        job = run.job
        job.job_stopped = True
        job.job_stopped_at = stopped_at or now()
        job.job_stopped_reason = reason
        job.exit_code = exit_code
        self._set(run, SUCCEEDED if success else FAILED)
        self.journal.record(
            job_journal.FINISHED,
            job.job_id,
            status=job._status,
            statusReason=reason,
            exitCode=exit_code,
            startedAt=job_journal.stamp(job.job_started_at) if run.started else None,
            stoppedAt=job_journal.stamp(job.job_stopped_at),
        )

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
            started = job_journal.stamp(run.job.job_started_at)
            self.journal.record(job_journal.STARTED, run.job.job_id, startedAt=started)

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
            stopped = self._end_attempt(run, KILLED, TIMED_OUT)
            self._finish(run, False, TIMED_OUT, KILLED, stopped)  # Batch does not retry it
        elif run.process is not None:
            code = run.process.exit_code()
            if code is not None:
                self._outcome(run, code, CONTAINER_EXITED, success=code == 0)
        elif moment - run.attempt_since >= run.run_seconds:
            code = 0 if run.fail_code is None else run.fail_code
            self._outcome(run, code, CONTAINER_EXITED, success=run.fail_code is None)

    def _begin_attempt(self, run: JobRun) -> None:
        job = run.job
        run.started = True
        run.attempt_since = time.monotonic()
        job.job_started_at = now()
        job.job_stopped = False
        job.exit_code = None
        name_attempt(run, run.attempt + 1)
        if run.run_commands:
            try:
                run.process = self.runner.start(
                    job, run.attempt, run.index, run.stream or "", run.endpoint
                )
            except CannotStart as err:
                run.start_error = (err.exit_code, err.reason)  # the attempt fails on the next tick
        self.journal.record(
            job_journal.BEGAN,
            job.job_id,
            attempt=run.attempt,
            startedAt=job_journal.stamp(job.job_started_at),
            pid=run.process.proc.pid if run.process is not None else None,  # its process group
        )

    def _end_attempt(self, run: JobRun, exit_code: int | None, reason: str) -> datetime.datetime:
        """Records the attempt as Batch shows it (no exit code: its host was lost); returns
        when it stopped."""
        job = run.job
        stopped = now()
        attempt = attempt_record(run, exit_code, reason, ms(stopped))
        job.attempts.append(attempt)
        run.process = None
        events = self.runner.log_events(job._log_backend, run.stream) if run.stream else []
        self.journal.record(job_journal.ENDED, job.job_id, attempt=attempt, logs=events)
        return stopped

    def _outcome(self, run: JobRun, code: int | None, reason: str, success: bool) -> None:
        stopped = self._end_attempt(run, code, reason)
        if success:
            self._finish(run, True, reason, code, stopped)
        elif run.attempt < run.attempts and should_retry(run.retry_rules, code, reason):
            self._set(run, RUNNABLE)
        else:
            self._finish(run, False, reason, code, stopped)

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
            stopped = self._end_attempt(run, KILLED, reason)
            self._finish(run, False, reason, KILLED, stopped)


def _failed_for(job: Any, moment: float) -> float:
    """How long a job has been FAILED: 0 if it has not, forever if moto failed it."""
    if status_of(job) != FAILED:
        return 0.0
    run = run_of(job)
    return float("inf") if run is None else moment - run.since


def _can_place(job: Any) -> bool:
    return any(env.state == "ENABLED" for env in job.job_queue.environments)
