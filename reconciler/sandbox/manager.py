"""Starting, finding, restoring and stopping the sandbox server.

The server runs detached, so `apply`, `get`, `diff` and `delete` in separate invocations see
one account, as they would against AWS. Its address lives in `server.json` in the state
directory (`RECONCILER_SANDBOX_DIR`, default `~/.reconciler/sandbox`). Every request is
recorded; when the server is gone (a reboot, `sandbox stop`), the next command starts a new
one and replays the recording, whose first request fixes moto's random seed, so IDs match.
A file lock keeps two first invocations from starting two servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import boto3

from reconciler.backoff import Backoff, poll
from reconciler.errors import RetryableError, TerminalError
from reconciler.sandbox.seed import SEED, seed_account

REGION = "us-east-1"
CREDENTIALS: Mapping[str, str] = MappingProxyType(
    {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
)
# In the state directory:
SERVER_INFO = "server.json"  # the running server's endpoint and pid
RECORDING = "recording.jsonl"  # every request, replayed by a new server
SERVER_LOG = "server.log"
LOCK = "lock"


def state_dir() -> Path:
    return Path(os.environ.get("RECONCILER_SANDBOX_DIR", "~/.reconciler/sandbox")).expanduser()


@dataclass
class Sandbox:
    endpoint: str
    pid: int | None
    started: str  # "running" (reused), "new" (seeded), "restored" (recording replayed)


def _post(url: str, body: bytes = b"", timeout: float = 2.0) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)


def alive(endpoint: str) -> bool:
    try:
        # Idempotent, and never recorded: a probe that changes nothing.
        return _post(f"{endpoint}/moto-api/recorder/start-recording") == 200
    except (urllib.error.URLError, OSError, ValueError):  # ValueError: not a URL at all
        return False


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_info(directory: Path) -> dict[str, object] | None:
    try:
        info = json.loads((directory / SERVER_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None  # a file edited or cut short: no server


def _spawn(directory: Path) -> tuple[str, int]:
    port = _free_port()
    env = {
        **os.environ,
        "MOTO_ENABLE_RECORDING": "true",
        "MOTO_RECORDER_FILEPATH": str(directory / RECORDING),
    }
    with open(directory / SERVER_LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.sandbox.server", "--port", str(port)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    failed = TerminalError(f"the sandbox server did not start; see {directory / SERVER_LOG}")
    try:
        up = poll(
            lambda: alive(endpoint) or (False if proc.poll() is None else None),
            lambda state: state is not False,  # up, or the process has exited
            60.0,
            "the sandbox server to start",
            Backoff(first=0.05, ceiling=0.5),
        )
    except RetryableError:
        raise failed from None
    if not up:
        raise failed
    return endpoint, proc.pid


def prepare_new(endpoint: str) -> None:
    """Seeds a just-started, empty server; every request here is recorded for replays."""
    _post(f"{endpoint}/moto-api/seed?a={SEED}")
    _post(f"{endpoint}/moto-api/config", json.dumps({"batch": {"use_docker": False}}).encode())
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    seed_account(
        session.client("iam", endpoint_url=endpoint), session.client("ec2", endpoint_url=endpoint)
    )


def ensure() -> Sandbox:
    directory = state_dir()
    with _locked(directory):
        info = _read_info(directory)
        if info and alive(str(info.get("endpoint"))):
            pid = info.get("pid")
            return Sandbox(
                str(info["endpoint"]), int(pid) if isinstance(pid, int) else None, "running"
            )
        recording = directory / RECORDING
        endpoint, pid = _spawn(directory)
        if recording.exists() and recording.stat().st_size > 0:
            _post(f"{endpoint}/moto-api/recorder/replay-recording", timeout=600)
            started = "restored"
        else:
            prepare_new(endpoint)
            started = "new"
        (directory / SERVER_INFO).write_text(json.dumps({"endpoint": endpoint, "pid": pid}))
        return Sandbox(endpoint, pid, started)


def stop() -> bool:
    directory = state_dir()
    with _locked(directory):
        info = _read_info(directory)
        (directory / SERVER_INFO).unlink(missing_ok=True)
        pid = info.get("pid") if info else None
        if not isinstance(pid, int) or not _is_server(pid, str((info or {}).get("endpoint"))):
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True


def _is_server(pid: int, endpoint: str) -> bool:
    """Whether `pid` is still the server this directory started. After a reboot, or with a
    server.json edited by hand, the pid may belong to anything (pid 1 is init): stop signals
    only a live sandbox endpoint's own process, never a process group it cannot vouch for."""
    if pid <= 1 or pid == os.getpgrp() or not alive(endpoint):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): the live endpoint recorded with the pid vouches for it
    return b"reconciler.sandbox.server" in command


def reset() -> None:
    stop()
    (state_dir() / RECORDING).unlink(missing_ok=True)


def status() -> dict[str, object]:
    directory = state_dir()
    info = _read_info(directory) or {}
    recording = directory / RECORDING
    requests = sum(1 for _ in recording.open()) if recording.exists() else 0
    endpoint = info.get("endpoint")
    return {
        "stateDir": str(directory),
        "endpoint": endpoint,
        "pid": info.get("pid"),
        "running": bool(endpoint) and alive(str(endpoint)),
        "recordedRequests": requests,
    }
