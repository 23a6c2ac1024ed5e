"""The Batch job API of the sandbox: moto's job calls, patched to behave like AWS Batch.

`reconciler.sandbox.moto_ext.install()` creates one `JobPatches` per server and installs it;
each patched moto method calls the matching method here. SubmitJob creates moto's Job (and an
array's children) and hands them to the server's `JobScheduler`
(`reconciler.sandbox.job_scheduler`), which moves them through AWS's states. Here is what the
API adds around that:
- dependsOn is checked and resolved when the job is submitted: a dependency on an array job
  waits for the whole array; N_TO_N between arrays of one size pairs child i with child i;
  SEQUENTIAL runs an array's children in order.
- Array children are `<parentId>:<index>`; the parent shows arrayProperties.statusSummary and
  size. ListJobs by queue shows parents, not children; without jobStatus (and without filters)
  it lists RUNNING jobs only.
- retryStrategy (SubmitJob's, else the job definition's; evaluateOnExit honoured) and
  timeout.attemptDurationSeconds (SubmitJob's, else the definition's; the 60 s minimum is not
  enforced) are taken over by the scheduler.
- The tag reconciler.io/sandbox-outcome=fail makes every attempt exit 1 (or the integer in the
  tag reconciler.io/sandbox-exit-code).
- CancelJob and TerminateJob stop the jobs the scheduler runs (others are left to moto).
- RECONCILER_SANDBOX_STEP_SECONDS, RECONCILER_SANDBOX_JOB_SECONDS and
  RECONCILER_SANDBOX_RUN_COMMANDS are read (through `SandboxConfig`) when a job is submitted,
  and so is the endpoint the job's process is given (the server's, else the Host the SubmitJob
  came in on).
- A job's ID is derived from its SubmitJob request (`job_id_for`), not drawn at random: a
  restarted sandbox replays the request and gets the job back under the same ID, which is how
  `job_restore` finds what it did (and how a follower's output named after its job ID keeps
  its name).
Each place that departs from plain moto says so in a comment starting "AWS:".
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from moto.batch import models as batch_models
from moto.batch import responses as batch_responses
from moto.batch.exceptions import ClientException
from moto.batch_simple import models as simple_models
from moto.moto_api._internal import mock_random

from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.job_run import STATES, JobRun, ms, run_of
from reconciler.sandbox.job_scheduler import JobScheduler
from reconciler.sandbox.patching import Patcher

SUBMISSIONS_ATTR = "_sandbox_submissions"  # on moto's BatchBackend: job IDs given, by request
OUTCOME_TAG = "reconciler.io/sandbox-outcome"
EXIT_CODE_TAG = "reconciler.io/sandbox-exit-code"
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_ATTEMPTS = 10

BatchBackend = batch_models.BatchBackend
Job = batch_models.Job


def find_job(backend: Any, ident: str | None) -> Any:
    """The moto Job with this ID or ARN, or None."""
    if not ident:
        return None
    jobs = backend._jobs
    return jobs.get(ident) or jobs.get(ident.rsplit(":job/", 1)[-1])


def resolve(backend: Any, depends_on: list[dict[str, Any]], size: int) -> list[tuple[Any, str]]:
    """dependsOn -> (dependency Job, or None for SEQUENTIAL, type) pairs."""
    resolved: list[tuple[Any, str]] = []
    for dep in depends_on:
        kind = str(dep.get("type") or "").upper()
        ident = dep.get("jobId")
        if kind == "SEQUENTIAL" and size:
            resolved.append((None, kind))
        if not ident:
            continue
        target = find_job(backend, ident)
        if target is None:  # AWS: an unknown dependency is refused (moto accepts it)
            raise ClientException(f"dependsOn: job {ident} does not exist")
        target_size = len(target._child_jobs or [])
        if kind == "N_TO_N" and size and target_size and target_size != size:
            raise ClientException(
                f"dependsOn: an N_TO_N dependency needs array jobs of one size; "
                f"{ident} has {target_size} children, this job {size}"
            )
        resolved.append((target, kind))
    return resolved


def waits_on(deps: list[tuple[Any, str]], index: int | None, siblings: list[JobRun]) -> list[Any]:
    """The Jobs that job (or array child `index`) waits for."""
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


def job_id_for(backend: Any, fingerprint: str) -> str:
    """A UUID from the request (and how many identical ones came before): the same job gets
    the same ID when the recording is replayed, in whatever order concurrent submissions
    were recorded (identical requests are interchangeable)."""
    counts = backend.__dict__.setdefault(SUBMISSIONS_ATTR, {})
    ordinal = counts.get(fingerprint, 0)
    counts[fingerprint] = ordinal + 1
    digest = hashlib.sha256(f"{fingerprint}\0{ordinal}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def fail_code(tags: dict[str, str]) -> int | None:
    """The exit code every attempt ends with when the tags tell the job to fail."""
    if str(tags.get(OUTCOME_TAG, "")).lower() != "fail":
        return None
    try:
        return int(tags.get(EXIT_CODE_TAG, 1))
    except ValueError:
        return 1


def decorate(run: JobRun, result: dict[str, Any], full: bool) -> None:
    """AWS: what DescribeJobs (full) and ListJobs show of a job the scheduler runs."""
    job = run.job
    result["status"] = job._status
    if run.started:
        result["startedAt"] = ms(job.job_started_at)
    else:
        result.pop("startedAt", None)
    if job.job_stopped and job.exit_code is not None:
        result.setdefault("container", {})["exitCode"] = job.exit_code
    if run.children:
        size = len(run.children)
        if full:
            summary = dict.fromkeys(STATES, 0)
            for child in run.children:
                summary[child.job._status] += 1
            result["arrayProperties"] = {"statusSummary": summary, "size": size}
        else:
            result["arrayProperties"] = {"size": size}
    elif run.index is not None:
        result["arrayProperties"] = {"index": run.index}
    if full:
        result["attempts"] = copy.deepcopy(job.attempts)


class JobPatches:
    """moto's job calls for one server, with the scheduler and settings they use."""

    _submitjob: Callable[..., Any]  # moto's originals, set by install()
    _cancel_job: Callable[..., Any]
    _terminate_job: Callable[..., Any]
    _describe_jobs: Callable[..., Any]
    _list_jobs: Callable[..., Any]
    _describe: Callable[..., Any]
    _describe_short: Callable[..., Any]

    def __init__(self, config: SandboxConfig, scheduler: JobScheduler) -> None:
        self.config = config
        self.scheduler = scheduler
        self._request = threading.local()  # what SubmitJob said that moto's submit_job drops

    def install(self, patcher: Patcher) -> None:
        """Patches moto so that jobs on the no-Docker backend run as described above."""
        simple = simple_models.BatchSimpleBackend
        patcher.replace(simple, "submit_job", self.submit_job)
        patcher.replace(simple, "_mark_job_as_finished", self.hand_over)
        response = batch_responses.BatchResponse
        self._submitjob = patcher.replace(response, "submitjob", self.submitjob)
        # BatchSimpleBackend hands every other call to the BatchBackend it wraps: these patches
        # go there, and leave jobs the scheduler does not run (moto's Docker backend) to moto.
        self._cancel_job = patcher.replace(BatchBackend, "cancel_job", self.cancel_job)
        self._terminate_job = patcher.replace(BatchBackend, "terminate_job", self.terminate_job)
        self._describe_jobs = patcher.replace(BatchBackend, "describe_jobs", self.describe_jobs)
        self._list_jobs = patcher.replace(BatchBackend, "list_jobs", self.list_jobs)
        self._describe = patcher.replace(Job, "describe", self.describe)
        self._describe_short = patcher.replace(Job, "describe_short", self.describe_short)

    # --- submission -------------------------------------------------------------------------

    def submitjob(self, response: Any) -> str:
        """BatchResponse.submitjob, also passing on retryStrategy, what identifies the request
        and where it came in."""
        # AWS: SubmitJob's retryStrategy applies (moto drops it).
        self._request.retry_strategy = response._get_param("retryStrategy")
        try:
            body = json.dumps(json.loads(response.body or "{}"), sort_keys=True)
        except ValueError:
            body = str(response.body)
        self._request.fingerprint = f"{response.current_account}\0{response.region}\0{body}"
        host = response.headers.get("Host")
        self._request.endpoint = self.config.endpoint or (f"http://{host}" if host else None)
        try:
            return str(self._submitjob(response))
        finally:
            self._request.retry_strategy = None
            self._request.fingerprint = self._request.endpoint = None

    def submit_job(
        self,
        simple: Any,
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
        # AWS: a name of one character is valid (moto's pattern wants two).
        if JOB_NAME.match(job_name or "") is None:
            raise ClientException("Job name should match valid pattern")
        job_def = simple.get_job_definition(job_def_id)
        if job_def is None:
            raise ClientException(f"Job definition {job_def_id} does not exist")
        queue = simple.get_job_queue(job_queue)
        if queue is None:
            raise ClientException(f"Job queue {job_queue} does not exist")
        array_properties = array_properties or {}
        size = int(array_properties.get("size") or 0)
        # AWS: retries and timeouts come from the request, else from the job definition.
        retry = getattr(self._request, "retry_strategy", None) or job_def.retry_strategy or {}
        limit = (timeout or {}).get("attemptDurationSeconds") or (job_def.timeout or {}).get(
            "attemptDurationSeconds"
        )
        tags = tags or {}
        settings: dict[str, Any] = {
            "backend": simple.backend,
            "step": self.config.step_seconds,
            "run_seconds": self.config.job_seconds,
            "attempts": max(1, min(MAX_ATTEMPTS, int(retry.get("attempts") or 1))),
            "retry_rules": list(retry.get("evaluateOnExit") or []),
            "timeout": float(limit) if limit else None,
            "fail_code": fail_code(tags),
            "run_commands": self.config.run_commands,
            "endpoint": getattr(self._request, "endpoint", None) or self.config.endpoint,
        }
        fingerprint = getattr(self._request, "fingerprint", None)

        def make(index: int | None = None, parent_id: str | None = None) -> Any:
            # AWS: an array's children are jobs of their own, `<parentId>:<index>`.
            return batch_models.Job(
                job_name,
                job_def,
                queue,
                simple,
                log_backend=simple.logs_backend,
                container_overrides=container_overrides,
                eks_properties_override=eks_properties_override,
                depends_on=depends_on,
                all_jobs=simple._jobs,
                timeout=timeout,
                array_properties=(
                    array_properties if index is None else {"statusSummary": {}, "index": index}
                ),
                parameters=parameters,
                tags=tags if index is None else None,
                provided_job_id=parent_id if index is None else f"{parent_id}:{index}",
            )

        with self.scheduler.lock:
            deps = resolve(simple.backend, depends_on or [], size)
            own_id = None
            if fingerprint:
                # The draw moto would have made: what is drawn after it keeps its ID (in a
                # recording made before job IDs were derived, too).
                mock_random.uuid4()
                own_id = job_id_for(simple.backend, fingerprint)
            run = JobRun(make(None, own_id), **settings)
            job = run.job
            if size:
                for index in range(size):
                    child = JobRun(make(index, job.job_id), **settings, parent=run, index=index)
                    child.waits_on = waits_on(deps, index, run.children)
                    run.children.append(child)
                job._child_jobs = [child.job for child in run.children]
                # The parent's own: whole jobs (its children wait for those too, and the rest).
                run.waits_on = [
                    t
                    for t, kind in deps
                    if t is not None and not (kind == "N_TO_N" and t._child_jobs)
                ]
            else:
                run.waits_on = waits_on(deps, None, [])
            # AWS: the jobs are not finished at once; they go through Batch's states.
            for child in run.children:
                self.scheduler.add(child)
            self.scheduler.add(run)
        return job_name, job.job_id, job.arn

    def hand_over(self, simple: Any, include_start_attempt: bool, job: Any) -> None:
        """BatchSimpleBackend._mark_job_as_finished: the job is SUBMITTED; the scheduler runs it.

        submit_job above hands its jobs to the scheduler itself; this catches any other caller.
        """
        # AWS: the job is not finished at once; it goes through Batch's states.
        with self.scheduler.lock:
            run = run_of(job)
            if run is None:  # not from submit_job: plain defaults
                run = JobRun(job, simple.backend, self.config.step_seconds, self.config.job_seconds)
            self.scheduler.add(run)

    # --- cancel and terminate ---------------------------------------------------------------

    def _stop(self, backend: Any, job_id: str, reason: str, running: bool) -> bool:
        """Cancels or terminates a job the scheduler runs; False for any other job."""
        with self.scheduler.lock:
            run = run_of(find_job(backend, job_id))
            if run is None or run.stale:
                return False
            if not reason:  # as in moto's cancel_job and terminate_job
                raise ClientException("'reason' is a required field (cannot be an empty string)")
            self.scheduler.stop(run, reason, running)
            return True

    def cancel_job(self, backend: Any, job_id: str, reason: str) -> None:
        # AWS: cancelling fails a job that has not started (moto's no-Docker jobs have all
        # finished by then).
        if not self._stop(backend, job_id, reason, running=False):
            self._cancel_job(backend, job_id, reason)

    def terminate_job(self, backend: Any, job_id: str, reason: str) -> None:
        # AWS: terminating also kills a started job; its attempt exits 137.
        if not self._stop(backend, job_id, reason, running=True):
            self._terminate_job(backend, job_id, reason)

    # --- what the API shows -----------------------------------------------------------------

    def describe(self, job: Any) -> dict[str, Any]:
        run = run_of(job)
        if run is None:
            return dict(self._describe(job))
        with self.scheduler.lock:
            # AWS: describing changes nothing. moto's describe appends to
            # containerOverrides.environment on every call, and marks an array parent SUCCEEDED
            # by itself: it gets a copy and no children to look at.
            overrides, children = job.container_overrides, job._child_jobs
            job.container_overrides, job._child_jobs = copy.deepcopy(overrides), None
            try:
                result = dict(self._describe(job))
            finally:
                job.container_overrides, job._child_jobs = overrides, children
            decorate(run, result, full=True)
            return result

    def describe_short(self, job: Any) -> dict[str, Any]:
        run = run_of(job)
        if run is None:
            return dict(self._describe_short(job))
        with self.scheduler.lock:
            result = dict(self._describe_short(job))
            decorate(run, result, full=False)
            return result

    def describe_jobs(self, backend: Any, jobs: list[str] | None) -> list[dict[str, Any]]:
        with self.scheduler.lock:  # _jobs only grows under the lock
            return list(self._describe_jobs(backend, jobs))

    def list_jobs(
        self,
        backend: Any,
        job_queue_name: str | None,
        array_job_id: str | None,
        job_status: str | None = None,
        filters: list[dict[str, Any]] | None = None,
    ) -> list[Any]:
        if job_status is None and filters is None:
            # AWS: without a status (and without filters, which list every status), only RUNNING
            # jobs are listed (moto lists every status).
            job_status = "RUNNING"
        with self.scheduler.lock:
            jobs = list(self._list_jobs(backend, job_queue_name, array_job_id, job_status, filters))
        if array_job_id:
            return jobs
        # AWS: a queue's listing shows array parents, not their children.
        return [job for job in jobs if getattr(run_of(job), "parent", None) is None]
