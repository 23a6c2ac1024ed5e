"""The example stack is the seed's whole workflow, and it runs on the sandbox (#10).

`reconciler apply -f manifests/examples/ --sandbox --wait` with the jobs' commands running on
this machine: the leader writes `stress-tests.txt` to the stack's bucket (its derived name
filled in through `{bucket: stress-results, as: url}`), each of the 12 follower children
reads its line and writes `JOBID_ATTEMPT_INDEX.txt`; the objects are read back with plain
boto3. A sandbox stop and start then changes nothing that finished: the run, its jobs and the
objects are as they were, and a re-apply has nothing to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from reconciler.sandbox import manager
from reconciler.sandbox.config import AWS_CLI_ENV, COMMANDS_ENV

EXAMPLES = str(Path(__file__).resolve().parents[2] / "manifests" / "examples")
FOLLOWERS = 12


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv(COMMANDS_ENV, "1")
    monkeypatch.setenv(AWS_CLI_ENV, "shim")  # CI installs only our package: no real `aws`
    yield tmp_path / "sandbox"
    manager.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=300
    )


def _s3() -> Any:
    endpoint = manager.status()["endpoint"]
    return boto3.client("s3", endpoint_url=endpoint, **manager.CREDENTIALS, region_name="us-east-1")


def _objects(bucket: str) -> dict[str, bytes]:
    s3 = _s3()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or []]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_the_example_runs_the_seed_workflow_and_a_restart_keeps_it(sandbox: Path) -> None:
    applied = _cli("apply", "-f", EXAMPLES, "--sandbox", "--wait", "--report", str(sandbox / "r"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Pipeline/stress: run" in applied.stdout and "SUCCEEDED" in applied.stdout

    got = _cli("get", "buckets", "--sandbox", "-o", "json")
    assert got.returncode == 0, got.stderr
    [bucket] = [
        d["metadata"]["annotations"]["reconciler.io/arn"].rsplit(":", 1)[-1]
        for d in (json.loads(got.stdout).get("items") or [json.loads(got.stdout)])
    ]
    assert bucket.startswith("stress-ng-results-")

    objects = _objects(bucket)
    tests = objects["stress-tests.txt"].decode().splitlines()
    assert len(tests) >= FOLLOWERS and all("--cpu-method" in t for t in tests)
    outputs = {k: v for k, v in objects.items() if k != "stress-tests.txt"}
    assert len(outputs) == FOLLOWERS, sorted(objects)
    for index in range(FOLLOWERS):
        [(key, body)] = [(k, v) for k, v in outputs.items() if k.endswith(f"_1_{index}.txt")]
        assert key.split("_")[0].endswith(f":{index}")  # AWS_BATCH_JOB_ID of the child
        assert tests[index].split()[-1] in body.decode(), (key, body)

    before = _cli("get", "-f", EXAMPLES, "--sandbox", "-o", "json")
    assert manager.stop()
    after = _cli("get", "-f", EXAMPLES, "--sandbox", "-o", "json")
    assert after.returncode == 0, after.stderr
    assert "(restored;" in after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert _objects(bucket) == objects  # nothing re-ran: not one object was rewritten

    again = _cli("diff", "-f", EXAMPLES, "--sandbox")
    assert again.returncode == 0, again.stdout + again.stderr
