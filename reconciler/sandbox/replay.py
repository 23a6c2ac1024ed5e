"""A recording replayed inside the server, request by request, through its WSGI application.

moto's own replay sends each recorded request to the server over HTTP with a new connection,
from a thread of the server itself: every request then pays a TCP connection, the `requests`
library, an HTTP parse and a server thread, and a recording of a thousand requests took about
25 s to replay on a loaded 2-core machine. Handing the WSGI application the environment the
HTTP server would have built gives moto exactly the same request (path as sent, percent
escapes included, headers, body), in the recording's order, without any of that.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from werkzeug.test import EnvironBuilder

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _body(row: dict[str, Any]) -> bytes:
    body = row.get("body", "{}")
    if row.get("body_encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else b""


def environ_of(row: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environment werkzeug's server builds for the recorded request."""
    url = urlsplit(row["url"])
    headers = {k: v for k, v in (row.get("headers") or {}).items()}
    if headers.get("Transfer-Encoding", "") == "chunked":
        del headers["Transfer-Encoding"]  # the body is recorded whole
    body = _body(row)
    headers.pop("Content-Length", None)  # the builder sets it from the body
    environ = EnvironBuilder(
        method=row.get("method") or "GET",
        path=url.path or "/",
        query_string=url.query,
        headers=headers,
        data=body,
    ).get_environ()
    # What werkzeug's server sets and moto reads (`raw_path`): the path as sent, escapes kept.
    raw = url.path + (f"?{url.query}" if url.query else "")
    environ["PATH_INFO"] = unquote(url.path, encoding="latin-1")
    environ["REQUEST_URI"] = environ["RAW_URI"] = raw
    return environ


def replay(app: WsgiApp, location: str) -> int:
    """Replays every request of the recording at `location`; the number replayed. Responses
    are read and dropped, as moto's replay does: a request that failed when it was recorded
    fails the same way again."""

    def start_response(_status: str, _headers: list[Any], _exc: Any = None) -> Any:
        return lambda _data: None

    count = 0
    with open(location) as lines:
        for line in lines:
            if not line.strip():
                continue
            result = app(environ_of(json.loads(line)), start_response)
            try:
                for _chunk in result:
                    pass
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            count += 1
    return count
