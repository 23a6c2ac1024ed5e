"""An HTTP proxy in front of the moto server that counts AWS API calls and can add latency.

    python benchmarks/call_proxy.py --upstream http://127.0.0.1:5000 --port 5001 [--latency 0.05]

`bench_peer.py` points both tools at it, so that their calls are counted by one rule and slowed
by one mechanism, whatever client library each uses: the reconciler's own counter
(`CallStats`) lives in its process and batchbeagle has none. Each request is named
`service:Operation` the way botocore names it:

- the service is the signing name in the request's SigV4 credential scope
  (`Authorization: ... Credential=KEY/DATE/REGION/SERVICE/aws4_request`);
- the operation is the `X-Amz-Target` header's last part (JSON protocol), the `Action` form
  field (query protocol: EC2, IAM, STS), or, for Batch's REST protocol, the operation whose
  `requestUri` is the request's path, read from botocore's Batch model.

With `--latency S` every request waits S seconds before it is forwarded, in its own thread, so
calls made concurrently wait concurrently, as they would on a network with that round trip.
Client connections are kept alive (AWS endpoints keep them open; werkzeug closes every one),
and each request goes upstream on a new connection.

Two paths are the proxy's own and are not forwarded: `GET /__proxy/counts` answers the counts
since the last reset as JSON (`{"calls": {"batch:CreateJobQueue": 3, ...}}`), and
`POST /__proxy/reset` sets them to zero. Nothing under `/moto-api/` is counted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",  # set again from the body that is actually sent
    }
)
SCOPE = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")


def rest_operations(service: str) -> dict[tuple[str, str], str]:
    """(method, path) -> operation name for a REST-protocol service, from botocore's model."""
    try:
        from botocore.loaders import create_loader
    except ImportError:  # without botocore, REST calls are named by their path
        return {}
    model = create_loader().load_service_model(service, "service-2")
    return {
        (op["http"]["method"], op["http"]["requestUri"].split("?")[0]): name
        for name, op in model["operations"].items()
    }


class Counts:
    """Calls by `service:Operation`, shared by the handler threads."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, key: str) -> None:
        with self.lock:
            self.calls[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()


def operation_of(
    method: str, path: str, headers: Any, body: bytes, rest: dict[tuple[str, str], str]
) -> str:
    """The request's `service:Operation`, as botocore names it (see the module docstring)."""
    scope = SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    route = urllib.parse.urlsplit(path).path
    if (method, route) in rest:
        return f"{service}:{rest[(method, route)]}"
    if body and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return f"{service}:{action[0]}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("Action")
    if query:
        return f"{service}:{query[0]}"
    return f"{service}:{method} {route}"


def make_handler(
    upstream: str, latency: float, counts: Counts, rest: dict[tuple[str, str], str]
) -> type[BaseHTTPRequestHandler]:
    target = urllib.parse.urlsplit(upstream)
    host, port = target.hostname or "127.0.0.1", target.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep client connections open between requests

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: one line per call would be most of the benchmark's output."""

        def _answer(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/__proxy/"):
                if self.path.startswith("/__proxy/reset"):
                    counts.reset()
                payload = json.dumps({"calls": counts.snapshot()}).encode()
                self._answer(200, payload, "application/json")
                return
            if not self.path.startswith("/moto-api/"):
                counts.add(operation_of(self.command, self.path, self.headers, body, rest))
                if latency > 0:
                    time.sleep(latency)
            conn = http.client.HTTPConnection(host, port, timeout=600)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError as exc:
                self._answer(502, f"proxy: upstream failed: {exc}".encode(), "text/plain")
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="the moto server, e.g. http://127.0.0.1:5000")
    p.add_argument("--port", type=int, required=True, help="the loopback port to listen on")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    args = p.parse_args(argv)
    rest = rest_operations("batch")
    handler = make_handler(args.upstream, args.latency, Counts(), rest)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    server.request_queue_size = 128  # the reconciler opens up to 32 connections a client
    server.serve_forever()


if __name__ == "__main__":
    main()
