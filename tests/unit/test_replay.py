"""The recorded request a restored sandbox hands its WSGI application is the one that was sent."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from reconciler.sandbox.replay import environ_of, replay


def _row(**kw: Any) -> dict[str, Any]:
    return {
        "method": "PUT",
        "url": "http://127.0.0.1:5000/bucket/a%2Fb%20c.txt?partNumber=1&uploadId=x",
        "headers": {"Host": "127.0.0.1:5000", "Content-Type": "text/plain"},
        "body": "héllo",
        "body_encoded": False,
        **kw,
    }


def test_the_path_keeps_its_escapes_where_moto_reads_the_raw_path() -> None:
    env = environ_of(_row())
    assert env["REQUEST_METHOD"] == "PUT"
    assert env["RAW_URI"] == env["REQUEST_URI"] == "/bucket/a%2Fb%20c.txt?partNumber=1&uploadId=x"
    assert env["PATH_INFO"] == "/bucket/a/b c.txt"
    assert env["QUERY_STRING"] == "partNumber=1&uploadId=x"
    assert env["HTTP_HOST"] == "127.0.0.1:5000"
    assert env["CONTENT_TYPE"] == "text/plain"


def test_the_body_is_the_bytes_sent_text_or_base64() -> None:
    text = environ_of(_row())
    assert text["wsgi.input"].read() == "héllo".encode()
    assert text["CONTENT_LENGTH"] == str(len("héllo".encode()))
    raw = bytes(range(256))
    binary = environ_of(_row(body=base64.b64encode(raw).decode(), body_encoded=True))
    assert binary["wsgi.input"].read() == raw


def test_a_chunked_request_is_replayed_whole() -> None:
    headers = {"Host": "h", "Transfer-Encoding": "chunked", "Content-Length": "999"}
    env = environ_of(_row(headers=headers, body="abc"))
    assert "HTTP_TRANSFER_ENCODING" not in env
    assert env["CONTENT_LENGTH"] == "3" and env["wsgi.input"].read() == b"abc"


def test_every_request_reaches_the_application_in_order(tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    rows = [_row(url=f"http://h/v1/op{i}", body=str(i)) for i in range(3)]
    recording.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    seen: list[tuple[str, bytes]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append((environ["PATH_INFO"], environ["wsgi.input"].read()))
        start_response("400 BAD REQUEST", [])
        return [b"refused, as when it was recorded"]

    assert replay(app, str(recording)) == 3
    assert seen == [("/v1/op0", b"0"), ("/v1/op1", b"1"), ("/v1/op2", b"2")]
