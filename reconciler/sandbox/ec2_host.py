"""The sandbox's EC2 host: instances go through `pending`, tool-tagged ones run their user data,
and they end as EC2 instances end.

`ec2_patches` hands every instance RunInstances launches to the server's `InstanceHost` (made by
`moto_ext.install()`). Its daemon thread ticks while any instance is pending, runs a process or
has a shutdown scheduled:
- an instance is `pending` for RECONCILER_SANDBOX_INSTANCE_PENDING_SECONDS (read at launch),
  then `running`; one launched with the tool's ownership tags then runs its user data
  (`ec2_machine`), unless RECONCILER_SANDBOX_RUN_USER_DATA=0. Untagged instances run nothing.
- an instance ends: `power_off` (the user data's `shutdown`, `poweroff`, `halt`: stopped or
  terminated as its InstanceInitiatedShutdownBehavior says, stateReason
  Client.InstanceInitiatedShutdown; `reboot` kills its processes and it runs on), `kill` (a
  spot interruption or a host failure, injected by a test: terminated, with AWS's reason), or
  moto's own stop and terminate (TerminateInstances, StopInstances, ...), which call `ended`.
  Each kills the instance's process group; a termination also removes its scratch directory
  and closes its spot request.
- the server stopping kills every instance's processes (`shutdown`); a server restored from its
  recording terminates, once the replay is done (`after_replay`), every instance of the
  tool's that was pending or running: its processes died with the old server (or are killed
  now, if a crash left them), as a lost host's.
Launch faults (`ec2_faults.LaunchFaults`) make the next matching RunInstances fail, for tests.
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from moto.ec2.models.instances import InstanceState, StateReason

from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.ec2_faults import HOST_FAILURE, SPOT_INTERRUPTION, LaunchFaults
from reconciler.sandbox.ec2_machine import INSTANCES_DIR, Machine, kill_leftover
from reconciler.sandbox.job_runner import LocalRunner

TICK = 0.05
PENDING, RUNNING = ("pending", 0), ("running", 16)  # EC2's state names and codes
# AWS's state reasons (`Code: message`).
INSTANCE_SHUTDOWN = "Client.InstanceInitiatedShutdown"
SPOT_TERMINATION = "Server.SpotInstanceTermination"
INTERNAL_ERROR = "Server.InternalError"
REASONS = MappingProxyType(
    {
        INSTANCE_SHUTDOWN: "Instance initiated shutdown",
        SPOT_TERMINATION: "Spot instance termination",
        INTERNAL_ERROR: "Internal error: the instance's host failed",
    }
)
RESTARTED = "Internal error: the sandbox restarted while the instance ran (its processes ended)"
# How each kind of end leaves a one-time spot request (AWS's status codes): closed.
SPOT_STATUS = MappingProxyType(
    {
        "user": ("instance-terminated-by-user", "Spot Instance terminated by the user."),
        "capacity": ("instance-terminated-no-capacity", "No capacity: Spot Instance terminated."),
        "service": ("instance-terminated-by-service", "Spot Instance terminated by the service."),
    }
)
CAUSES = MappingProxyType({SPOT_INTERRUPTION: SPOT_TERMINATION, HOST_FAILURE: INTERNAL_ERROR})

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Entry:
    """One launched instance as the host follows it."""

    instance: Any  # moto's Instance
    reservation: Any  # moto's Reservation: the backend still has it, unless it was reset
    machine: Machine | None  # None: not the tool's, or user data turned off
    ready_at: float | None  # monotonic time it leaves pending; None once it has
    shutdown_at: float | None = None  # a `shutdown +N` the user data scheduled
    spot_request: Any = None  # moto's SpotInstanceRequest for a spot launch
    end_reason: tuple[str, str] | None = None  # the state reason of the end under way
    ended: bool = False


@dataclass(eq=False)
class InstanceHost:
    """The EC2 instances of one server; owned by its `moto_ext.Extensions`."""

    config: SandboxConfig
    endpoint: str | None = None  # the server's URL, for the user data (set by server.py)
    lock: threading.RLock = field(default_factory=threading.RLock)
    entries: dict[str, Entry] = field(default_factory=dict)
    faults: LaunchFaults = field(default_factory=LaunchFaults)
    # RunInstances' ClientToken: (account, region, token) -> (the request's fingerprint, its
    # reservation)
    tokens: dict[tuple[str, str, str], tuple[str, Any]] = field(default_factory=dict)
    replaying: bool = False
    _root: Path | None = None
    _thread: threading.Thread | None = None
    _wake: threading.Condition = field(init=False)
    _runner: LocalRunner = field(init=False)

    def __post_init__(self) -> None:
        self._wake = threading.Condition(self.lock)
        self._runner = LocalRunner(self.config)

    @property
    def root(self) -> Path:
        """Where instances keep their files: the server's directory, else a temporary one."""
        server_dir = self.config.server_dir
        if server_dir:
            return Path(server_dir) / INSTANCES_DIR
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="reconciler-sandbox-ec2-")) / INSTANCES_DIR
        return self._root

    # --- launches ---------------------------------------------------------------------------

    def launched(
        self,
        instance: Any,
        reservation: Any,
        owned: bool,
        spot_request: Any = None,
        endpoint: str | None = None,
    ) -> None:
        """Takes a just-launched instance over: `pending` for the settable time. `endpoint`:
        the URL its user data reaches the sandbox at (the server's, else the launch's Host)."""
        with self.lock:
            instance._state = InstanceState(*PENDING)
            earlier = self.entries.pop(instance.id, None)
            if earlier is not None and earlier.machine is not None:
                earlier.machine.kill()  # an instance of a reset account that had its ID
            if not self.replaying:  # a replay keeps what the instance printed before
                shutil.rmtree(self.root / instance.id, ignore_errors=True)
            machine = None
            if owned and self.config.run_user_data:
                machine = Machine(
                    instance.id,
                    self.root / instance.id,
                    self.endpoint or endpoint or "",
                    instance.region_name,
                    self._runner.path(),
                )
            ready = time.monotonic() + self.config.pending_seconds
            self.entries[instance.id] = Entry(
                instance, reservation, machine, ready, spot_request=spot_request
            )
            self._start()

    # --- ends -------------------------------------------------------------------------------

    def ended(self, instance: Any, terminated: bool) -> None:
        """moto stopped or terminated the instance (any path): its processes go, and on a
        termination its scratch directory and its one-time spot request."""
        with self.lock:
            entry = self.entries.get(instance.id)
            if entry is None or entry.instance is not instance:
                return
            if entry.end_reason is not None:  # before the processes are killed: describe
                _reason(instance, *entry.end_reason)  # never shows moto's reason meanwhile
                entry.end_reason = None
            entry.ready_at, entry.shutdown_at = None, None
            if entry.machine is not None:
                if terminated:
                    entry.machine.discard()
                else:
                    entry.machine.kill()
            if terminated:
                entry.ended = True
                self._close_spot(entry, "user")

    def started(self, instance: Any) -> None:
        """StartInstances on a stopped instance: `pending` again, then `running`; its user data
        is not run again (cloud-init runs it once per instance)."""
        with self.lock:
            entry = self.entries.get(instance.id)
            if entry is not None and entry.instance is instance and not entry.ended:
                instance._state = InstanceState(*PENDING)
                entry.ready_at = time.monotonic() + self.config.pending_seconds
                self._start()

    def rebooted(self, instance: Any) -> None:
        entry = self.entries.get(instance.id)
        if entry is not None and entry.instance is instance and not entry.ended:
            self.power_off(instance.id, "reboot")

    def token(self, key: tuple[str, str, str]) -> tuple[str, Any] | None:
        """The fingerprint and reservation of an earlier RunInstances with this ClientToken
        (None if none, or if its account was reset since)."""
        with self.lock:
            found = self.tokens.get(key)
            if found is not None and not _current(found[1]):
                del self.tokens[key]
                return None
            return found

    def power_off(self, instance_id: str, action: str, delay: float = 0.0) -> None:
        """What the user data's shutdown/poweroff/halt/reboot asks of its instance."""
        with self.lock:
            entry = self._entry(instance_id)
            if action == "cancel":
                entry.shutdown_at = None
            elif delay > 0:
                entry.shutdown_at = time.monotonic() + delay / self.config.time_scale
                self._wake.notify_all()
            elif action == "reboot":
                if entry.machine is not None:
                    entry.machine.kill()
                    entry.machine.note(f"{instance_id}: rebooted (its user data is not run again)")
            else:
                self._shut_down(entry)

    def kill(self, instance_id: str, cause: str) -> None:
        """Ends a running instance without its user data finishing: a spot interruption or a
        host failure (terminated, with AWS's state reason)."""
        if cause not in CAUSES:
            raise ValueError(f"cause must be one of {', '.join(CAUSES)}")
        with self.lock:
            entry = self._entry(instance_id)
            code = CAUSES[cause]
            self._close_spot(entry, "capacity" if code == SPOT_TERMINATION else "service")
            self._terminate(entry, code, REASONS[code])

    def shutdown(self) -> None:
        """The server is stopping: every instance's processes go with it."""
        acquired = self.lock.acquire(timeout=2.0)  # a stopping server must not wait for ever
        try:
            for entry in list(self.entries.values()):
                if entry.machine is not None:
                    entry.machine.kill()
        finally:
            if acquired:
                self.lock.release()

    def after_replay(self) -> None:
        """A restored server: the tool's instances that were running (or pending) when the old
        server went away died with it; they are terminated, with a state reason that says so."""
        with self.lock:
            for entry in list(self.entries.values()):
                state = entry.instance._state.name
                if state not in (PENDING[0], RUNNING[0]):
                    continue
                if entry.machine is None:  # nothing of it ran: it just runs, as restored
                    # from a snapshot (at once: a describe right after the restart sees it so)
                    entry.ready_at = None
                    entry.instance._state = InstanceState(*RUNNING)
                    continue
                kill_leftover(entry.machine.directory)  # a crashed server's orphans
                self._close_spot(entry, "service")
                self._terminate(entry, INTERNAL_ERROR, RESTARTED)
            self._wake.notify_all()

    def console(self, instance_id: str) -> bytes | None:
        with self.lock:
            entry = self.entries.get(instance_id)
            return entry.machine.console() if entry and entry.machine else None

    # --- helpers ----------------------------------------------------------------------------

    def _entry(self, instance_id: str) -> Entry:
        entry = self.entries.get(instance_id)
        if entry is None or entry.ended:
            raise KeyError(f"no running instance {instance_id} on this sandbox")
        return entry

    def _shut_down(self, entry: Entry) -> None:
        instance = entry.instance
        if instance.instance_initiated_shutdown_behavior == "terminate":
            self._terminate(entry, INSTANCE_SHUTDOWN, REASONS[INSTANCE_SHUTDOWN])
        else:
            entry.end_reason = (INSTANCE_SHUTDOWN, REASONS[INSTANCE_SHUTDOWN])
            instance.stop()  # moto's stop, patched: calls ended()

    def _terminate(self, entry: Entry, code: str, message: str) -> None:
        entry.end_reason = (code, message)
        entry.instance.terminate()  # moto's terminate, patched: calls ended()

    def _close_spot(self, entry: Entry, how: str) -> None:
        request = entry.spot_request
        if request is None or request.state not in ("open", "active"):
            return
        request.state = "closed"
        request._status_code, request.status_message = SPOT_STATUS[how]

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="sandbox-ec2", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _busy(self) -> bool:
        return any(
            not e.ended
            and (e.ready_at is not None or e.shutdown_at is not None or _running(e.machine))
            for e in self.entries.values()
        )

    def _loop(self) -> None:
        with self.lock:
            while True:
                if self.replaying or not self._busy():
                    self._wake.wait()
                    continue
                self._wake.wait(TICK)
                try:
                    self._tick(time.monotonic())
                except Exception:  # one instance's trouble must not stop the host
                    log.exception("sandbox EC2 host")

    def _tick(self, moment: float) -> None:
        for entry in list(self.entries.values()):
            if not entry.ended and not _current(entry.reservation):
                entry.ended = True  # its account was reset: it is gone
                if entry.machine is not None:
                    entry.machine.kill()
                self.entries.pop(entry.instance.id, None)
            if entry.ended or self.replaying:
                continue
            if entry.ready_at is not None and moment >= entry.ready_at:
                entry.ready_at = None
                if entry.instance._state.name == PENDING[0]:
                    entry.instance._state = InstanceState(*RUNNING)
                    if entry.machine is not None and not entry.machine.booted:
                        entry.machine.boot(_raw(entry.instance.user_data))
            if entry.shutdown_at is not None and moment >= entry.shutdown_at:
                entry.shutdown_at = None
                self._shut_down(entry)
            if entry.machine is not None:
                entry.machine.exited()  # reaps it, and notes its exit code in the log


def _current(reservation: Any) -> bool:
    """The reservation is still its backend's (moto's reset empties the backend)."""
    backend = reservation.instances[0].ec2_backend if reservation.instances else None
    return backend is not None and backend.reservations.get(reservation.id) is reservation


def _running(machine: Machine | None) -> bool:
    return machine is not None and machine.proc is not None and not machine.exit_noted


def _reason(instance: Any, code: str, message: str) -> None:
    instance.state_reason = StateReason(f"{code}: {message}", code)


def _raw(user_data: Any) -> bytes | None:
    """moto keeps user data base64-encoded (a Base64EncodedString); the bytes it stands for."""
    if user_data is None:
        return None
    try:
        return base64.b64decode(str(user_data))
    except (binascii.Error, ValueError):
        return None
