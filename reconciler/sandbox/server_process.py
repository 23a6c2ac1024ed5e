"""A sandbox server process: started, probed, told to stop, waited for.

`manager` decides when (under its lock); this module only does it, for one process at a time.
A server runs in a process group of its own (its jobs' and instances' processes are in it too
until they make their own), so a signal reaches all of it; a pid is trusted only while its
command line still names the server module (after a reboot server.json may name anything).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from reconciler.backoff import Backoff, poll
from reconciler.errors import RetryableError, TerminalError
from reconciler.sandbox import procs
from reconciler.sandbox.config import ENDPOINT_ENV, SERVER_DIR_ENV

# In the state directory:
RECORDING = "recording.jsonl"  # every request, replayed by a new server
SERVER_LOG = "server.log"
SERVER_MODULE = "reconciler.sandbox.server"


def post(url: str, body: bytes = b"", timeout: float = 2.0) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)


def alive(endpoint: str) -> bool:
    try:
        # Idempotent, and never recorded: a probe that changes nothing.
        return post(f"{endpoint}/moto-api/recorder/start-recording") == 200
    except (urllib.error.URLError, OSError, ValueError):  # ValueError: not a URL at all
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_server(pid: int) -> bool:
    """The process is a sandbox server (a stale pid may belong to anything else by now)."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs to ask: trust server.json, as before
        return True
    try:
        return SERVER_MODULE.encode() in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)  # the server and any job processes it started
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_server(pid: int) -> bool:
    """Stops a server (SIGTERM: it kills its jobs' processes) and waits until it is gone, so
    that nothing of it is still running when a new server replays the recording."""
    if not signal_group(pid, signal.SIGTERM):
        return False
    await_exit(pid)
    return True


def await_exit(pid: int) -> None:
    """Waits for a server told to stop (it writes its snapshot first); kills it after
    procs.STOP_WAIT."""
    deadline = time.monotonic() + procs.STOP_WAIT
    while is_server(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if is_server(pid):
        signal_group(pid, signal.SIGKILL)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stops a server this process started, and waits for it: it must not outlive a failure."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(procs.STOP_WAIT)
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait(procs.STOP_WAIT)


def launch(
    directory: Path, values: Mapping[str, str], after: int | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """Starts a server process. `after`: a server told to stop, whose snapshot the new one
    waits for (it imports moto meanwhile: most of a restart's time, now beside the write)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **values,  # the settings it runs with, kept or asked for
        "MOTO_ENABLE_RECORDING": "true",
        "MOTO_RECORDER_FILEPATH": str(directory / RECORDING),
        SERVER_DIR_ENV: str(directory),  # its job journal
        ENDPOINT_ENV: endpoint,  # what its jobs' processes are given
    }
    command = [sys.executable, "-m", SERVER_MODULE, "--port", str(port)]
    if after is not None:
        command += ["--after", str(after)]
    with open(directory / SERVER_LOG, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return endpoint, proc


def await_up(directory: Path, endpoint: str, proc: subprocess.Popen[bytes]) -> None:
    """Returns once the server answers; stops it and raises if it exited or never answered."""
    failed = TerminalError(f"the sandbox server did not start; see {directory / SERVER_LOG}")
    try:
        up = poll(
            lambda: alive(endpoint) or (False if proc.poll() is None else None),
            lambda state: state is not False,  # up, or the process has exited
            60.0,
            "the sandbox server to start",
            Backoff(first=0.05, ceiling=0.1),  # a probe costs little; a late one adds to a restart
        )
    except BaseException as exc:
        terminate(proc)
        if isinstance(exc, RetryableError):
            raise failed from None
        raise
    if not up:
        terminate(proc)
        raise failed
