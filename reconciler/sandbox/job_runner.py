"""A job's command run as a local process, standing in for the container Batch would start.

With RECONCILER_SANDBOX_RUN_COMMANDS=1 the job scheduler (`reconciler.sandbox.job_scheduler`)
asks its `LocalRunner` to start a job's command when an attempt reaches RUNNING. The process
runs in a fresh scratch directory, with the job's environment and the AWS_BATCH_* variables;
its exit code decides the attempt and its output goes, line by line, to CloudWatch Logs
(/aws/batch/job, the attempt's logStreamName). Only what the job definition and the overrides
say reaches the process: the server's own environment (credentials included) does not, except
PATH. A replayed recording (sandbox restart) submits, and so runs, its jobs again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

LOG_GROUP = "/aws/batch/job"
SCRATCH_PREFIX = "reconciler-sandbox-job-"

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


def environment_of(job: Any, attempt: int, index: int | None, home: str) -> dict[str, str]:
    """What the container would see: its definition's and overrides' variables, AWS_BATCH_*."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home}
    for source in (
        (job.job_definition.container_properties or {}).get("environment") or [],
        job.container_overrides.get("environment") or [],
    ):
        for item in source:
            env[str(item["name"])] = str(item.get("value", ""))
    queue = job.job_queue
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt)
    env["AWS_BATCH_JQ_NAME"] = queue.name
    if queue.environments:
        env["AWS_BATCH_CE_NAME"] = queue.environments[0].name
    if index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    return env


class LocalRunner:
    """Starts job commands; owned by the server's `JobScheduler`."""

    def __init__(self) -> None:
        self._log_lock = threading.Lock()  # pumps create the log group and streams one at a time

    def start(self, job: Any, attempt: int, index: int | None, stream: str) -> LocalProcess | None:
        """Starts the moto Job's command; None if it has none. Raises CannotStart."""
        command = command_of(job)
        if not command:
            return None
        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        try:
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=environment_of(job, attempt, index, scratch),
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
