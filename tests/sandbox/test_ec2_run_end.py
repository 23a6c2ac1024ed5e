"""How an EC2 run ends when its CLI does not see it through, on the sandbox over HTTP: a re-apply
after `kill -9` prints the rest of the output live, the driver's timeout terminates an instance
that never reports, and deleting a running run ends its instances and its queue (issue #11)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.sandbox.test_ec2_tasks import (
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
