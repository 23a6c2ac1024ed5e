"""The sandbox server process: moto, extended by moto_ext, serving on a loopback port.

Started detached by `reconciler.sandbox.manager`, so it outlives the CLI invocation that
started it; the environment it is given turns moto's request recorder on, which is how the
sandbox's state survives a restart.
"""

from __future__ import annotations

import argparse
import logging

from reconciler.sandbox import moto_ext


def serve(host: str, port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_ext.install()
    app = DomainDispatcherApplication(create_backend_app)
    make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="reconciler-sandbox-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
