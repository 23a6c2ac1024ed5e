"""One writer per stack: concurrent applies never do the same work twice (a lease in AWS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconciler.aws.clients import Aws, AwsConfig
from reconciler.aws.lock import StackLock
from tests.conftest import REGION, client
from tests.stacks import infra, pipeline, stack

ROOT = Path(__file__).resolve().parents[2]


def _apply(aws: str, path: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            "-f",
            path,
            "--endpoint-url",
            aws,
            "--region",
            REGION,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_two_applies_at_once_submit_one_run_and_register_once(write, aws):
    path = write(stack(infra(), pipeline()))
    first, second = _apply(aws, path), _apply(aws, path)
    outs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    batch = client(aws)
    jobs = batch.list_jobs(
        jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": ["stress*"]}]
    )["jobSummaryList"]
    assert len(jobs) == 2, "one run: a leader and a follower array, not two of each"
    revisions = batch.describe_job_definitions(jobDefinitionName="leader")["jobDefinitions"]
    assert [d["revision"] for d in revisions] == [1]
    assert any("Waiting for the lock of stack 'default'" in out for out in outs), outs


def test_a_held_lock_fails_fast_with_lock_timeout_zero_and_unlock_frees_it(run, write, aws):
    path = write(infra())
    holder = StackLock(
        Aws(
            AwsConfig(
                region=REGION,
                endpoint_url=aws,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        ),
        "default",
        "apply",
    )
    holder.acquire(0, lambda _line: None)
    try:
        refused = run("apply", "-f", path, "--lock-timeout", "0")
        assert refused.code == 1
        assert "stack 'default' is locked by" in refused.err
        assert "reconciler unlock --force --stack default" in refused.err
        # --stats now counts a failed command's calls: the only writes are the lease attempts.
        written = {
            k for k in refused.calls if not k.split(":")[1].startswith(("Describe", "List", "Get"))
        }
        assert written <= {"dynamodb:PutItem", "dynamodb:CreateTable"}, refused.calls
        unlocked = run("unlock", "--force")
        assert unlocked.code == 0 and "was held by" in unlocked.out
        assert run("apply", "-f", path, "--lock-timeout", "0").code == 0
    finally:
        holder.release()


def test_unlock_without_force_is_a_usage_error(run, aws):
    assert run("unlock").code == 64
