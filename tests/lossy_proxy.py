"""An HTTP proxy in front of a moto server that loses replies: the request reaches AWS (moto
carries it out), but the client never hears back, as when a connection drops mid-reply."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LossyProxy:
    def __init__(self, upstream: str, lose: dict[str, int]):
        """`lose` maps a path (e.g. "/v1/submitjob") to how many of its replies to lose."""
        self.upstream = upstream.rstrip("/")
        self.left = Counter(lose)
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                proxy.forward(self)

            def do_GET(self) -> None:
                proxy.forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LossyProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        request = urllib.request.Request(
            self.upstream + handler.path, data=body, headers=headers, method=handler.command
        )
        try:
            with urllib.request.urlopen(request) as reply:
                status, reply_headers, data = reply.status, reply.headers.items(), reply.read()
        except urllib.error.HTTPError as exc:
            status, reply_headers, data = exc.code, exc.headers.items(), exc.read()
        path = handler.path.split("?")[0].lower()
        with self._lock:
            self.seen[path] += 1
            lose = self.left[path] > 0
            if lose:
                self.left[path] -= 1
        if lose:  # carried out upstream; the reply is lost on the way back
            handler.close_connection = True
            handler.connection.close()
            return
        handler.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
