"""The sandbox server process: moto, extended by moto_ext, serving on a loopback port.

Started detached by `reconciler.sandbox.manager`, so it outlives the CLI invocation that
started it; the environment it is given turns moto's request recorder on, which is how the
sandbox's state survives a restart, and names its directory (the job journal) and endpoint.
The server owns the moto extensions it installs (their settings come from that same
environment), and with them the job scheduler. Stopped (SIGTERM), it kills its jobs'
processes and its EC2 instances' first: they run in process groups of their own, and would
outlive it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from types import FrameType

from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.moto_import import import_moto_ec2


def serve(host: str, port: int) -> None:
    import_moto_ec2()  # before anything else imports it the slow way
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from reconciler.sandbox import moto_ext

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # The extensions (and their scheduler) live as long as the moto they patched: this process.
    extensions = moto_ext.install(SandboxConfig(os.environ))

    def stop(signum: int, frame: FrameType | None) -> None:
        extensions.scheduler.shutdown()  # as a lost host: its attempts are not journalled
        extensions.ec2.shutdown()  # every instance's processes
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    # Schedules fire by calling this server; moto's Step Functions runner calls
    # localhost:MOTO_PORT for the Batch states of a state machine.
    extensions.clock.endpoint = f"http://{host}:{server.port}"
    extensions.ec2.endpoint = extensions.clock.endpoint  # what user data reaches the sandbox at
    os.environ["MOTO_PORT"] = str(server.port)
    extensions.clock.start()
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="reconciler-sandbox-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
