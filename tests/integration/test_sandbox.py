"""The embedded sandbox: a detached moto server whose state survives the CLI and a restart."""

from __future__ import annotations

import subprocess
import sys
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
    assert "Plan: 9 to create, 1 run to submit." in applied.stdout  # bucket, 3 roles, 5 Batch
    assert "Pipeline/stress: run" in applied.stdout and "SUCCEEDED" in applied.stdout

    again = _cli("diff", "-f", EXAMPLES, "--sandbox")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(running;" in again.stderr

    assert manager.stop()
    restored = _cli("get", "-f", EXAMPLES, "--sandbox", "-o", "json")
    assert restored.returncode == 0, restored.stderr
    assert "(restored;" in restored.stderr
    assert restored.stdout.count('"sync": "in sync"') == 10, restored.stdout

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
