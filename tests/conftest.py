"""Shared fixtures: a real moto server over HTTP (extended as the sandbox is), and a CLI runner.

Integration tests never patch boto3: the CLI talks HTTP to `ThreadedMotoServer` on a loopback
port. Each test starts from a freshly reset and seeded account.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from reconciler import cli
from reconciler.sandbox import manager, moto_ext

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_ext.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh account on the moto server, prepared as the sandbox prepares one."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    req = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(req).close()
    manager.prepare_new(moto_endpoint)
    return moto_endpoint


def client(endpoint: str, service: str = "batch") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Result:
    code: int
    out: str
    err: str
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return sum(
            n
            for k, n in self.calls.items()
            if not k.split(":", 1)[1].startswith(("Describe", "List", "Get", "Head"))
        )

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


@dataclass
class Runner:
    endpoint: str
    capsys: pytest.CaptureFixture[str]
    sandbox: bool = False  # --sandbox-url: the server is a sandbox (sandbox-only behaviour)

    def __call__(self, *args: str) -> Result:
        argv = list(args)
        if argv[0] not in ("validate", "schema", "sandbox"):
            target = "--sandbox-url" if self.sandbox else "--endpoint-url"
            argv += [target, self.endpoint, "--region", REGION, "--stats"]
        self.capsys.readouterr()
        code = cli.main(argv)
        captured = self.capsys.readouterr()
        calls = {
            m.group(1): int(m.group(2))
            for m in re.finditer(r"^  (\w+:\w+): (\d+)$", captured.err, re.M)
        }
        return Result(code, captured.out, captured.err, calls)


@pytest.fixture
def run(aws: str, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(aws, capsys)


@pytest.fixture
def srun(aws: str, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Like `run`, against the server as a sandbox: jobs progress quickly, tasks may fail."""
    return Runner(aws, capsys, sandbox=True)


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Writes manifest text to a file and returns its path."""

    def _write(text: str, name: str = "stack.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return _write


def tags_of(endpoint: str, arn: str) -> dict[str, str]:
    return dict(client(endpoint).list_tags_for_resource(resourceArn=arn)["tags"])


def dumps(obj: Any) -> str:
    return json.dumps(obj)
