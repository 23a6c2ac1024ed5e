"""Jobs on the sandbox behave like AWS Batch jobs.

moto's no-Docker backend (BatchSimpleBackend) marks every job SUCCEEDED as it is submitted and
ignores dependsOn, retries and timeouts. Here one daemon scheduler thread moves each job through
AWS's states instead, ticking every TICK seconds while any job is unfinished and sleeping
otherwise:
- SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED, one state per
  RECONCILER_SANDBOX_STEP_SECONDS (default 0.2), RUNNING for RECONCILER_SANDBOX_JOB_SECONDS
  (default 1.0); both are read when the job is submitted. Like Batch, a job stays RUNNABLE while
  no compute environment of its queue is ENABLED.
- dependsOn: a job stays PENDING until every dependency SUCCEEDED, and fails with "Dependent Job
  failed" a step after one FAILED. A dependency on an array job waits for the whole array;
  N_TO_N between arrays of one size pairs child i with child i; SEQUENTIAL runs an array's
  children in order.
- Array jobs: children `<parentId>:<index>` run independently; the parent carries
  arrayProperties.statusSummary and size, is PENDING until a child runs, then RUNNING, and
  SUCCEEDED or FAILED once every child finished. ListJobs by queue shows parents, not children.
- retryStrategy (SubmitJob's, else the job definition's; evaluateOnExit honoured) sends a failed
  attempt back to RUNNABLE while attempts are left; each attempt is recorded in `attempts`.
  timeout.attemptDurationSeconds ends an attempt that runs longer ("Job attempt duration exceeded
  timeout"); as in Batch, a timed-out job is not retried. The 60 s minimum is not enforced.
- The tag reconciler.io/sandbox-outcome=fail makes every attempt exit 1 (or the integer in the
  tag reconciler.io/sandbox-exit-code).
- CancelJob fails SUBMITTED/PENDING/RUNNABLE jobs; TerminateJob also STARTING/RUNNING ones; on an
  array parent both apply to its unfinished children.
- With RECONCILER_SANDBOX_RUN_COMMANDS=1 a job's command runs as a local process when the job
  reaches RUNNING, in a fresh scratch directory, with the job's environment and AWS_BATCH_*
  variables; its exit code decides the attempt and its output goes to CloudWatch Logs
  (/aws/batch/job, the job's logStreamName). Only what the job definition and overrides say
  reaches the process: the server's own environment (credentials included) does not, except PATH.
  Note that a replayed recording (sandbox restart) submits, and so runs, its jobs again.
`install()` is idempotent; `reconciler.sandbox.moto_ext.install()` calls it.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fnmatch
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.batch import models as batch_models
from moto.batch import responses as batch_responses
from moto.batch.exceptions import ClientException
from moto.batch_simple import models as simple_models
from moto.utilities.utils import get_partition

STEP_ENV = "RECONCILER_SANDBOX_STEP_SECONDS"
RUN_ENV = "RECONCILER_SANDBOX_JOB_SECONDS"
COMMANDS_ENV = "RECONCILER_SANDBOX_RUN_COMMANDS"
OUTCOME_TAG = "reconciler.io/sandbox-outcome"
EXIT_CODE_TAG = "reconciler.io/sandbox-exit-code"

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

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # moto's wants 2 characters
LOG_GROUP = "/aws/batch/job"
TICK = 0.05
KILLED = 128 + signal.SIGKILL  # what a container killed by Batch exits with

log = logging.getLogger(__name__)

_lock = threading.RLock()  # guards every managed job's state, _active and _thread
_wake = threading.Condition(_lock)
_active: list[_Run] = []  # unfinished jobs, array children before their parent
_thread: threading.Thread | None = None
_request = threading.local()  # what SubmitJob said that moto's submit_job does not take
_installed = False


@dataclass(eq=False)
class _Run:
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
    parent: _Run | None = None
    index: int | None = None  # array child index
    children: list[_Run] = field(default_factory=list)
    waits_on: list[Any] = field(default_factory=list)  # Jobs that must succeed first
    since: float = 0.0  # monotonic time of the last state change
    started: bool = False  # reached RUNNING at least once (startedAt is shown)
    ran: bool = False  # array parent: a child reached RUNNING
    attempt: int = 0
    attempt_since: float = 0.0
    task_id: str = ""
    stream: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    swept: bool = False  # the process exited and its leftover process group was killed
    start_error: tuple[int, str] | None = None
    stop_reason: str | None = None  # array parent: why it was cancelled or terminated


def _now() -> datetime.datetime:
    return datetime.datetime.now()


def _ms(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1000)


def _env_float(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, "") or default))
    except ValueError:
        return default


def _record(job: Any) -> _Run | None:
    return getattr(job, "_sandbox", None)


def _status(job: Any) -> str:
    return str(job._status if _record(job) is not None else job.status)


def _stale(rec: _Run) -> bool:
    jobs = getattr(rec.backend, "_jobs", None)  # None while moto resets the backend
    return jobs is None or jobs.get(rec.job.job_id) is not rec.job


def _find_job(backend: Any, ident: str | None) -> Any:
    if not ident:
        return None
    jobs = backend._jobs
    return jobs.get(ident) or jobs.get(ident.rsplit(":job/", 1)[-1])


# --- submission ----------------------------------------------------------------------------


def _resolve(backend: Any, depends_on: list[dict[str, Any]], size: int) -> list[tuple[Any, str]]:
    """dependsOn -> (dependency Job or None, type) pairs; unknown jobs are refused."""
    resolved: list[tuple[Any, str]] = []
    for dep in depends_on:
        kind = str(dep.get("type") or "").upper()
        ident = dep.get("jobId")
        if kind == "SEQUENTIAL" and size:
            resolved.append((None, kind))
        if not ident:
            continue
        target = _find_job(backend, ident)
        if target is None:
            raise ClientException(f"dependsOn: job {ident} does not exist")
        target_size = len(target._child_jobs or [])
        if kind == "N_TO_N" and size and target_size and target_size != size:
            raise ClientException(
                f"dependsOn: an N_TO_N dependency needs array jobs of one size; "
                f"{ident} has {target_size} children, this job {size}"
            )
        resolved.append((target, kind))
    return resolved


def _waits_on(deps: list[tuple[Any, str]], index: int | None, siblings: list[_Run]) -> list[Any]:
    waits = []
    for target, kind in deps:
        if target is None:  # SEQUENTIAL: child i after child i-1
            if index:
                waits.append(siblings[index - 1].job)
        elif kind == "N_TO_N" and index is not None and target._child_jobs:
            waits.append(target._child_jobs[index])
        else:
            waits.append(target)
    return waits


def _submit_job(
    self: Any,
    job_name: str,
    job_def_id: str,
    job_queue: str,
    array_properties: dict[str, Any],
    depends_on: list[dict[str, str]] | None = None,
    container_overrides: dict[str, Any] | None = None,
    eks_properties_override: dict[str, Any] | None = None,
    timeout: dict[str, int] | None = None,
    parameters: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[str, str, str]:
    """BatchSimpleBackend.submit_job: creates the job (and its children) and hands them over."""
    if JOB_NAME.match(job_name or "") is None:
        raise ClientException("Job name should match valid pattern")
    job_def = self.get_job_definition(job_def_id)
    if job_def is None:
        raise ClientException(f"Job definition {job_def_id} does not exist")
    queue = self.get_job_queue(job_queue)
    if queue is None:
        raise ClientException(f"Job queue {job_queue} does not exist")
    array_properties = array_properties or {}
    size = int(array_properties.get("size") or 0)
    retry = getattr(_request, "retry_strategy", None) or job_def.retry_strategy or {}
    limit = (timeout or {}).get("attemptDurationSeconds") or (job_def.timeout or {}).get(
        "attemptDurationSeconds"
    )
    tags = tags or {}
    fail_code = None
    if str(tags.get(OUTCOME_TAG, "")).lower() == "fail":
        try:
            fail_code = int(tags.get(EXIT_CODE_TAG, 1))
        except ValueError:
            fail_code = 1
    settings: dict[str, Any] = {
        "backend": self.backend,
        "step": _env_float(STEP_ENV, 0.2),
        "run_seconds": _env_float(RUN_ENV, 1.0),
        "attempts": max(1, min(10, int(retry.get("attempts") or 1))),
        "retry_rules": list(retry.get("evaluateOnExit") or []),
        "timeout": float(limit) if limit else None,
        "fail_code": fail_code,
        "run_commands": os.environ.get(COMMANDS_ENV, "").lower() in ("1", "true", "yes", "on"),
    }

    def make(index: int | None = None, parent_id: str | None = None) -> Any:
        return batch_models.Job(
            job_name,
            job_def,
            queue,
            self,
            log_backend=self.logs_backend,
            container_overrides=container_overrides,
            eks_properties_override=eks_properties_override,
            depends_on=depends_on,
            all_jobs=self._jobs,
            timeout=timeout,
            array_properties=(
                array_properties if index is None else {"statusSummary": {}, "index": index}
            ),
            parameters=parameters,
            tags=tags if index is None else None,
            provided_job_id=None if index is None else f"{parent_id}:{index}",
        )

    with _lock:
        deps = _resolve(self.backend, depends_on or [], size)
        job = make()
        rec = _Run(job, **settings)
        job._sandbox = rec
        if size:
            for index in range(size):
                child = _Run(make(index, job.job_id), **settings, parent=rec, index=index)
                child.job._sandbox = child
                child.waits_on = _waits_on(deps, index, rec.children)
                rec.children.append(child)
            job._child_jobs = [child.job for child in rec.children]
            # The parent's own: whole jobs (its children wait for those too, and for the rest).
            rec.waits_on = [
                t for t, kind in deps if t is not None and not (kind == "N_TO_N" and t._child_jobs)
            ]
        else:
            rec.waits_on = _waits_on(deps, None, [])
        for child in rec.children:
            self._mark_job_as_finished(include_start_attempt=False, job=child.job)
        self._mark_job_as_finished(include_start_attempt=False, job=job)
    return job_name, job.job_id, job.arn


def _hand_over(self: Any, include_start_attempt: bool, job: Any) -> None:
    """BatchSimpleBackend._mark_job_as_finished: the job is SUBMITTED; the scheduler runs it."""
    global _thread
    with _lock:
        rec = _record(job)
        if rec is None:  # not from _submit_job: plain defaults
            rec = _Run(job, self.backend, _env_float(STEP_ENV, 0.2), _env_float(RUN_ENV, 1.0))
            job._sandbox = rec
        job._transitions = []  # moto's ManagedState would otherwise jump to RUNNING when read
        job._status = SUBMITTED
        rec.since = time.monotonic()
        rec.backend._jobs[job.job_id] = job
        _active.append(rec)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="sandbox-batch-scheduler", daemon=True)
            _thread.start()
        _wake.notify_all()


def _submitjob(self: Any) -> str:
    """BatchResponse.submitjob, also passing on retryStrategy (which moto drops)."""
    _request.retry_strategy = self._get_param("retryStrategy")
    try:
        return str(_original_submitjob(self))
    finally:
        _request.retry_strategy = None


# --- the scheduler -------------------------------------------------------------------------


def _loop() -> None:
    with _lock:
        while True:
            if not _active:
                _wake.wait()
                continue
            _wake.wait(TICK)
            _tick()


def _tick() -> None:
    now = time.monotonic()
    for rec in list(_active):
        if _stale(rec):
            _kill(rec)
            continue
        try:
            if rec.children:
                _tick_parent(rec, now)
            else:
                _tick_job(rec, now)
        except Exception as err:
            if _stale(rec):
                continue
            log.exception("sandbox scheduler: job %s", rec.job.job_id)
            _kill(rec)
            _finish(rec, False, f"Sandbox scheduler error: {err}")
    _active[:] = [r for r in _active if not _stale(r) and r.job._status not in DONE]


def _set(rec: _Run, status: str) -> None:
    rec.job._status = status
    rec.since = time.monotonic()


def _finish(rec: _Run, success: bool, reason: str | None, exit_code: int | None = None) -> None:
    job = rec.job
    job.job_stopped = True
    job.job_stopped_at = _now()
    job.job_stopped_reason = reason
    job.exit_code = exit_code
    _set(rec, SUCCEEDED if success else FAILED)


def _settle_parent(rec: _Run) -> bool:
    """Finishes an array parent whose children all finished; True if it did."""
    states = [child.job._status for child in rec.children]
    if rec.job._status in DONE or not all(s in DONE for s in states):
        return False
    if all(s == SUCCEEDED for s in states):
        _finish(rec, True, None)
    elif rec.stop_reason is not None:
        _finish(rec, False, rec.stop_reason)
    elif any(_status(dep) == FAILED for dep in rec.waits_on):
        _finish(rec, False, DEPENDENCY_FAILED)
    else:
        _finish(rec, False, None)
    return True


def _tick_parent(rec: _Run, now: float) -> None:
    if _settle_parent(rec):
        return
    if rec.job._status == SUBMITTED and now - rec.since >= rec.step:
        _set(rec, PENDING)
    elif rec.job._status == PENDING and rec.ran:
        rec.started = True
        rec.job.job_started_at = _now()
        _set(rec, RUNNING)


def _failed_for(job: Any, now: float) -> float:
    """How long a job has been FAILED: 0 if it has not, forever if moto failed it."""
    if _status(job) != FAILED:
        return 0.0
    rec = _record(job)
    return float("inf") if rec is None else now - rec.since


def _can_place(job: Any) -> bool:
    return any(env.state == "ENABLED" for env in job.job_queue.environments)


def _tick_job(rec: _Run, now: float) -> None:
    status = rec.job._status
    due = now - rec.since >= rec.step
    if status == SUBMITTED:
        if due:
            _set(rec, PENDING)
    elif status == PENDING:
        states = [_status(dep) for dep in rec.waits_on]
        if FAILED in states:
            # A step after the dependency failed, as every change here: a dependant cancelled
            # right after its dependency was terminated is cancelled, as it would be in Batch.
            if max(_failed_for(dep, now) for dep in rec.waits_on) >= rec.step:
                _finish(rec, False, DEPENDENCY_FAILED)
        elif due and all(s == SUCCEEDED for s in states):
            _set(rec, RUNNABLE)
    elif status == RUNNABLE:
        if due and _can_place(rec.job):
            _set(rec, STARTING)
    elif status == STARTING:
        if due:
            _set(rec, RUNNING)
            _begin_attempt(rec)
    elif status == RUNNING:
        _tick_running(rec, now)


def _tick_running(rec: _Run, now: float) -> None:
    if rec.start_error is not None:
        code, reason = rec.start_error
        rec.start_error = None
        _outcome(rec, code, reason, success=False)
    elif rec.timeout is not None and now - rec.attempt_since >= rec.timeout:
        _kill(rec)
        _end_attempt(rec, KILLED, TIMED_OUT)
        _finish(rec, False, TIMED_OUT, KILLED)  # Batch does not retry a timed-out job
    elif rec.proc is not None:
        if rec.proc.poll() is None:
            return
        if rec.pump is not None and rec.pump.is_alive():
            # The process exited; whatever it left behind holds its output open. A container
            # ends with its main process, so that goes too.
            if not rec.swept:
                rec.swept = True
                _kill(rec)
            return
        code = rec.proc.returncode
        code = 128 - code if code < 0 else code
        _outcome(rec, code, CONTAINER_EXITED, success=code == 0)
    elif now - rec.attempt_since >= rec.run_seconds:
        code = 0 if rec.fail_code is None else rec.fail_code
        _outcome(rec, code, CONTAINER_EXITED, success=rec.fail_code is None)


def _begin_attempt(rec: _Run) -> None:
    job = rec.job
    rec.attempt += 1
    rec.started = True
    rec.attempt_since = time.monotonic()
    job.job_started_at = _now()
    job.job_stopped = False
    job.exit_code = None
    rec.task_id = hashlib.sha256(f"{job.arn}#{rec.attempt}".encode()).hexdigest()[:32]
    rec.stream = job.log_stream_name = f"{job.job_definition.name}/default/{rec.task_id}"
    if rec.parent is not None:
        rec.parent.ran = True
    command = _command(job)
    if rec.run_commands and command:
        _launch(rec, command)


def _end_attempt(rec: _Run, exit_code: int, reason: str) -> None:
    job = rec.job
    region, account = job.job_queue.backend.region_name, job.job_queue.backend.account_id
    prefix = f"arn:{get_partition(region)}:ecs:{region}:{account}"
    envs = job.job_queue.environments
    cluster = (getattr(envs[0], "ecs_name", "") if envs else "") or "AWSBatch"
    container = {
        "containerInstanceArn": f"{prefix}:container-instance/{cluster}/{rec.task_id[::-1]}",
        "taskArn": f"{prefix}:task/{cluster}/{rec.task_id}",
        "exitCode": exit_code,
        "logStreamName": rec.stream,
        "networkInterfaces": [],
    }
    job.attempts.append(
        {
            "container": container,
            "startedAt": _ms(job.job_started_at),
            "stoppedAt": _ms(_now()),
            "statusReason": reason,
        }
    )
    rec.proc = rec.pump = None
    rec.swept = False


def _outcome(rec: _Run, code: int, reason: str, success: bool) -> None:
    _end_attempt(rec, code, reason)
    if success:
        _finish(rec, True, reason, code)
    elif rec.attempt < rec.attempts and _retry(rec, code, reason):
        _set(rec, RUNNABLE)
    else:
        _finish(rec, False, reason, code)


def _retry(rec: _Run, code: int, reason: str) -> bool:
    """evaluateOnExit: the first rule whose conditions all match decides; none -> retry."""
    container_reason = reason if reason.startswith("CannotStartContainerError") else ""
    for rule in rec.retry_rules:
        checks = [
            ("onExitCode", str(code)),
            ("onStatusReason", reason),
            ("onReason", container_reason),
        ]
        if all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule):
            return str(rule.get("action", "")).upper() == "RETRY"
    return True


# --- stopping ------------------------------------------------------------------------------


def _stop(rec: _Run, reason: str, running: bool) -> None:
    if rec.children:
        if rec.job._status not in DONE:
            rec.stop_reason = reason
            for child in rec.children:
                _stop(child, reason, running)
            _settle_parent(rec)
        return
    status = rec.job._status
    if status in (SUBMITTED, PENDING, RUNNABLE) or (running and status == STARTING):
        _finish(rec, False, reason)
    elif running and status == RUNNING:
        _kill(rec)
        _end_attempt(rec, KILLED, reason)
        _finish(rec, False, reason, KILLED)


def _stop_job(self: Any, job_id: str, reason: str, running: bool) -> bool:
    """Cancels or terminates a job the scheduler runs; False for any other job."""
    with _lock:
        rec = _record(_find_job(self, job_id))
        if rec is None or _stale(rec):
            return False
        if not reason:
            raise ClientException("'reason' is a required field (cannot be an empty string)")
        _stop(rec, reason, running)
        _wake.notify_all()
        return True


def _cancel_job(self: Any, job_id: str, reason: str) -> None:
    if not _stop_job(self, job_id, reason, running=False):
        _original_cancel_job(self, job_id, reason)


def _terminate_job(self: Any, job_id: str, reason: str) -> None:
    if not _stop_job(self, job_id, reason, running=True):
        _original_terminate_job(self, job_id, reason)


# --- local execution -----------------------------------------------------------------------


def _command(job: Any) -> list[str]:
    props = job.job_definition.container_properties
    if props is None:
        return []
    command = job.container_overrides.get("command") or props.get("command") or []
    if isinstance(command, str):
        command = [command]
    params = {k: str(v) for k, v in (job.parameters or {}).items()}
    if not params:
        return [str(part) for part in command]
    names = "|".join(re.escape(name) for name in sorted(params, key=len, reverse=True))
    pattern = re.compile(f"Ref::({names})")
    return [pattern.sub(lambda m: params[m.group(1)], str(part)) for part in command]


def _environment(rec: _Run, scratch: str) -> dict[str, str]:
    job = rec.job
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": scratch}
    for source in (
        (job.job_definition.container_properties or {}).get("environment") or [],
        job.container_overrides.get("environment") or [],
    ):
        for item in source:
            env[str(item["name"])] = str(item.get("value", ""))
    queue = job.job_queue
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(rec.attempt)
    env["AWS_BATCH_JQ_NAME"] = queue.name
    if queue.environments:
        env["AWS_BATCH_CE_NAME"] = queue.environments[0].name
    if rec.index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(rec.index)
    return env


def _launch(rec: _Run, command: list[str]) -> None:
    scratch = tempfile.mkdtemp(prefix="reconciler-sandbox-job-")
    try:
        proc = subprocess.Popen(
            command,
            cwd=scratch,
            env=_environment(rec, scratch),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
    except OSError as err:
        shutil.rmtree(scratch, ignore_errors=True)
        missing = isinstance(err, FileNotFoundError)
        why = "executable file not found in $PATH" if missing else (err.strerror or str(err))
        rec.start_error = (
            127 if missing else 126,
            f'CannotStartContainerError: exec: "{command[0]}": {why}',
        )
        return
    rec.proc = proc
    rec.pump = threading.Thread(
        target=_pump,
        args=(proc, scratch, rec.job._log_backend, rec.stream),
        name=f"sandbox-job-{rec.job.job_id}",
        daemon=True,
    )
    rec.pump.start()


def _pump(proc: subprocess.Popen[bytes], scratch: str, logs: Any, stream: str) -> None:
    """Copies the process's output, line by line, to its CloudWatch Logs stream."""
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:  # CloudWatch Logs takes no empty messages
                _put_log(logs, stream, line)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _put_log(logs: Any, stream: str, message: str) -> None:
    with _lock:
        try:
            if LOG_GROUP not in logs.groups:
                logs.create_log_group(LOG_GROUP, {})
            if stream not in logs.groups[LOG_GROUP].streams:
                logs.create_log_stream(LOG_GROUP, stream)
            event = {"timestamp": int(time.time() * 1000), "message": message}
            logs.put_log_events(LOG_GROUP, stream, [event])
        except Exception:  # a log line must never take the job down
            log.debug("sandbox: dropped a log line for %s", stream, exc_info=True)


def _kill(rec: _Run) -> None:
    if rec.proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.proc.pid, signal.SIGKILL)


# --- what the API shows --------------------------------------------------------------------


def _decorate(rec: _Run, result: dict[str, Any], full: bool) -> None:
    job = rec.job
    result["status"] = job._status
    if rec.started:
        result["startedAt"] = _ms(job.job_started_at)
    else:
        result.pop("startedAt", None)
    if job.job_stopped and job.exit_code is not None:
        result.setdefault("container", {})["exitCode"] = job.exit_code
    if rec.children:
        size = len(rec.children)
        if full:
            summary = dict.fromkeys(STATES, 0)
            for child in rec.children:
                summary[child.job._status] += 1
            result["arrayProperties"] = {"statusSummary": summary, "size": size}
        else:
            result["arrayProperties"] = {"size": size}
    elif rec.index is not None:
        result["arrayProperties"] = {"index": rec.index}
    if full:
        result["attempts"] = copy.deepcopy(job.attempts)


def _describe(self: Any) -> dict[str, Any]:
    rec = _record(self)
    if rec is None:
        return dict(_original_describe(self))
    with _lock:
        # moto's describe appends to containerOverrides.environment on every call, and marks an
        # array parent SUCCEEDED by itself: it gets a copy and no children to look at.
        overrides, children = self.container_overrides, self._child_jobs
        self.container_overrides, self._child_jobs = copy.deepcopy(overrides), None
        try:
            result = dict(_original_describe(self))
        finally:
            self.container_overrides, self._child_jobs = overrides, children
        _decorate(rec, result, full=True)
        return result


def _describe_short(self: Any) -> dict[str, Any]:
    rec = _record(self)
    if rec is None:
        return dict(_original_describe_short(self))
    with _lock:
        result = dict(_original_describe_short(self))
        _decorate(rec, result, full=False)
        return result


def _describe_jobs(self: Any, jobs: list[str] | None) -> list[dict[str, Any]]:
    with _lock:  # _jobs only grows under the lock
        return list(_original_describe_jobs(self, jobs))


def _list_jobs(
    self: Any,
    job_queue_name: str | None,
    array_job_id: str | None,
    job_status: str | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> list[Any]:
    with _lock:
        jobs = list(_original_list_jobs(self, job_queue_name, array_job_id, job_status, filters))
    if array_job_id:
        return jobs
    # Like Batch, a queue's listing shows array parents, not their children.
    return [job for job in jobs if getattr(_record(job), "parent", None) is None]


_original_submitjob = batch_responses.BatchResponse.submitjob
_original_cancel_job = batch_models.BatchBackend.cancel_job
_original_terminate_job = batch_models.BatchBackend.terminate_job
_original_describe = batch_models.Job.describe
_original_describe_short = batch_models.Job.describe_short
_original_describe_jobs = batch_models.BatchBackend.describe_jobs
_original_list_jobs = batch_models.BatchBackend.list_jobs


def install() -> None:
    """Patches moto so that jobs on the no-Docker backend run as described above."""
    global _installed
    if _installed:
        return
    simple_models.BatchSimpleBackend.submit_job = _submit_job  # type: ignore[method-assign]
    simple_models.BatchSimpleBackend._mark_job_as_finished = _hand_over  # type: ignore[method-assign]
    batch_responses.BatchResponse.submitjob = _submitjob  # type: ignore[method-assign]
    # BatchSimpleBackend hands every other call to the BatchBackend it wraps: these patches go
    # there, and leave jobs they do not manage (moto's Docker backend) to moto.
    batch_models.BatchBackend.cancel_job = _cancel_job  # type: ignore[method-assign]
    batch_models.BatchBackend.terminate_job = _terminate_job  # type: ignore[method-assign]
    batch_models.BatchBackend.describe_jobs = _describe_jobs  # type: ignore[method-assign]
    batch_models.BatchBackend.list_jobs = _list_jobs  # type: ignore[method-assign]
    batch_models.Job.describe = _describe  # type: ignore[method-assign]
    batch_models.Job.describe_short = _describe_short  # type: ignore[method-assign]
    _installed = True
