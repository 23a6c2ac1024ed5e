"""The embedded sandbox: a detached moto server whose state survives the CLI and a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.sandbox import manager

EXAMPLES = str(Path(__file__).resolve().parents[2] / "manifests" / "examples")


@pytest.fixture
def sandbox_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    yield tmp_path / "sandbox"
    manager.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=180
    )


def test_sandbox_state_persists_across_invocations_and_restarts(sandbox_dir):
    applied = _cli(
        "apply", "-f", EXAMPLES, "--sandbox", "--wait", "--report", str(sandbox_dir / "runs")
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stderr.splitlines()[0].startswith("Using the embedded AWS sandbox at")
    assert "(new;" in applied.stderr
    # Bucket, 4 roles, 6 Batch, the machine image, the schedule and the notification; the
    # pipeline's run and the EC2 task's; the poller task runs only when its schedule fires.
    assert "Plan: 14 to create, 2 runs to submit, 1 unchanged." in applied.stdout
    # The EC2 task's script really ran on its sandbox instance, its output live and in order.
    counted = [line for line in applied.stdout.splitlines() if line.startswith("count/count: ")]
    assert counted[0] == "count/count: HI" and counted[-1] == "count/count: BYE", counted
    assert "Pipeline/stress: run" in applied.stdout and "SUCCEEDED" in applied.stdout
    # --wait says each state change with the fields of the notification's Slack message.
    assert "Pipeline/stress leader: SUCCEEDED job stress--leader--" in applied.stdout

    again = _cli("diff", "-f", EXAMPLES, "--sandbox")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(running;" in again.stderr

    assert manager.stop()
    restored = _cli("get", "-f", EXAMPLES, "--sandbox", "-o", "json")
    assert restored.returncode == 0, restored.stderr
    assert "(restored;" in restored.stderr
    assert restored.stdout.count('"sync": "in sync"') == 17, restored.stdout

    # The replayed jobs may still be running: --drain lets them finish before the queue goes.
    deleted = _cli("delete", "-f", EXAMPLES, "--sandbox", "--drain", "--yes")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "Apply complete" in deleted.stdout and "0 failed" in deleted.stdout


def test_sandbox_status_stop_and_reset(sandbox_dir):
    assert manager.status()["running"] is False
    sandbox = manager.ensure()
    assert sandbox.started == "new"
    assert manager.status()["running"] is True
    assert manager.ensure().started == "running"
    manager.reset()
    assert manager.status()["running"] is False
    assert manager.status()["recordedRequests"] == 0
    assert manager.ensure().started == "new"


def test_the_example_poller_fires_when_the_sandbox_clock_is_advanced(sandbox_dir):
    applied = _cli("apply", "-f", EXAMPLES, "--sandbox")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "note: next firings:" in applied.stdout

    advanced = _cli("sandbox", "clock", "advance", "1h")
    assert advanced.returncode == 0, advanced.stdout + advanced.stderr
    fired = [line for line in advanced.stdout.splitlines() if line.startswith("fired ")]
    assert len(fired) == 1 and "schedule/reconciler-default/poller-hourly" in fired[0], fired
    assert ": job " in fired[0]
    assert "(advanced 3600s)" in advanced.stdout

    def poller_done() -> str:
        got = _cli("get", "-f", EXAMPLES, "--sandbox", "task/poller")
        return got.stdout if "SUCCEEDED" in got.stdout else ""

    deadline = time.monotonic() + 60
    while not poller_done() and time.monotonic() < deadline:
        time.sleep(1)
    assert poller_done(), "the fired poller job did not succeed"
    # Its state changes reached the example's Slack notification (the sandbox's stand-in).
    slack = sandbox_dir / "slack.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "poller--" not in (
        slack.read_text() if slack.exists() else ""
    ):
        time.sleep(0.5)
    messages = [json.loads(line)["text"] for line in slack.read_text().splitlines()]
    polled = [m for m in messages if "*poller--" in m]
    assert len(polled) == 1 and "SUCCEEDED" in polled[0], messages  # statuses: FAILED, SUCCEEDED
    assert "Queue: stress-ng-queue" in polled[0] and "Log stream: poller/default/" in polled[0]

    # A restarted sandbox keeps its time: the same hour does not fire again.
    assert manager.stop()
    shown = _cli("sandbox", "clock")
    assert shown.returncode == 0 and "(advanced 3600s)" in shown.stdout, shown.stdout
