"""EC2 tasks end to end on the sandbox: the instance really runs the user data, the agent
streams the script's output through SQS, the CLI prints it and ends the run; over HTTP only
(the CLI, and plain boto3 to look)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import ec2_faults
from reconciler.sandbox.ec2_machine import INSTANCE_ENV, with_environment
from tests.conftest import REGION, client
from tests.stacks import infra, stack

HEADER = "apiVersion: reconciler.io/v1alpha1\n"
IMAGE = "{owners: [amazon], name: amzn2-ami-hvm-*}"
COUNT = """echo HI
for i in `seq 5`; do echo "count: $i"; sleep 0.2; done
echo BYE"""


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)  # logs and reports go to ./.reconciler/runs


def task(name: str, script: str, extra: str = "") -> str:
    body = "\n".join("      " + line for line in script.splitlines())
    return (
        f"{HEADER}kind: Task\nmetadata: {{name: {name}}}\nspec:\n"
        f"  ec2: {{instanceType: t3.micro, image: {IMAGE}}}\n"
        f"  script: |\n{body}\n{extra}"
    )


def instances(endpoint: str) -> list[dict[str, Any]]:
    ec2 = client(endpoint, "ec2")
    return [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if any(t["Key"] == "reconciler.io/run" for t in i.get("Tags") or [])
    ]


def running(endpoint: str) -> list[str]:
    return [
        i["InstanceId"]
        for i in instances(endpoint)
        if i["State"]["Name"] in ("pending", "running", "stopping", "stopped")
    ]


def run_queues(endpoint: str) -> list[str]:
    return (
        client(endpoint, "sqs").list_queues(QueueNamePrefix="reconciler-run-").get("QueueUrls", [])
    )


def test_the_seeds_hi_count_bye_streams_live_in_order_and_leaves_nothing(srun, write, aws):
    path = write(task("count", COUNT))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    lines = [line for line in result.out.splitlines() if line.startswith("count/count: ")]
    expected = ["HI", *(f"count: {i}" for i in range(1, 6)), "BYE"]
    assert [line.split(": ", 1)[1] for line in lines] == expected, result.out
    assert not running(aws), "the instance terminated itself when the script ended"
    assert run_queues(aws) == [], "the run's queue is deleted at its end"
    (instance,) = instances(aws)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["reconciler.io/task"] == "count" and tags["reconciler.io/managed-by"]
    # The seed's per-task files, in the run's log directory.
    (run_dir,) = list(Path(".reconciler/runs/task/count").iterdir())
    assert (run_dir / "count.stdout").read_text().splitlines() == expected
    assert (run_dir / "count.exitCode").read_text().strip() == "0"
    assert "echo HI" in (run_dir / "count.sh").read_text()
    assert (run_dir / "count.startup.sh").read_text().startswith("#!")
    assert "ClientToken" in (run_dir / "count.ec2.json").read_text()
    assert not (run_dir / "count.stderr").exists()

    again = srun("apply", "-f", path)
    assert again.code == 0 and again.writes == 0, again.err
    assert "RunInstances" not in " ".join(again.calls)
    logs = srun("logs", "-f", path, "task/count")
    assert logs.out.splitlines() == expected


def test_stderr_and_a_failing_exit_code_fail_the_apply(srun, write, aws):
    path = write(task("oops", "echo fine\necho broken >&2\nexit 3"))
    result = srun("apply", "-f", path)
    assert result.code != 0
    assert "oops/oops!: broken" in result.out
    assert "the script exited with 3" in result.out
    (run_dir,) = list(Path(".reconciler/runs/task/oops").iterdir())
    assert (run_dir / "oops.stderr").read_text() == "broken\n"
    assert (run_dir / "oops.exitCode").read_text().strip() == "3"
    again = srun("apply", "-f", path)
    assert "RunInstances" not in " ".join(again.calls), "a failed run is not launched again"


def test_a_mixed_pipeline_orders_ec2_and_batch_tasks_by_files_and_dependencies(srun, write, aws):
    client(aws, "s3").create_bucket(Bucket="data-bucket")
    pipeline = f"""{HEADER}kind: Pipeline
metadata: {{name: mixed}}
spec:
  jobQueue: main-queue
  tasks:
  - name: make
    ec2: {{instanceType: t3.micro, image: {IMAGE}}}
    outputs: [s3://data-bucket/made.txt]
    script: |
      echo made | aws s3 cp - s3://data-bucket/made.txt
  - name: crunch
    jobDefinition: leader
    dependsOn: [{{task: make}}]
  - name: use
    ec2: {{instanceType: t3.micro, image: {IMAGE}}}
    inputs: [s3://data-bucket/made.txt]
    dependsOn: [{{task: crunch}}]
    script: |
      aws s3 cp s3://data-bucket/made.txt - | sed 's/^/got: /'
"""
    path = write(stack(infra(), "\n" + pipeline))
    result = srun("apply", "-f", path, "--wait")
    assert result.code == 0, result.out + result.err
    assert "mixed/use: got: made" in result.out
    by_task = {
        t["Value"]: i for i in instances(aws) for t in i["Tags"] if t["Key"] == "reconciler.io/task"
    }
    assert set(by_task) == {"make", "use"}
    assert by_task["make"]["LaunchTime"] <= by_task["use"]["LaunchTime"]

    # The same work again (a new run of an unchanged spec): `make`'s output is newer than its
    # inputs (it has none), so it is skipped as up to date; the others run.
    rerun = path.replace("stack.yaml", "rerun.yaml")
    Path(rerun).write_text(
        Path(path)
        .read_text()
        .replace("  jobQueue: main-queue", "  jobQueue: main-queue\n  rerun: 1")
    )
    second = srun("apply", "-f", rerun)
    assert second.code == 0, second.err
    assert "mixed/make: up to date, skipped" in second.out


def test_capacity_errors_are_retried_in_other_attempts(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_EC2_LAUNCH_MAX_WAIT", "0.2")
    ec2_faults.fail_launches(aws, 2)
    path = write(task("retry", "echo ok"))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.err
    assert "InsufficientInstanceCapacity" in result.out and "retry in" in result.out
    assert len(instances(aws)) == 1, "no second instance for one task"


def test_an_instance_that_dies_fails_its_task_with_the_reason(srun, write, aws):
    path = write(task("doomed", "echo started\nsleep 30"))
    proc = _cli_in_background(aws, path)
    try:
        instance = _wait_for(lambda: running(aws))
        _wait_for(lambda: _printed(proc, "doomed/doomed: started"))
        ec2_faults.kill_instance(aws, instance[0])
        rest, err = proc.communicate(timeout=60)
        out = _printed.seen[proc.pid] + rest + err  # type: ignore[attr-defined]
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "SpotInstanceTermination" in out or "before the script ended" in out


def test_ctrl_c_terminates_the_runs_instances_and_deletes_its_queue(aws, write):
    # A process that leaves the script's session must end with the instance too.
    path = write(task("long", "setsid sleep 300 &\necho started\nsleep 60"))
    proc = _cli_in_background(aws, path)
    try:
        (instance,) = _wait_for(lambda: running(aws))
        _wait_for(lambda: _printed(proc, "long/long: started"))
        mine = with_environment(f"{INSTANCE_ENV}={instance}".encode())
        assert len(mine) >= 2, "the user data, the agent, the script, its setsid child"
        proc.send_signal(signal.SIGINT)
        err = "".join(proc.communicate(timeout=60))
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert not running(aws)
    assert run_queues(aws) == []
    mark = f"{INSTANCE_ENV}={instance}".encode()
    _wait_for(lambda: not set(mine) & set(with_environment(mark)), timeout=10)


def test_gc_ends_what_a_killed_apply_left(aws, write, srun):
    path = write(task("orphan", "echo started\nsleep 60"))
    proc = _cli_in_background(aws, path)
    try:
        _wait_for(lambda: running(aws))
        _wait_for(lambda: _printed(proc, "orphan/orphan: started"))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert running(aws) and run_queues(aws)
    srun("unlock", "--force")  # the killed apply held the stack's lease
    dry = srun("gc", "--dry-run")
    assert dry.code == 0 and "would end instance" in dry.out and "would end queue" in dry.out
    assert running(aws), "--dry-run ends nothing"
    done = srun("gc")
    assert done.code == 0, done.err
    _wait_for(lambda: not running(aws))
    assert run_queues(aws) == []
    assert "nothing left behind" in srun("gc").out


def test_a_detached_task_is_launched_and_its_logs_read_later(srun, write, aws):
    path = write(task("bg", "echo one\nsleep 1\necho two", "  detached: true\n"))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.err
    _wait_for(lambda: not running(aws), timeout=60)
    logs = srun("logs", "-f", path, "task/bg", "--follow")
    assert logs.out.splitlines() == ["one", "two"]
    got = srun("get", "-f", path, "task/bg")
    assert "SUCCEEDED" in got.out


# -- helpers ---------------------------------------------------------------------------------


def _cli_in_background(endpoint: str, path: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "reconciler", "apply", "-f", path]
    argv += ["--sandbox-url", endpoint, "--region", REGION, "--yes"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _printed.seen[proc.pid] = ""  # type: ignore[attr-defined]
    return proc


def _printed(proc: subprocess.Popen[str], text: str) -> bool:
    """Whether the CLI has printed `text` yet (reads its stdout without blocking)."""
    import select

    assert proc.stdout is not None
    seen = _printed.seen  # type: ignore[attr-defined]
    while select.select([proc.stdout], [], [], 0)[0]:
        chunk = os.read(proc.stdout.fileno(), 65536).decode()
        if not chunk:
            break
        seen[proc.pid] += chunk
    return text in seen[proc.pid]


_printed.seen = {}  # type: ignore[attr-defined]


def _wait_for(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value
