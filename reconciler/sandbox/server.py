"""The sandbox server process: moto, extended by moto_ext, serving on a loopback port.

Started detached by `reconciler.sandbox.manager`, so it outlives the CLI invocation that
started it; the environment it is given turns moto's request recorder on, which is how the
sandbox's state survives a restart, and names its directory (the job journal) and endpoint.
The server owns the moto extensions it installs (their settings come from that same
environment), and with them the job scheduler. Stopped (SIGTERM), it lets a state machine
execution that runs end (a scheduled Pipeline's firing: a chain of `submitJob` states, each a
request to this server; a few seconds at most), since no snapshot can be written while one
runs. Then it stops taking requests and kills its jobs' processes and its EC2 instances': they
run in process groups of their own, and would outlive it; then, once the requests it is
serving are done, it writes a snapshot of its state (`snapshot`), which the next server loads
before it serves, so that it replays only what the recording holds beyond it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.sandbox import procs, snapshot
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.moto_import import IMPORT_CACHE, import_moto_ec2
from reconciler.sandbox.server_process import SERVER_MODULE

DRAIN_WAIT = 5.0  # seconds the requests being served have to finish before a snapshot
# Seconds state machine executions running at a stop have to end, at most, and without a
# request (one that waits rather than submits) before the server stops without a snapshot.
# Within the manager's STOP_WAIT, with time left for the snapshot.
EXECUTIONS_WAIT, EXECUTIONS_IDLE = 6.0, 2.0
POLL = 0.01  # seconds between the serving loop's checks for a stop
REAP_WAIT = 2.0  # seconds the killed job processes have to be gone before the server exits


class InFlight:
    """The WSGI application, counting the requests it is serving (a snapshot waits for them)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.count = 0
        self._done = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._done:
            self.count += 1
        try:
            return self.app(environ, start_response)
        finally:
            with self._done:
                self.count -= 1
                self._done.notify_all()

    def drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._done:
            while self.count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True


def serve(host: str, port: int, after: int | None = None) -> None:
    """`after`: a server of the same directory told to stop; this one imports moto meanwhile,
    and touches the directory (journal, clock, snapshot) only once that one is gone."""
    directory = SandboxConfig(os.environ).server_dir
    # moto's modules and a snapshot's state are millions of objects that live as long as this
    # process: a collection every 700 of them made, going through all made so far, was a third
    # of the start. No collection runs while they are made, and later ones skip them (`freeze`:
    # they are still freed when nothing refers to them; a cycle among them stays).
    gc.disable()
    # Before anything else imports moto's EC2 models the slow way.
    import_moto_ec2(Path(directory) / IMPORT_CACHE if directory else None)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from reconciler.sandbox import moto_ext

    if after is not None:
        # The manager kills it after its STOP_WAIT; this wait is only a bound.
        procs.wait_gone([after], procs.STOP_WAIT + procs.GONE_WAIT)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # What became of the snapshot goes to the server's log (the manager's SERVER_LOG).
    said = logging.StreamHandler()
    said.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    snapshot.log.addHandler(said)
    snapshot.log.setLevel(logging.INFO)
    # The extensions (and their scheduler) live as long as the moto they patched: this process.
    extensions = moto_ext.install(SandboxConfig(os.environ))
    recording = Path(os.environ.get("MOTO_RECORDER_FILEPATH", "")) if directory else None
    if directory and recording is not None:
        # A new account (no recording) is whole at once; one to restore once it is replayed.
        extensions.durability.whole = not recording.exists() or recording.stat().st_size == 0
        # Before the first request: the manager's replay then sends only the tail.
        try:
            extensions.durability.covered = snapshot.load(extensions, Path(directory), recording)
        except snapshot.Unusable:
            # moto's state is touched: the full replay is done by a fresh process (same pid,
            # so the manager waits for it as for this one), without the snapshot.
            path = Path(directory)
            (path / snapshot.SNAPSHOT).replace(path / snapshot.UNUSABLE)
            os.execv(sys.executable, [sys.executable, "-m", SERVER_MODULE, *sys.argv[1:]])
    gc.freeze()
    gc.enable()

    app = InFlight(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)

    def wind_down() -> None:
        """Off the signal handler: the server goes on serving while executions end."""
        try:
            running = snapshot.under_way() if directory and recording is not None else None
            if running:
                snapshot.log.info("sandbox stop: waiting (%s)", running)
                extensions.states.until_executions_end(EXECUTIONS_IDLE, EXECUTIONS_WAIT)
        except Exception:  # the stop goes on whatever the check met
            snapshot.log.exception("sandbox stop: running executions unknown")
        finally:
            server.shutdown()  # serve_forever returns (within POLL)

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already
        threading.Thread(target=wind_down, name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    # Schedules fire by calling this server; moto's Step Functions runner calls
    # localhost:MOTO_PORT for the Batch states of a state machine.
    extensions.clock.endpoint = f"http://{host}:{server.port}"
    extensions.ec2.endpoint = extensions.clock.endpoint  # what user data reaches the sandbox at
    os.environ["MOTO_PORT"] = str(server.port)
    extensions.clock.start()
    # Returns once stopped (SIGTERM, `wind_down`), its socket closed: no new request; then
    # its jobs and instances go, those under way end, and the snapshot is written.
    server.serve_forever(poll_interval=POLL)
    extensions.scheduler.shutdown()  # as a lost host: its attempts are not journalled
    extensions.ec2.shutdown()  # every instance's processes
    if directory and recording is not None:
        if not app.drained(DRAIN_WAIT):
            snapshot.log.warning("sandbox snapshot: not written (requests still running)")
        elif not extensions.durability.whole:  # its replay failed or never came
            snapshot.log.warning("sandbox snapshot: not written (the recording not restored)")
        else:
            snapshot.write(extensions, Path(directory), recording)
    # Gone at once: freeing moto's million objects one by one takes seconds, which the
    # restart waiting for this process would add. Nothing is left to flush but the log;
    # the jobs' processes it killed are waited for (whoever sees it gone sees them gone).
    _reap(REAP_WAIT)
    logging.shutdown()
    os._exit(0)


def _reap(seconds: float) -> None:
    """Waits, at most `seconds`, until this process has no child left (SIGKILLed, they die a
    moment later)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(prog="reconciler-sandbox-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--after", type=int, help="the pid of a server being stopped")
    args = parser.parse_args()
    serve(args.host, args.port, args.after)


if __name__ == "__main__":
    main()
