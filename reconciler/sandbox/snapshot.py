"""A snapshot of the sandbox server's state, so that a restart need not replay every request.

The sandbox's durable state is moto's request recording (`manager`): replaying 1,000 requests
takes a new server about 15 s. So a server stopped gracefully (SIGTERM: `sandbox stop`,
`restart`, a settings change) writes, once its in-flight requests are done, `snapshot.pickle`
in its state directory: moto's backends (every service in use, each account and region),
moto's seeded generator (IDs drawn after a restore continue the sequence a replay would give),
moto's `/moto-api/config`, and what the sandbox's extensions keep beside moto (the EC2 host's
instances, ClientTokens and injected faults; when queues let go of compute environments), and
how much of the recording that covers (bytes, lines and a SHA-256 of that prefix). The next
server loads it before it serves anything and replays only the recording's tail after it
(nothing after a clean stop; after a crash, the requests made since the snapshot), then ends
the instances that ran, as after a full replay (`ec2_patches`).

No snapshot is written while a job is unfinished (its attempt's fate on a restart is decided by
the replay and the job journal, `job_restore`, and is kept exactly so): the previous snapshot,
if any, stays, and its tail is replayed. Any doubt falls back to today's full replay: no file,
another format or moto version, a recording that does not start with the bytes the snapshot
covers, a file that does not unpickle. Nothing here raises to the user.

Safety: this is a pickle, written by the sandbox server into its own state directory and read
only by the next sandbox server from that same directory (the directory is the user's own,
like the recording); it is never read from anywhere else. What cannot be pickled: threads and
processes (the new server has none of the old one's), and the generators behind the Resource
Groups Tagging API's pagination tokens (those tokens expire with a restore). Secrets: the
server's environment (`SandboxConfig`) is not in it; what moto holds (Secrets Manager values)
is, as the recording holds them already.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.sandbox.moto_ext import Extensions

SNAPSHOT = "snapshot.pickle"  # in the server's state directory
UNUSABLE = f"{SNAPSHOT}.unusable"  # one that could not be loaded, kept aside for a look
FORMAT = 1  # this module's own format; moto's version is checked too
# moto's backends that keep nothing of their own (they pass every call on to another one's
# state, which their own pickling would not survive): the new process's own stand in.
WRAPPERS = frozenset({"BatchSimpleBackend"})
LOCK_WAIT = 5.0  # seconds to wait for a lock of the extensions before giving up the snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Covered:
    """The prefix of the recording a snapshot stands for."""

    offset: int  # bytes
    lines: int
    digest: str  # SHA-256 of those bytes


def covered(recording: Path, offset: int | None = None) -> Covered:
    """The recording's first `offset` bytes (all of it by default), hashed."""
    digest, lines, done = hashlib.sha256(), 0, 0
    with contextlib.suppress(FileNotFoundError), recording.open("rb") as handle:
        while offset is None or done < offset:
            chunk = handle.read(1 << 20 if offset is None else min(1 << 20, offset - done))
            if not chunk:
                break
            digest.update(chunk)
            lines += chunk.count(b"\n")
            done += len(chunk)
    return Covered(done, lines, digest.hexdigest())


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


def _nothing() -> None:
    """What a thread or a process becomes in a snapshot: the new server has neither."""
    return None


def _model_thread(kind: type[threading.Thread]) -> threading.Thread:
    """A moto model that is a thread, as a new thread (never started); its state follows."""
    made = kind.__new__(kind)
    threading.Thread.__init__(made, daemon=True)
    return made


_THREAD_ATTRS = frozenset(vars(threading.Thread()))
_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())
_FRESH: dict[type, Any] = {
    _LOCK: threading.Lock,
    _RLOCK: threading.RLock,
    threading.Condition: threading.Condition,
    threading.Event: threading.Event,
    threading.local: threading.local,
    queue.Queue: queue.Queue,
}
_GONE = (threading.Thread, subprocess.Popen, types.GeneratorType)


class _Pickler(pickle.Pickler):
    """Pickles moto's objects; live objects of the process (moto's registries, the extensions)
    by name, locks as new ones, threads and processes as None."""

    def __init__(self, file: io.BufferedIOBase, live: dict[int, tuple[str, ...]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._live = live

    def persistent_id(self, obj: Any) -> tuple[str, ...] | None:
        return self._live.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _FRESH:
            return (_FRESH[kind], ())
        if isinstance(obj, threading.Thread) and kind.__module__.startswith("moto."):
            # A model that is also a thread (moto's Batch Job): the model, not the thread.
            state = {k: v for k, v in vars(obj).items() if k not in _THREAD_ATTRS}
            return (_model_thread, (kind,), state)
        if isinstance(obj, _GONE) or kind.__name__ == "LocalProcess":
            return (_nothing, ())
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, live: dict[tuple[str, ...], Any]) -> None:
        super().__init__(file)
        self._live = live

    def persistent_load(self, pid: Any) -> Any:
        key = tuple(pid)
        if key in self._live:
            return self._live[key]
        if key[0] in ("backends", "account", "region"):  # moto's: the new process's own
            backends = getattr(importlib.import_module(key[1]), key[2])
            if key[0] == "backends":
                return backends
            return backends[key[3]] if key[0] == "account" else backends[key[3]][key[4]]
        raise pickle.UnpicklingError(f"unknown live object {key!r}")


def _registries() -> dict[tuple[str, str], Any]:
    """moto's BackendDicts in use, by (module, attribute) that names them."""
    from moto.core.base_backend import BackendDict

    found: dict[tuple[str, str], Any] = {}
    for backends in list(BackendDict._instances):
        module = sys.modules.get(backends.backend.__module__)
        names = [n for n, v in vars(module).items() if v is backends] if module else []
        if not names:
            raise LookupError(f"moto's {backends.service_name} backends have no module name")
        found[(backends.backend.__module__, names[0])] = backends
    return found


def _singletons(extensions: Extensions) -> dict[tuple[str, ...], Any]:
    """Objects a snapshot refers to by name: the new process has its own."""
    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.models import moto_api_backend

    found: dict[tuple[str, ...], Any] = {
        ("moto", "mock_random"): mock_random,
        ("moto", "moto_api_backend"): moto_api_backend,
        ("sandbox", "config"): extensions.config,
    }
    for name in vars(extensions):
        found[("sandbox", name)] = getattr(extensions, name)
    return found


def _live_ids(extensions: Extensions, registries: dict[tuple[str, str], Any]) -> dict[int, Any]:
    live = {id(obj): key for key, obj in _singletons(extensions).items()}
    for (module, name), backends in registries.items():
        live[id(backends)] = ("backends", module, name)
        for account, regions in backends.items():
            live[id(regions)] = ("account", module, name, account)
            if backends.backend.__name__ in WRAPPERS:
                for region, backend in regions.items():
                    live[id(backend)] = ("region", module, name, account, region)
    return live


def _state(extensions: Extensions, registries: dict[tuple[str, str], Any]) -> dict[str, Any]:
    from moto.core.config import default_user_config
    from moto.moto_api._internal import mock_random

    host, now = extensions.ec2, time.monotonic()
    released = extensions.resources._released
    return {
        "regions": {
            key: {account: list(regions.regions) for account, regions in backends.items()}
            for key, backends in registries.items()
        },
        "backends": {
            key: {account: dict(regions) for account, regions in backends.items()}
            for key, backends in registries.items()
        },
        "random": mock_random.getstate(),
        "config": {k: default_user_config[k] for k in ("batch", "lambda", "stepfunctions")},
        "ec2": (host.entries, host.tokens, host.faults.faults),
        # Ages, not monotonic times: those of another boot would mean nothing.
        "released": {arn: now - when for arn, when in released.items()},
    }


def _under_way(extensions: Extensions, registries: dict[tuple[str, str], Any]) -> str | None:
    """What runs that a snapshot would freeze (a replay restarts it as it must), or None."""
    if extensions.scheduler._active:
        return f"{len(extensions.scheduler._active)} jobs unfinished"
    for (module, _), backends in registries.items():
        if not module.startswith("moto.stepfunctions"):
            continue
        for _, _, backend in backends.iter_backends():
            for machine in getattr(backend, "state_machines", []):
                if any(e.status == "RUNNING" for e in getattr(machine, "executions", [])):
                    return "a state machine execution is running"
    return None


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _held(extensions: Extensions) -> Iterator[bool]:
    """Every lock the extensions change state under (the recording's too): nothing moves while
    the snapshot is taken. Yields False if one could not be had in time."""
    locks = [
        extensions.durability._recording,
        extensions.scheduler.lock,
        extensions.ec2.lock,
        extensions.clock._lock,
        extensions.resources._lock,
    ]
    taken = []
    try:
        for lock in locks:
            if not lock.acquire(timeout=LOCK_WAIT):
                yield False
                return
            taken.append(lock)
        yield True
    finally:
        for lock in reversed(taken):
            lock.release()


def write(extensions: Extensions, directory: Path, recording: Path) -> bool:
    """Writes the snapshot (temporary file, then rename); False, and the previous snapshot
    kept, if it cannot stand for the recording (a job unfinished, something unpicklable)."""
    target, began = directory / SNAPSHOT, time.monotonic()
    temporary = directory / f".{SNAPSHOT}.{os.getpid()}.tmp"
    try:
        with _held(extensions) as held:
            if not held:
                log.warning("sandbox snapshot: not written (a lock was held too long)")
                return False
            registries = _registries()
            running = _under_way(extensions, registries)
            if running:
                log.info("sandbox snapshot: not written (%s; the recording stays)", running)
                return False
            body = io.BytesIO()
            state = _state(extensions, registries)
            pickle.dump(state.pop("regions"), body, protocol=pickle.HIGHEST_PROTOCOL)
            with _no_gc():  # a million objects: the collector would walk them again and again
                _Pickler(body, _live_ids(extensions, registries)).dump(state)
            prefix = covered(recording)
        header: dict[str, object] = {
            "format": FORMAT,
            "moto": _moto_version(),
            "python": list(sys.version_info[:2]),
            "offset": prefix.offset,
            "lines": prefix.lines,
            "sha256": prefix.digest,
        }
        header["body"] = hashlib.sha256(body.getbuffer()).hexdigest()
        with temporary.open("wb") as handle:
            handle.write(json.dumps(header).encode() + b"\n")
            handle.write(body.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
        size, took = target.stat().st_size, time.monotonic() - began
        log.info("sandbox snapshot: %d requests, %d bytes (%.2f s)", prefix.lines, size, took)
        return True
    except Exception:  # a snapshot is an optimisation: the recording is still whole
        log.exception("sandbox snapshot: not written")
        temporary.unlink(missing_ok=True)
        return False


class Unusable(Exception):
    """The snapshot passed every check and still could not be loaded, after this process had
    imported and created some of moto's backends: a full replay needs a fresh process (moto
    draws IDs when it creates a backend). The server moves the file aside and starts again."""


def load(extensions: Extensions, directory: Path, recording: Path) -> Covered | None:
    """Puts the snapshot's state into this (new, not yet serving) server; what part of the
    recording it covers, or None: nothing was loaded (nor changed), the whole recording is to
    be replayed. Raises `Unusable` if loading failed after moto's state was touched."""
    path, began = directory / SNAPSHOT, time.monotonic()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        header = None
    expected = {"format": FORMAT, "moto": _moto_version(), "python": list(sys.version_info[:2])}
    if not isinstance(header, dict) or any(header.get(k) != v for k, v in expected.items()):
        log.warning("sandbox snapshot %s: another format or version; full replay", path)
        return None
    if hashlib.sha256(body).hexdigest() != header.get("body"):
        log.warning("sandbox snapshot %s: damaged; full replay", path)
        return None
    offset = header.get("offset")
    prefix = covered(recording, offset if isinstance(offset, int) and offset >= 0 else 0)
    if prefix.offset != offset or prefix.digest != header.get("sha256"):
        log.warning("sandbox snapshot %s: not of this recording; full replay", path)
        return None
    try:
        handle = io.BytesIO(body)
        _accounts(pickle.load(handle))
        with _no_gc():
            state = _Unpickler(handle, _singletons(extensions)).load()
        _install(extensions, state)
    except Exception as exc:  # of classes that changed since: the recording decides
        log.exception("sandbox snapshot %s: unreadable; full replay in a new process", path)
        raise Unusable(str(exc)) from exc
    log.info(
        "sandbox snapshot: loaded, %d requests (%.2f s)", prefix.lines, time.monotonic() - began
    )
    return prefix


def _accounts(regions: dict[tuple[str, str], dict[str, list[str]]]) -> None:
    """Creates the accounts' (empty) backend dicts as moto would, with the regions moto listed
    (moto asks botocore for them, which costs more than the rest of a restore)."""
    from moto.core.base_backend import AccountSpecificBackend, BackendDict

    for (module, name), accounts in regions.items():
        backends = getattr(importlib.import_module(module), name)
        for account, names in accounts.items():
            if dict.__contains__(backends, account):
                continue
            found = AccountSpecificBackend.__new__(AccountSpecificBackend)
            found._id = str(uuid.uuid4())
            found.service_name = backends.service_name
            found.account_id = account
            found.backend = backends.backend
            found.regions = list(names)
            dict.__setitem__(backends, account, found)
            if backends not in BackendDict._instances:
                BackendDict._instances.append(backends)


def _forget_pages(backend: Any) -> None:
    """The Resource Groups Tagging API keeps a generator per pagination token it handed out,
    which no pickle holds: those tokens are expired after a restore (AWS's own tokens expire
    too; the API says PaginationTokenExpiredException), rather than an HTTP 500."""
    pages = vars(backend).get("_pages")
    if isinstance(pages, dict):
        for token in [
            t for t, page in pages.items() if isinstance(page, dict) and not page.get("gen")
        ]:
            del pages[token]


def _install(extensions: Extensions, state: dict[str, Any]) -> None:
    """Installs a fully unpickled state (nothing is changed before unpickling succeeded)."""
    from moto.core.config import default_user_config
    from moto.moto_api._internal import mock_random

    for (module, name), accounts in state["backends"].items():
        backends = getattr(importlib.import_module(module), name)
        for account, regions in accounts.items():
            target = backends[account]  # the account's dict, created as moto would
            for region, backend in regions.items():
                dict.__setitem__(target, region, backend)
                _forget_pages(backend)
    mock_random.setstate(state["random"])
    default_user_config.update(state["config"])
    entries, tokens, faults = state["ec2"]
    host, now = extensions.ec2, time.monotonic()
    with host.lock:
        host.entries.update(entries)
        host.tokens.update(tokens)
        host.faults.faults[:] = faults
    released = extensions.resources._released
    released.update({arn: now - age for arn, age in state["released"].items()})
