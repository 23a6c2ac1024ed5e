"""Starting, finding, restoring and stopping the sandbox server.

The server runs detached, so separate invocations see one account, as against AWS. Its address
lives in `server.json` in the state directory (`RECONCILER_SANDBOX_DIR`, default
`~/.reconciler/sandbox`); a file lock keeps two first invocations from starting two servers.
Every request is recorded: when the server is gone (a reboot, `sandbox stop`), the next command
starts one and replays the recording (its first request fixes moto's seed, so IDs match). Its
settings are kept, and a command that sets others restarts it or says why not (`settings`);
its jobs' journal (`jobs.jsonl`) puts finished jobs back as they were, never run again.
A server is in `server.json` from its start, ready once seeded or restored (`stop`/`reset`
always find it); a recording moto cannot replay says how to recover (`sandbox reset`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.errors import TerminalError
from reconciler.sandbox import ec2_machine, server_process, settings, snapshot
from reconciler.sandbox.batch_events import SLACK_FILE
from reconciler.sandbox.clock_api import CLOCK_FILE
from reconciler.sandbox.clock_api import PATH as CLOCK_PATH
from reconciler.sandbox.config import (
    CREDENTIALS,
    REGION,
    SandboxConfig,
)
from reconciler.sandbox.ec2_machine import INSTANCES_DIR
from reconciler.sandbox.job_journal import JOURNAL
from reconciler.sandbox.seed import SEED_PATH, SEED_QUERY, seed_account
from reconciler.sandbox.server_process import RECORDING, SERVER_LOG, alive

__all__ = ("CREDENTIALS", "REGION", "Sandbox", "ensure", "reset", "state_dir", "status", "stop")
# In the state directory:
SERVER_INFO = "server.json"  # the running server's endpoint and pid
LOCK = "lock"


def state_dir() -> Path:
    return Path(os.environ.get("RECONCILER_SANDBOX_DIR", "~/.reconciler/sandbox")).expanduser()


@dataclass
class Sandbox:
    endpoint: str
    pid: int | None
    # "running" (reused), "new" (seeded), "restored" (recording replayed), "restarted" (a
    # running server replaced to apply other settings; restored too)
    started: str
    notice: str | None = None  # for the user (stderr): a restart, or why there was none


SETUP_TIMEOUT = 60.0  # seconds for the requests that prepare a new server


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_info(directory: Path) -> dict[str, object] | None:
    try:
        info = json.loads((directory / SERVER_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None  # a file edited or cut short: no server


def _write_info(
    directory: Path, endpoint: str, pid: int, ready: bool, values: Mapping[str, str]
) -> None:
    info = {"endpoint": endpoint, "pid": pid, "ready": ready, "settings": dict(values)}
    (directory / SERVER_INFO).write_text(json.dumps(info))


def _settings_of(info: Mapping[str, object]) -> dict[str, str]:
    found = info.get("settings")
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _damaged(recording: Path, detail: str) -> TerminalError:
    return TerminalError(
        f"the sandbox cannot be restored: its recording {recording} is damaged ({detail}). "
        "`reconciler sandbox reset` discards it, and the next command starts an empty sandbox "
        "(what was created in the sandbox is lost); or repair the file and run the command again"
    )


def _line_problem(raw: bytes) -> str | None:
    """What would make moto's replay fail on this recorded request, or None."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return f"not a JSON request ({exc})"
    if not isinstance(entry, dict):
        return "not a JSON object"
    url, body = entry.get("url"), entry.get("body")
    if not isinstance(entry.get("method"), str) or not isinstance(entry.get("headers"), dict):
        return "no method or headers"
    if not isinstance(url, str) or not urlsplit(url).path.startswith("/"):
        return f"no usable url ({url!r})"
    if entry.get("body_encoded"):
        try:
            base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            return "its body is not base64"
    elif body is not None and not isinstance(body, str):
        return "its body is not text"
    return None


def check_recording(recording: Path) -> None:
    """Raises a TerminalError naming the first request of the recording moto cannot replay."""
    try:
        with recording.open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                problem = _line_problem(raw)
                if problem is not None:
                    raise _damaged(recording, f"line {number}: {problem}")
    except OSError as exc:
        raise _damaged(recording, str(exc)) from None


def _replay(endpoint: str, directory: Path) -> None:
    recording = directory / RECORDING
    try:
        server_process.post(f"{endpoint}/moto-api/recorder/replay-recording", timeout=600)
    except OSError as exc:  # HTTP 500 and the like: the traceback is in the server's log
        raise _damaged(recording, f"{exc}; see {directory / SERVER_LOG}") from None


def prepare_new(endpoint: str) -> None:
    """Seeds a just-started, empty server; every request here is recorded for replays."""
    # Not the 2 s of a liveness probe: on a loaded machine (tests on every core) the first
    # requests to a just-reset server take longer, and a timeout here fails the command.
    server_process.post(f"{endpoint}{SEED_PATH}?{SEED_QUERY}", timeout=SETUP_TIMEOUT)
    # Step Functions: moto runs state machines (a scheduled Pipeline's), instead of storing them.
    config = {"batch": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    server_process.post(
        f"{endpoint}/moto-api/config", json.dumps(config).encode(), timeout=SETUP_TIMEOUT
    )
    import boto3  # here: a restart or a stop need not import it

    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    seed_account(
        session.client("iam", endpoint_url=endpoint),
        session.client("ec2", endpoint_url=endpoint),
        session.client("secretsmanager", endpoint_url=endpoint),
    )


def ensure(restart: bool = False) -> Sandbox:
    """The running sandbox, else a new server, restored from the recording or seeded.

    A running server whose settings differ from those the caller's environment sets is
    restarted with them, unless job attempts or EC2 instances' user data run on it
    (`settings`); `restart` restarts it whatever runs. Under the lock, so that two first
    commands start one server. A server that fails to start or to restore is stopped before
    the error is raised: one left running would be found by no later `stop` or `reset`, and
    each command would leave another.
    """
    directory = state_dir()
    with _locked(directory):
        info = _read_info(directory)
        pid = info.get("pid") if info else None
        pid = pid if isinstance(pid, int) else None
        values = settings.wanted(directory)
        notice, replaced, stopping = None, False, None
        if info and info.get("ready", True) and alive(str(info["endpoint"])):
            changed = settings.differences(_settings_of(info), values)
            if not changed and not restart:
                return Sandbox(str(info["endpoint"]), pid, "running")
            attempts = settings.running_attempts(directory)
            instances = ec2_machine.running(directory)
            if (attempts or instances) and not restart:
                notice = settings.kept_running_notice(changed, attempts, instances)
                return Sandbox(str(info["endpoint"]), pid, "running", notice)
            if (
                pid is not None
                and pid > 1
                and pid != os.getpgrp()
                and server_process.is_server(pid)
            ):
                stopping = pid if server_process.signal_group(pid, signal.SIGTERM) else None
            notice, replaced = settings.restarted_notice(changed) if changed else None, True
        elif (
            info
            and not info.get("ready", True)
            and pid is not None
            and server_process.is_server(pid)
        ):
            # Its start was interrupted: it is in no known state.
            stopping = pid if server_process.signal_group(pid, signal.SIGTERM) else None
        # The new server imports moto while the old one, told to stop, writes its snapshot.
        endpoint, proc = server_process.launch(directory, values, after=stopping)
        settings.keep(directory, values)
        _write_info(directory, endpoint, proc.pid, False, values)  # so that stop() finds it
        try:
            if stopping is not None:
                server_process.await_exit(stopping)  # its last requests are in the recording now
            recording = directory / RECORDING
            restore = recording.exists() and recording.stat().st_size > 0
            if restore:
                check_recording(recording)
            server_process.await_up(directory, endpoint, proc)
            if restore:
                _replay(endpoint, directory)
            else:
                prepare_new(endpoint)
        except BaseException:
            server_process.terminate(proc)  # a server that failed to start is no one's: no orphans
            (directory / SERVER_INFO).unlink(missing_ok=True)
            raise
        _write_info(directory, endpoint, proc.pid, True, values)
        started = "restarted" if replaced else "restored" if restore else "new"
        return Sandbox(endpoint, proc.pid, started, notice)


def clock(advance: float | None = None) -> dict[str, object]:
    """The sandbox's schedule clock (`clock_api`): its time, or, with `advance` (seconds),
    moved forward, with the firings that fell due. Starts the sandbox if needed."""
    url = f"{ensure().endpoint}{CLOCK_PATH}"
    data = None if advance is None else json.dumps({"advance": advance}).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        # Firings are carried out before the reply (a pipeline's state machine included).
        with urllib.request.urlopen(req, timeout=SETUP_TIMEOUT) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise TerminalError(f"sandbox clock: {exc.read().decode(errors='replace')}") from None


def stop() -> bool:
    """Stops the server in server.json, if its pid is still a sandbox server (after a reboot the
    pid may belong to any process)."""
    directory = state_dir()
    with _locked(directory):
        info = _read_info(directory)
        (directory / SERVER_INFO).unlink(missing_ok=True)
        pid = info.get("pid") if info else None
        # Never a pid it cannot vouch for (after a reboot server.json may name init), nor our
        # own process group; a server whose start failed is stopped too (no orphan is left).
        if (
            not isinstance(pid, int)
            or pid <= 1
            or pid == os.getpgrp()
            or not server_process.is_server(pid)
        ):
            return False
        return server_process.stop_server(pid)


def reset() -> None:
    """Stops the server and discards the account: its recording (and snapshot), its journal, EC2
    instances' files, and the settings kept (the next command starts with those of its
    environment)."""
    stop()
    directory = state_dir()
    for name in (RECORDING, JOURNAL, settings.SETTINGS_FILE, CLOCK_FILE, SLACK_FILE, *snapshot.ALL):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / INSTANCES_DIR, ignore_errors=True)  # their logs and scratch


def status() -> dict[str, object]:
    directory = state_dir()
    info = _read_info(directory) or {}
    recording = directory / RECORDING
    requests = sum(1 for _ in recording.open("rb")) if recording.exists() else 0  # damaged too
    endpoint = info.get("endpoint")
    running = bool(endpoint) and alive(str(endpoint))
    values = settings.wanted(directory)
    current = _settings_of(info) if running else values
    result: dict[str, object] = {
        "stateDir": str(directory),
        "endpoint": endpoint,
        "pid": info.get("pid"),
        "running": running,
        "recordedRequests": requests,
        # What its jobs do: the running server's settings (else those a start would use).
        **SandboxConfig(current).settings(),
        "jobAttemptsRunning": settings.running_attempts(directory) if running else 0,
        "instancesRunning": ec2_machine.running(directory) if running else 0,
    }
    changed = settings.differences(current, values)
    if changed:
        result["pending"] = (
            f"this environment sets {', '.join(changed)}: the next command restarts the "
            "sandbox with it (unless job attempts are running)"
        )
    return result
