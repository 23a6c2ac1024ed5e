"""One writer per stack: concurrent applies never do the same work twice (a lease in AWS)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from reconciler.aws import lock
from reconciler.aws.clients import Aws, AwsConfig
from reconciler.aws.lock import StackLock
from tests.conftest import REGION, client
from tests.stacks import ce, infra, jd, jq, pipeline, stack

ROOT = Path(__file__).resolve().parents[2]


def _apply(aws: str, path: str, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",  # lines reach the test as they are printed
    }
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


def _lock(aws: str, operation: str = "apply") -> StackLock:
    config = AwsConfig(
        region=REGION,
        endpoint_url=aws,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return StackLock(Aws(config), "default", operation)


# What one plan of the stack below reads; a second plan would read each again.
PLAN_READS = (
    "resourcegroupstaggingapi:GetResources",
    "batch:DescribeJobDefinitions",
    "batch:ListJobs",
    "scheduler:ListScheduleGroups",
    "events:ListRules",
)


def _a_stack(write) -> str:  # type: ignore[no-untyped-def]
    return write(stack(ce(), jq(), *(jd(f"def-{i:02d}") for i in range(12))))


def test_a_delete_plans_once_when_no_one_wrote_the_stack_since(run, write, aws):
    """Lock, plan, show, confirm, apply, release: the plan made before the lease is kept when
    the lease, taken in one conditional write, had not been held since the plan began."""
    path = _a_stack(write)
    assert run("apply", "-f", path).code == 0
    time.sleep(lock.CLOCK_SKEW + 0.1)  # the apply's lease ended before the delete plans
    dry = run("delete", "-f", path, "--dry-run")
    deleted = run("delete", "-f", path, "--yes")
    assert deleted.code == 0, deleted.err
    assert {k: deleted.calls.get(k) for k in PLAN_READS} == {
        k: dry.calls.get(k) for k in PLAN_READS
    }
    assert dry.calls["resourcegroupstaggingapi:GetResources"] == 1
    lease = {k: n for k, n in deleted.calls.items() if k.startswith("dynamodb:")}
    assert lease == {"dynamodb:DescribeTable": 1, "dynamodb:PutItem": 1, "dynamodb:UpdateItem": 1}
    # 14 deletions (and the queue's and environment's disabling first) in 32 calls: the rest
    # is one plan's reads, the lease's three calls and the batched waits.
    assert deleted.writes == 18 and deleted.total_calls <= 32, deleted.calls


def test_a_plan_is_made_again_under_the_lease_when_someone_held_it_meanwhile(run, write, aws):
    """Another writer's lease ended as (or after) the plan began: what the plan read may be
    stale, so it is made again under the lease, and the plan shown is that one."""
    path = _a_stack(write)
    assert run("apply", "-f", path).code == 0
    other = _lock(aws)
    other.acquire(0, lambda _line: None)
    other.release()
    deleted = run("delete", "-f", path, "--yes")
    assert deleted.code == 0, deleted.err
    assert deleted.calls["resourcegroupstaggingapi:GetResources"] == 2, deleted.calls
    assert deleted.out.count("JobDefinition/def-00") == 2, "shown once (and its outcome)"


def test_ctrl_c_at_the_confirmation_releases_the_lease(run, write, aws, monkeypatch):
    class Interrupted:
        def isatty(self) -> bool:
            return True

        def readline(self) -> str:
            raise KeyboardInterrupt

    path = _a_stack(write)
    assert run("apply", "-f", path).code == 0
    monkeypatch.setattr(sys, "stdin", Interrupted())
    time.sleep(lock.CLOCK_SKEW + 0.1)  # one plan: the lease is taken once, in one write
    interrupted = run("delete", "-f", path)
    assert interrupted.code == 130
    assert interrupted.calls.get("dynamodb:PutItem") == 1, "the prompt is under the lease"
    assert interrupted.calls.get("dynamodb:UpdateItem") == 1, "and the lease ended"
    assert "Do you want to perform these actions?" in interrupted.out
    assert run("delete", "-f", path, "--yes", "--lock-timeout", "0").code == 0


def test_two_applies_at_once_submit_one_run_and_register_once(write, aws):
    """Both applies start while a third writer holds the lease, so both wait for it (however
    slowly either process starts), then contend for it when it ends: one run, one register."""
    path = write(stack(infra(), pipeline()))
    holder = _lock(aws)
    holder.acquire(0, lambda _line: None)
    procs = [_apply(aws, path), _apply(aws, path)]
    outs: list[list[str]] = [[], []]
    readers = [
        threading.Thread(target=lambda p=p, out=out: out.extend(p.stdout), daemon=True)
        for p, out in zip(procs, outs, strict=True)
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 60
    waiting = "Waiting for the lock of stack 'default'"
    while not all(any(waiting in line for line in out) for out in outs):
        assert time.monotonic() < deadline, outs
        time.sleep(0.1)
    holder.release()
    for p, reader in zip(procs, readers, strict=True):
        p.wait(timeout=120)
        reader.join(timeout=10)
    assert [p.returncode for p in procs] == [0, 0], outs
    batch = client(aws)
    jobs = batch.list_jobs(
        jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": ["stress*"]}]
    )["jobSummaryList"]
    assert len(jobs) == 2, "one run: a leader and a follower array, not two of each"
    revisions = batch.describe_job_definitions(jobDefinitionName="leader")["jobDefinitions"]
    assert [d["revision"] for d in revisions] == [1]
    text = ["".join(out) for out in outs]
    assert sum("No changes: AWS matches the manifests." in t for t in text) == 1, text


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
