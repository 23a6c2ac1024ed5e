"""Replies that lack what the API promises, end to end: a proxy in front of the moto server
answers one operation with an empty (or broken) reply and passes everything else through.
Whichever operation it is, the command fails with `error:` or a failed action naming the
operation, never a traceback (aws/replies.py, aws/errors.py)."""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Runner
from tests.integration.test_scheduling_policy import policy

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
XML = ("sts", "ec2")


class BreakingProxy:
    """Forwards to `upstream`; answers the operation named in `broken` with `body` instead."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.broken = ""
        self.body = b"{}"
        self.hits = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                if proxy.operation(self.path, dict(self.headers), data) == proxy.broken.lower():
                    proxy.hits += 1
                    xml = b"Action=" in data
                    body = b"<Response></Response>" if xml and proxy.body == b"{}" else proxy.body
                    self.answer(
                        200, {"content-type": "text/xml" if xml else "application/json"}, body
                    )
                    return
                # Forwarded as it came (http.client adds no Content-Type of its own, which
                # S3's REST calls would be misread by), except Host and Expect.
                host = urllib.parse.urlsplit(proxy.upstream).netloc
                conn = http.client.HTTPConnection(host, timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "expect")
                }
                conn.request(self.command, self.path, body=data or None, headers=headers)
                reply = conn.getresponse()
                self.answer(reply.status, dict(reply.getheaders()), reply.read())
                conn.close()

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

            def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def operation(path: str, headers: dict[str, str], body: bytes) -> str:
        """Batch names it in the path, JSON 1.1 services in a header, query ones in the body."""
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
        if target:
            return target.rsplit(".", 1)[-1].lower()
        if b"Action=" in body:
            return urllib.parse.parse_qs(body.decode()).get("Action", [""])[0].lower()
        return path.rstrip("/").rsplit("/", 1)[-1].lower()


@pytest.fixture
def proxy(aws: str) -> Iterator[BreakingProxy]:
    proxy = BreakingProxy(aws)
    yield proxy
    proxy.server.shutdown()


@pytest.fixture
def prun(proxy: BreakingProxy, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(proxy.url, capsys)


def stack(write) -> str:  # type: ignore[no-untyped-def]
    text = "\n---\n".join(
        [*(p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))), policy(name="fair")]
    )
    return str(write(text))


def assert_clean(result: object, operation: str) -> None:
    text = result.out + result.err  # type: ignore[attr-defined]
    assert "Traceback" not in text, text
    assert result.code == 1, text  # type: ignore[attr-defined]
    assert f"{operation}: the reply" in text, text


# Read (and written) by a first apply to an empty account.
FIRST_APPLY = [
    "GetCallerIdentity",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeComputeEnvironments",
    "DescribeJobQueues",
    "DescribeJobDefinitions",
    "ListSchedulingPolicies",
    "RegisterJobDefinition",
    "CreateSchedulingPolicy",
    "SubmitJob",
]
# Read once there is something to read: the runs of a pipeline, a policy to describe.
SECOND_PASS = ["ListJobs", "DescribeJobs", "DescribeSchedulingPolicies"]


@pytest.mark.parametrize("operation", FIRST_APPLY)
def test_an_empty_reply_on_the_first_apply(operation, proxy, prun, write) -> None:
    proxy.broken = operation
    result = prun("apply", "-f", stack(write))
    assert proxy.hits, f"{operation} was never called"
    assert_clean(result, operation)


@pytest.mark.parametrize("operation", SECOND_PASS)
def test_an_empty_reply_once_the_stack_exists(operation, proxy, prun, write) -> None:
    path = stack(write)
    first = prun("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    proxy.broken = operation
    for verb in ("diff", "get", "delete"):
        yes = ["--yes"] if verb == "delete" else []  # no terminal: a delete must be confirmed
        assert_clean(prun(verb, "-f", path, *yes), operation)
    assert proxy.hits


@pytest.mark.parametrize(
    "body",
    [b'{"computeEnvironments": "not a list"}', b"<html>502 Bad Gateway</html>", b"[1, 2"],
    ids=["wrong-type", "html", "cut-short"],
)
def test_a_reply_that_cannot_be_parsed(body: bytes, proxy, prun, write) -> None:
    proxy.broken, proxy.body = "DescribeComputeEnvironments", body
    assert_clean(prun("diff", "-f", stack(write)), "DescribeComputeEnvironments")
