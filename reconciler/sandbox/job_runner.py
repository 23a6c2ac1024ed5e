"""A job's command run as a local process, standing in for the container Batch would start.

With RECONCILER_SANDBOX_RUN_COMMANDS=1 the job scheduler (`reconciler.sandbox.job_scheduler`)
asks its `LocalRunner` to start a job's command when an attempt reaches RUNNING. There are no
containers: the `image` is not pulled, and the command runs on the host, in a fresh scratch
directory (its HOME too, removed when the process exits), with a POSIX shell and the project's
Python first on its PATH. Its exit code decides the attempt and its output goes, line by line,
to CloudWatch Logs (/aws/batch/job, the attempt's logStreamName).

The process sees what a Batch container sees, pointed at the sandbox (`environment_of`): the
job definition's and the overrides' variables, AWS_BATCH_*, the region, and the sandbox's
endpoint with dummy credentials, so that a script written for AWS (`aws s3 cp`, boto3) reaches
the sandbox's S3 unchanged. Nothing of the server's environment reaches it but PATH and the
locale: no host credentials, profile or ~/.aws (AWS_CONFIG_FILE and
AWS_SHARED_CREDENTIALS_FILE point at the null device, and the instance metadata service is
off). Where `aws` is not on the PATH (or RECONCILER_SANDBOX_AWS_CLI=shim) the sandbox's
stand-in (`aws_shim`) is put first on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.sandbox import aws_shim
from reconciler.sandbox.config import CREDENTIALS, SandboxConfig

LOG_GROUP = "/aws/batch/job"
SCRATCH_PREFIX = "reconciler-sandbox-job-"
SHIM_DIR = "bin"  # under the server's directory: the `aws` stand-in
PASSED_ON = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")  # of the server's environment, besides PATH
# What a job must not keep, whatever its definition says: a way to other credentials or to
# another endpoint than the sandbox.
WITHHELD = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)

log = logging.getLogger(__name__)


class CannotStart(Exception):
    """The command could not be started: Batch's CannotStartContainerError, with its exit code."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


@dataclass(eq=False)
class LocalProcess:
    """One attempt's process and the thread copying its output to CloudWatch Logs."""

    proc: subprocess.Popen[bytes]
    pump: threading.Thread
    swept: bool = False  # the process exited and its leftover process group was killed

    def exit_code(self) -> int | None:
        """The attempt's exit code once the process exited and its output was copied."""
        if self.proc.poll() is None:
            return None
        if self.pump.is_alive():
            # The process exited; whatever it left behind holds its output open. A container
            # ends with its main process, so that goes too.
            if not self.swept:
                self.swept = True
                self.kill()
            return None
        code = self.proc.returncode
        return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as in a container

    def kill(self) -> None:
        """Kills the process and everything it started (its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def command_of(job: Any) -> list[str]:
    """The moto Job's command (overrides first), with Ref::name replaced by its parameters."""
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


def sandbox_aws(endpoint: str | None) -> dict[str, str]:
    """The variables that point a job's AWS clients at the sandbox, and only at it."""
    env = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_CONFIG_FILE": os.devnull,  # never ~/.aws
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",  # never a host's instance role
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def environment_of(
    job: Any, attempt: int, index: int | None, home: str, endpoint: str | None, path: str
) -> dict[str, str]:
    """What the container would see on AWS, pointed at the sandbox.

    The definition's variables, then the overrides' (they win, as in Batch); the region as ECS
    sets it (a definition may choose another); then the sandbox's endpoint and credentials and
    the AWS_BATCH_* variables, which nothing a job declares replaces.
    """
    env = {"PATH": path, "HOME": home, "SHELL": "/bin/sh"}
    env.update({name: os.environ[name] for name in PASSED_ON if name in os.environ})
    queue = job.job_queue
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = queue.backend.region_name
    for source in (
        (job.job_definition.container_properties or {}).get("environment") or [],
        job.container_overrides.get("environment") or [],
    ):
        for item in source:
            env[str(item["name"])] = str(item.get("value", ""))
    for name in [*WITHHELD, *(n for n in env if n.startswith("AWS_ENDPOINT_URL_"))]:
        env.pop(name, None)  # a service's own endpoint (AWS_ENDPOINT_URL_S3) too
    env.update(sandbox_aws(endpoint))
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt)
    env["AWS_BATCH_JQ_NAME"] = queue.name
    if queue.environments:
        env["AWS_BATCH_CE_NAME"] = queue.environments[0].name
    if index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        parent = job.all_jobs.get(job.job_id.rsplit(":", 1)[0])
        if parent is not None and parent._child_jobs:
            env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(len(parent._child_jobs))
    return env


class LocalRunner:
    """Starts job commands; owned by the server's `JobScheduler`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._log_lock = threading.Lock()  # pumps create the log group and streams one at a time
        self._shim: str | None = None  # the directory of the `aws` stand-in, once written

    def path(self) -> str:
        """A job's PATH: the project's Python (and its scripts) first, then the server's PATH;
        the `aws` stand-in before both where `aws` is not found (or it is asked for)."""
        parts = [os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)]
        path = os.pathsep.join(parts)
        if self.config.aws_cli == "shim" or shutil.which("aws", path=path) is None:
            if self._shim is None:
                server_dir = self.config.server_dir
                where = Path(server_dir, SHIM_DIR) if server_dir else Path(tempfile.mkdtemp())
                self._shim = str(aws_shim.write_wrapper(where))
            path = os.pathsep.join([self._shim, path])
        return path

    def start(
        self, job: Any, attempt: int, index: int | None, stream: str, endpoint: str | None = None
    ) -> LocalProcess | None:
        """Starts the moto Job's command; None if it has none. Raises CannotStart."""
        command = command_of(job)
        if not command:
            return None
        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        try:
            env = environment_of(job, attempt, index, scratch, endpoint, self.path())
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as err:
            shutil.rmtree(scratch, ignore_errors=True)
            missing = isinstance(err, FileNotFoundError)
            why = "executable file not found in $PATH" if missing else (err.strerror or str(err))
            raise CannotStart(
                127 if missing else 126, f'CannotStartContainerError: exec: "{command[0]}": {why}'
            ) from err
        pump = threading.Thread(
            target=self._pump,
            args=(proc, scratch, job._log_backend, stream),
            name=f"sandbox-job-{job.job_id}",
            daemon=True,
        )
        pump.start()
        return LocalProcess(proc, pump)

    def _pump(self, proc: subprocess.Popen[bytes], scratch: str, logs: Any, stream: str) -> None:
        """Copies the process's output, line by line, to its CloudWatch Logs stream."""
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:  # CloudWatch Logs takes no empty messages
                    self._put_log(logs, stream, line)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            proc.wait()
            shutil.rmtree(scratch, ignore_errors=True)

    def log_events(self, logs: Any, stream: str) -> list[dict[str, Any]]:
        """The events of a job's log stream (what GetLogEvents returns), to journal them."""
        with self._log_lock:
            group = logs.groups.get(LOG_GROUP)
            found = group.streams.get(stream) if group is not None else None
            return [event.to_response_dict() for event in found.events] if found else []

    def forget_logs(self, logs: Any, streams: list[str]) -> None:
        """Deletes a job's log streams (`job_restore.rewind`: the journal puts back what stays)."""
        with self._log_lock:
            group = logs.groups.get(LOG_GROUP)
            for stream in streams if group is not None else []:
                group.streams.pop(stream, None)

    def restore_log(self, logs: Any, stream: str, events: list[dict[str, Any]]) -> None:
        """Puts journalled events back into a restarted server's CloudWatch Logs, as they were
        (straight into the stream: PutLogEvents would refuse events older than 14 days)."""
        if not events:
            return
        with self._log_lock:
            if LOG_GROUP not in logs.groups:
                logs.create_log_group(LOG_GROUP, {})
            group = logs.groups[LOG_GROUP]
            if stream not in group.streams:
                logs.create_log_stream(LOG_GROUP, stream)
            target = group.streams[stream]
            target.put_log_events(
                [{"timestamp": e["timestamp"], "message": e["message"]} for e in events]
            )
            for event, kept in zip(target.events[-len(events) :], events, strict=True):
                event.ingestion_time = kept.get("ingestionTime", event.ingestion_time)

    def _put_log(self, logs: Any, stream: str, message: str) -> None:
        with self._log_lock:
            try:
                if LOG_GROUP not in logs.groups:
                    logs.create_log_group(LOG_GROUP, {})
                if stream not in logs.groups[LOG_GROUP].streams:
                    logs.create_log_stream(LOG_GROUP, stream)
                event = {"timestamp": int(time.time() * 1000), "message": message}
                logs.put_log_events(LOG_GROUP, stream, [event])
            except Exception:  # a log line must never take the job down
                log.debug("sandbox: dropped a log line for %s", stream, exc_info=True)
