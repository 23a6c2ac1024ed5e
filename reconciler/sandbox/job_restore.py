"""Jobs put back as they were when a restarted sandbox replays its recording.

The replayed SubmitJob recreates each job with its old ID; the scheduler hands it here with
its journalled history (`job_journal`), and it comes back:
- finished (SUCCEEDED or FAILED): exactly as it ended (status, reason, exit code, attempts,
  createdAt, startedAt, stoppedAt, its log events in CloudWatch Logs), and never runs again;
- with an attempt that was running when the server went away: as AWS treats an attempt whose
  host is lost, that attempt fails without an exit code, with the statusReason
  `job_run.HOST_LOST` ("Host EC2 (instance sandbox) terminated: ..."), and the job's retry
  strategy decides (evaluateOnExit `onStatusReason: "Host EC2*"` matches it): another
  attempt, or FAILED. Its process died with the server (or, after a crash, is killed here),
  so nothing of it goes on beside a retry;
- between attempts (a failed attempt, retry pending): RUNNABLE, its attempts kept;
- not started: as submitted (createdAt kept), to run now as it would have.

A job unfinished in a loaded snapshot (`snapshot`) comes back the same way: `rewind` puts it
back as its SubmitJob made it, and the scheduler restores it from its journal, as the replayed
SubmitJob would have. Its journal may go beyond the snapshot (a crash after a restart that
loaded it): the journal decides, not the snapshot.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.sandbox import job_journal, procs
from reconciler.sandbox.job_run import (
    DONE,
    HOST_LOST,
    PROGRESS,
    RUNNABLE,
    RUNNING,
    JobRun,
    name_attempt,
    stream_of,
)

if TYPE_CHECKING:
    from reconciler.sandbox.config import SandboxConfig
    from reconciler.sandbox.job_runner import LocalRunner
    from reconciler.sandbox.job_scheduler import JobScheduler


def kill_orphan(pid: object, job_id: str, attempt: int) -> bool:
    """Kills what is left of the attempt's process, if its server died without killing it (a
    crash, SIGKILL): a lost host's container does not go on. Only a process group whose leader
    is still that attempt (its environment says so): a pid may have been reused since."""
    if not isinstance(pid, int) or pid <= 1:
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False  # gone (or no procfs to vouch for it)
    if f"AWS_BATCH_JOB_ID={job_id}".encode() not in environ:
        return False
    if f"AWS_BATCH_JOB_ATTEMPT={attempt}".encode() not in environ:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
        procs.wait_gone([pid])
        return True
    return False


def rewind(run: JobRun, config: SandboxConfig, runner: LocalRunner) -> None:
    """Puts a job of a snapshot back as the SubmitJob made it, on this server (whose settings
    a replayed SubmitJob would get), for the scheduler to restore it from its journal: the
    logs of its attempts go too (the journal has those of the attempts that ended)."""
    job = run.job
    runner.forget_logs(job._log_backend, [stream_of(job, n) for n in range(1, run.attempt + 1)])
    job.job_started_at = job.job_stopped_at = datetime.datetime(1970, 1, 1)  # moto's "not yet"
    job.job_stopped, job.job_stopped_reason, job.exit_code = False, None, None
    job.log_stream_name = None
    job.attempts = []
    for name, value in PROGRESS.items():
        setattr(run, name, value)
    run.step, run.run_seconds = config.step_seconds, config.job_seconds
    run.run_commands = config.run_commands
    run.endpoint = config.endpoint or run.endpoint


def restore(scheduler: JobScheduler, run: JobRun, history: list[dict[str, Any]]) -> bool:
    """Puts the job back as its history left it; True if it is unfinished (to be run on)."""
    job = run.job
    steps: dict[str, list[dict[str, Any]]] = {}
    for entry in history:
        steps.setdefault(str(entry.get("event")), []).append(entry)
    for entry in steps.get(job_journal.SUBMITTED, [])[:1]:
        job.job_created_at = job_journal.unstamp(entry["createdAt"])
    for entry in steps.get(job_journal.ENDED, []):
        attempt = entry["attempt"]
        job.attempts.append(attempt)
        stream = attempt.get("container", {}).get("logStreamName")
        if stream:
            scheduler.runner.restore_log(job._log_backend, stream, entry.get("logs") or [])
    began = steps.get(job_journal.BEGAN, [])
    if began:
        name_attempt(run, len(began))
        run.started = True
        job.job_started_at = job_journal.unstamp(began[-1]["startedAt"])
    for entry in steps.get(job_journal.STARTED, [])[:1]:  # an array parent
        run.started = run.ran = True
        job.job_started_at = job_journal.unstamp(entry["startedAt"])
        job._status = RUNNING
    run.since = time.monotonic()
    finished = steps.get(job_journal.FINISHED)
    if finished:
        end = finished[-1]
        job.job_stopped = True
        job.job_stopped_at = job_journal.unstamp(end["stoppedAt"])
        job.job_stopped_reason = end.get("statusReason")
        job.exit_code = end.get("exitCode")
        if end.get("startedAt"):
            run.started = True
            job.job_started_at = job_journal.unstamp(end["startedAt"])
        job._status = end["status"]
        return False
    if len(began) > len(steps.get(job_journal.ENDED, [])):
        # The server went away under this attempt: its host was lost.
        kill_orphan(began[-1].get("pid"), job.job_id, len(began))
        job._status = RUNNING
        scheduler.fail_lost_attempt(run, HOST_LOST)
        return job._status not in DONE
    if began:
        job._status = RUNNABLE  # a failed attempt, to be retried
    return True
