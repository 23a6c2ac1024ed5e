"""How an EC2 run ends when its CLI does not see it through, on the sandbox over HTTP: a re-apply
after `kill -9` prints the rest of the output live, the driver's timeout terminates an instance
that never reports, and deleting a running run ends its instances and its queue (issue #11)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.sandbox.test_ec2_tasks import (
    HEADER,
    IMAGE,
    _cli_in_background,
    _printed,
    _wait_for,
    instances,
    run_queues,
    running,
    task,
)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)  # logs go to ./.reconciler/runs; the background CLI's too


def _kill_9_once_printed(endpoint: str, path: str, text: str) -> None:
    proc = _cli_in_background(endpoint, path)
    try:
        _wait_for(lambda: _printed(proc, text))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()


def test_a_reapply_after_kill_9_prints_the_rest_live_and_each_line_once(aws, write, srun):
    expected = [f"line {i}" for i in range(1, 21)]
    path = write(task("tick", 'for i in `seq 20`; do echo "line $i"; sleep 1; done'))
    _kill_9_once_printed(aws, path, "tick/tick: line 3")
    assert running(aws), "the task runs on without its CLI"
    (run_dir,) = list(Path(".reconciler/runs/task/tick").iterdir())
    # The complete lines the killed CLI got (a partial last one it had not printed yet).
    before = (run_dir / "tick.stdout").read_text().split("\n")[:-1]
    assert before and before == expected[: len(before)]

    srun("unlock", "--force")  # the killed apply held the stack's lease
    again = srun("apply", "-f", path)
    assert again.code == 0, again.out + again.err
    after = [line.split(": ", 1)[1] for line in again.out.splitlines() if line.startswith("tick/")]
    # Lines the agent sent after the kill come only through the queue (its S3 copy is made
    # every 30 s and at the end): the re-apply follows it live, from where the dead CLI was.
    assert before + after == expected, again.out
    assert (run_dir / "tick.stdout").read_text().splitlines() == expected
    assert (run_dir / "tick.exitCode").read_text().strip() == "0"
    assert "RunInstances" not in " ".join(again.calls), "re-attached, not launched again"
    assert not running(aws) and run_queues(aws) == []


def test_a_reapply_elsewhere_prints_the_whole_output_once_in_order(aws, write, srun):
    expected = [f"line {i}" for i in range(1, 13)]
    path = write(task("tock", 'for i in `seq 12`; do echo "line $i"; sleep 1; done'))
    _kill_9_once_printed(aws, path, "tock/tock: line 3")
    shutil.rmtree(".reconciler")  # another machine: none of the killed CLI's files
    srun("unlock", "--force")
    again = srun("apply", "-f", path)
    assert again.code == 0, again.out + again.err
    printed = [
        line.split(": ", 1)[1] for line in again.out.splitlines() if line.startswith("tock/")
    ]
    # What the killed CLI took is only in the agent's S3 copy: printed from it, and the
    # queue's messages after it, trimmed of what the copy already had.
    assert printed == expected, again.out
    assert not running(aws) and run_queues(aws) == []


def test_an_instance_silent_past_its_timeout_and_boot_slack_is_terminated(
    srun, write, aws, monkeypatch
):
    monkeypatch.setenv("RECONCILER_SANDBOX_INSTANCE_PENDING_SECONDS", "3600")  # never boots
    monkeypatch.setenv("RECONCILER_EC2_BOOT_SLACK_SECONDS", "3")
    path = write(task("stuck", "echo never", "  timeout: {attemptDurationSeconds: 60}\n"))
    result = srun("apply", "-f", path)
    assert result.code == 1, result.out + result.err
    said = result.out + result.err
    assert "stuck: timed out: no exit code 60 s (timeout.attemptDurationSeconds) + 3 s" in said
    assert "RECONCILER_EC2_BOOT_SLACK_SECONDS" in said and "Traceback" not in said
    (instance,) = instances(aws)
    assert instance["State"]["Name"] in ("shutting-down", "terminated")
    assert not running(aws) and run_queues(aws) == []
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    # The deadline `gc` goes by counts the same slack.
    launched = instance["LaunchTime"].timestamp()
    assert abs(float(tags["reconciler.io/deadline"]) - (launched + 63)) < 5


def test_a_bad_boot_slack_is_one_error_line(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_EC2_BOOT_SLACK_SECONDS", "soon")
    path = write(task("stuck", "echo never"))
    result = srun("apply", "-f", path)
    assert result.code == 1
    said = result.out + result.err
    assert "RECONCILER_EC2_BOOT_SLACK_SECONDS: not a number" in said
    assert "Traceback" not in said and instances(aws) == [] and result.writes <= 3  # the lease


def test_deleting_a_running_run_ends_its_instance_and_queue_shown_in_the_plan_first(
    aws, write, srun
):
    path = write(task("busy", "echo started\nsleep 300"))
    _kill_9_once_printed(aws, path, "busy/busy: started")  # nobody follows the run now
    srun("unlock", "--force")
    (instance,) = running(aws)
    assert len(run_queues(aws)) == 1

    asked = srun("delete", "-f", path)  # no terminal and no --yes: the plan, then a refusal
    assert asked.code == 1
    assert f"terminate instance {instance} (run/task " in asked.out
    assert "delete the output queue of run " in asked.out
    assert running(aws) == [instance] and len(run_queues(aws)) == 1, "nothing ended yet"

    done = srun("delete", "-f", path, "--yes")
    assert done.code == 0, done.out + done.err
    assert done.calls.get("ec2:TerminateInstances") == 1
    assert done.calls.get("sqs:DeleteQueue") == 1
    assert not running(aws) and run_queues(aws) == [], "nothing is left for `gc`"
    assert "nothing left behind" in srun("gc").out


def test_deleting_a_pipeline_leaves_its_detached_task_and_says_so(aws, write, srun):
    ec2 = f"ec2: {{instanceType: t3.micro, image: {IMAGE}}}"
    path = write(
        f"""{HEADER}kind: Pipeline
metadata: {{name: both}}
spec:
  tasks:
  - name: fg
    {ec2}
    script: echo started; sleep 300
  - name: bg
    {ec2}
    detached: true
    script: sleep 300
"""
    )
    _kill_9_once_printed(aws, path, "both/fg: started")
    srun("unlock", "--force")
    by_task = {_tag(i, "reconciler.io/task"): i["InstanceId"] for i in instances(aws)}
    done = srun("delete", "-f", path, "--yes")
    assert done.code == 0, done.out + done.err
    assert f"terminate instance {by_task['fg']}" in done.out
    assert f"leave instance {by_task['bg']} running" in done.out and "queue" not in done.out
    assert running(aws) == [by_task["bg"]], "a detached task outlives its pipeline's delete"
    assert len(run_queues(aws)) == 1, "its agent still sends to the run's queue"


def _tag(instance: dict, key: str) -> str:
    return next(t["Value"] for t in instance["Tags"] if t["Key"] == key)
