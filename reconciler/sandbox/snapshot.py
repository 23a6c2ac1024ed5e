"""A snapshot of the sandbox server's state, so that a restart need not replay every request.

The sandbox's durable state is moto's request recording (`manager`): replaying 1,000 requests
takes a new server about 15 s. So a server stopped gracefully (SIGTERM: `sandbox stop`,
`restart`, a settings change) writes, once its in-flight requests are done, `snapshot.pickle`
in its state directory: moto's backends (every service in use, each account and region), moto's
seeded generator and whether requests draw from streams of their own (IDs drawn after a restore
are those a replay would give), moto's `/moto-api/config`, and what the sandbox's extensions
keep beside moto (the EC2 host's instances, ClientTokens and injected faults; when queues let
go of compute environments), and how much of the recording that covers (bytes, lines and a
SHA-256 of that prefix). The next server loads it before it serves anything and replays only
the recording's tail after it (nothing after a clean stop; after a crash, the requests made
since the snapshot), then ends the instances that ran, as after a full replay (`ec2_patches`).

Unfinished jobs are in it too, with what the scheduler knows of them; a loaded one is rewound
to its submission and restored from the job journal (`job_restore`), as a replayed SubmitJob
is: an attempt running at the stop fails as on a lost host, whichever way the server came back.
No snapshot is written while a state machine runs (moto's runner is a thread of the old
server): the previous snapshot, if any, stays, and its tail is replayed. Any doubt falls back
to the full replay: no file, another format, moto, Python or sandbox code (a hash of this
package's modules), a damaged body (its SHA-256 is in the header), a recording that does not
start with the bytes the snapshot covers. One that passes those and still fails to load has
touched moto's state already: the server then moves it aside (`UNUSABLE`) and starts again
without it. Nothing here raises to the user.

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
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import collector
from reconciler.sandbox import snapshot_pickle

if TYPE_CHECKING:
    from reconciler.sandbox.moto_ext import Extensions

SNAPSHOT = "snapshot.pickle"  # in the server's state directory
UNUSABLE = f"{SNAPSHOT}.unusable"  # one that could not be loaded, kept aside for a look
ALL = (SNAPSHOT, UNUSABLE)  # what `sandbox reset` discards (leftovers() go at the next write)
FORMAT = 2  # this module's own format; moto's version is checked too
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


def _versions() -> dict[str, object]:
    """What a snapshot must have been written by: this format, moto and Python, and this very
    code of the sandbox (its objects are in the pickle: a changed class could load wrongly)."""
    import moto

    code = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        code.update(module.name.encode() + b"\0" + module.read_bytes())
    return {
        "format": FORMAT,
        "moto": str(moto.__version__),
        "python": list(sys.version_info[:2]),
        "code": code.hexdigest(),
    }


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
        # Whether the recording's requests draw from streams of their own (request_streams):
        # its seed request is in the part of the recording the tail replay skips.
        "streams": extensions.durability.streams.seed,
        "config": {
            k: v
            for k, v in default_user_config.items()
            if k in ("batch", "lambda", "stepfunctions")
        },
        "ec2": (host.entries, host.tokens, host.faults.faults),
        # The scheduler's unfinished jobs, array children before their parent (as it runs them);
        # not those of an account reset since (its next tick would have let go of them).
        "jobs": [run for run in extensions.scheduler._active if not run.stale],
        # Ages, not monotonic times: those of another boot would mean nothing.
        "released": {arn: now - when for arn, when in released.items()},
    }


def under_way(registries: dict[tuple[str, str], Any] | None = None) -> str | None:
    """What runs that a snapshot would freeze (a replay restarts it as it must), or None."""
    if registries is None:
        registries = snapshot_pickle.registries()
    for (module, _), backends in registries.items():
        if not module.startswith("moto.stepfunctions"):
            continue
        for _, _, backend in backends.iter_backends():
            for machine in getattr(backend, "state_machines", []):
                if any(e.status == "RUNNING" for e in getattr(machine, "executions", [])):
                    return "a state machine execution is running"
    return None


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
    kept, if it cannot stand for the recording (a state machine running, something unpicklable)."""
    target, began = directory / SNAPSHOT, time.monotonic()
    for stale in leftovers(directory):  # of a server killed while it wrote one
        stale.unlink(missing_ok=True)
    temporary = directory / f".{SNAPSHOT}.{os.getpid()}.tmp"
    try:
        with _held(extensions) as held:
            if not held:
                log.warning("sandbox snapshot: not written (a lock was held too long)")
                return False
            registries = snapshot_pickle.registries()
            running = under_way(registries)
            if running:
                log.info("sandbox snapshot: not written (%s; the recording stays)", running)
                return False
            body = io.BytesIO()
            state = _state(extensions, registries)
            pickle.dump(state.pop("regions"), body, protocol=pickle.HIGHEST_PROTOCOL)
            # A million objects: the collector would walk them again and again.
            with collector.paused():
                ids = snapshot_pickle.live_ids(_singletons(extensions), registries)
                snapshot_pickle.Pickler(body, ids).dump(state)
            prefix = covered(recording)
        header: dict[str, object] = {
            **_versions(),
            "offset": prefix.offset,
            "lines": prefix.lines,
            "sha256": prefix.digest,
        }
        header["body"] = hashlib.sha256(body.getbuffer()).hexdigest()
        # No fsync: a file cut short by a power loss fails its digest, and the recording (which
        # moto does not fsync either) is replayed in full.
        with temporary.open("wb") as handle:
            handle.write(json.dumps(header).encode() + b"\n")
            handle.write(body.getbuffer())
        temporary.replace(target)
        size, took = target.stat().st_size, time.monotonic() - began
        log.info("sandbox snapshot: %d requests, %d bytes (%.2f s)", prefix.lines, size, took)
        return True
    except Exception:  # a snapshot is an optimisation: the recording is still whole
        log.exception("sandbox snapshot: not written")
        temporary.unlink(missing_ok=True)
        return False


def leftovers(directory: Path) -> list[Path]:
    """Temporary files of a snapshot being written, or of a tail being replayed, that a killed
    server left behind."""
    return [*directory.glob(f".{SNAPSHOT}.*.tmp"), *directory.glob(".*.tail.*")]


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
    expected = _versions()
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
        snapshot_pickle.accounts(pickle.load(handle))
        with collector.paused():
            state = snapshot_pickle.Unpickler(handle, _singletons(extensions)).load()
        _install(extensions, state)
    except Exception as exc:  # of classes that changed since: the recording decides
        log.exception("sandbox snapshot %s: unreadable; full replay in a new process", path)
        raise Unusable(str(exc)) from exc
    log.info(
        "sandbox snapshot: loaded, %d requests (%.2f s)", prefix.lines, time.monotonic() - began
    )
    return prefix


def _install(extensions: Extensions, state: dict[str, Any]) -> None:
    """Installs a fully unpickled state (nothing is changed before unpickling succeeded)."""
    from moto.core.config import default_user_config
    from moto.moto_api._internal import mock_random

    # Imports moto: not at the top, where the CLI imports this module for its file names.
    from reconciler.sandbox import job_restore

    for (module, name), accounts in state["backends"].items():
        backends = getattr(importlib.import_module(module), name)
        for account, regions in accounts.items():
            target = backends[account]  # the account's dict, created as moto would
            for region, backend in regions.items():
                dict.__setitem__(target, region, backend)
                snapshot_pickle.forget_pages(backend)
    mock_random.setstate(state["random"])
    extensions.durability.streams.seed = state["streams"]
    default_user_config.update(state["config"])
    entries, tokens, faults = state["ec2"]
    host, now = extensions.ec2, time.monotonic()
    with host.lock:
        host.entries.update(entries)
        host.tokens.update(tokens)
        host.faults.faults[:] = faults
    released = extensions.resources._released
    released.update({arn: now - age for arn, age in state["released"].items()})
    scheduler = extensions.scheduler
    # Nothing runs before the manager's replay of the tail, which lets the scheduler go (as
    # after a full replay): a request in the tail may cancel one of these jobs.
    scheduler.pause(True)
    for run in state["jobs"]:  # all of them first: restoring a child marks its parent ran
        job_restore.rewind(run, extensions.config, scheduler.runner)
    for run in state["jobs"]:
        scheduler.add(run)
