"""The benchmark scripts' own parts still work: cheap checks, no timing and no moto server.

The benchmarks themselves are run by hand (benchmarks/README.md); these tests only make sure a
refactoring elsewhere has not broken what they import, how the side-by-side benchmark names
calls, the peer's stack it writes, and how it measures a tool's peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from benchmarks import bench_peer, bench_report, bench_restart, bench_startup, call_proxy
from benchmarks.bench_stack import Shape, manifest_text
from reconciler.manifests import validate_documents
from reconciler.manifests.loader import load_text

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmarks_parse_their_default_arguments() -> None:
    assert bench_peer.parse_args([]).sizes == [3, 30, 300]
    assert bench_peer.parse_args([]).latency == [0.0, 0.05]
    assert bench_startup.parse_args([]).runs > 1
    expanded = dict(bench_startup.expand(bench_startup.COMMANDS, Path("/tmp/x.yaml")))
    assert expanded["reconciler validate -f 5 job definitions"][-1] == "/tmp/x.yaml"
    assert expanded[bench_startup.FLOOR_NAME] == ["-c", bench_startup.FLOOR]
    assert bench_report.parse_args([]).sizes == [1_000, 10_000]
    assert bench_restart.parse_args([]).requests == 1_000


def test_the_peer_stack_has_the_same_resources_as_ours() -> None:
    shape = Shape.of(300)
    account = bench_peer.Account("123456789012", ["subnet-1", "subnet-2"], ["sg-1"])
    stack = bench_peer.beagle_stack(shape, account)
    assert (shape.ce, shape.jq, shape.jd) == (30, 30, 240)  # the 1:1:8
    assert len(stack["compute_environments"]) == shape.ce
    assert len(stack["queues"]) == shape.jq
    assert len(stack["job_definitions"]) == shape.jd
    queue = stack["queues"][2]
    assert [e["name"] for e in queue["compute_environments"]] == ["ce-002", "ce-003", "ce-004"]
    env = stack["compute_environments"][0]["compute_resources"]
    assert env["instanceRole"] == "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"


def test_the_stack_can_name_its_network_by_id_as_the_peers_must() -> None:
    looked_up = validate_documents(load_text(manifest_text(Shape.of(30)), "stack.yaml"))
    by_id = validate_documents(
        load_text(manifest_text(Shape.of(30), (["subnet-1", "subnet-2"], ["sg-1"])), "s.yaml")
    )
    envs = by_id.of_kind("ComputeEnvironment")
    assert len(envs) == 3 and len(by_id.resources) == len(looked_up.resources) == 30
    assert envs[0].spec.computeResources.subnets == ["subnet-1", "subnet-2"]
    assert envs[0].spec.computeResources.securityGroupIds == ["sg-1"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "expected"),
    [
        ("POST", "/v1/describejobqueues", {}, b"{}", "batch:DescribeJobQueues"),
        (
            "POST",
            "/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=DescribeSubnets&Version=2016-11-15",
            "batch:DescribeSubnets",  # the service comes from the signature: batch here
        ),
        ("POST", "/", {"X-Amz-Target": "Logs_20140328.GetLogEvents"}, b"{}", "batch:GetLogEvents"),
    ],
)
def test_the_proxy_names_calls_as_botocore_does(
    method: str, path: str, headers: dict[str, str], body: bytes, expected: str
) -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/batch/aws4_request, SignedHeaders=x"
    rest = call_proxy.rest_operations("batch")
    name = call_proxy.operation_of(method, path, {"Authorization": auth, **headers}, body, rest)
    assert name == expected


class _Upstream(BaseHTTPRequestHandler):
    """Answers every Batch call with an empty queue list, as moto would with no queues."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"jobQueues": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def proxied() -> Iterator[tuple[str, call_proxy.Counts]]:
    upstream, upstream_url = _serve(_Upstream)
    counts = call_proxy.Counts()
    handler = call_proxy.make_handler(
        upstream_url, 0.0, counts, call_proxy.rest_operations("batch")
    )
    proxy, proxy_url = _serve(handler)
    yield proxy_url, counts
    proxy.shutdown()
    upstream.shutdown()


def test_the_proxy_counts_and_forwards_a_real_client_call(
    proxied: tuple[str, call_proxy.Counts],
) -> None:
    url, counts = proxied
    batch = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    ).client("batch", endpoint_url=url)
    assert batch.describe_job_queues()["jobQueues"] == []
    batch.describe_job_queues()
    assert counts.snapshot() == {"batch:DescribeJobQueues": 2}


def test_peak_rss_runs_a_script_and_writes_its_own_peak(tmp_path: Path) -> None:
    script = tmp_path / "grow.py"
    script.write_text("import sys\nblob = bytearray(64 * 1024 * 1024)\nsys.exit(3)\n")
    peak = tmp_path / "peak"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peak_rss.py"), str(peak), str(script)],
        check=False,
    )
    assert done.returncode == 3  # the script's own exit code
    assert 64 * 1024 <= int(peak.read_text()) < 128 * 1024  # KiB: the blob and an interpreter


def test_the_startup_floor_runs() -> None:
    """The floor the startup targets are read against is a program that works on its own."""
    done = subprocess.run([sys.executable, "-c", bench_startup.FLOOR], capture_output=True)
    assert done.returncode == 0, done.stderr
