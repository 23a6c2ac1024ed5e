"""Whether job commands run locally is visible, and never silently ignored (#10).

A sandbox server reads RECONCILER_SANDBOX_RUN_COMMANDS (and the step seconds, ...) from the
environment it was started with. `reconciler sandbox status` shows what it runs with; a later
command whose environment sets something else restarts it with that when no job attempt runs
on it, and otherwise keeps it and says so, and how to restart (`sandbox restart`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from reconciler import cli
from reconciler.sandbox import manager
from reconciler.sandbox.config import COMMANDS_ENV, RUN_ENV, STEP_ENV
from reconciler.sandbox.job_run import HOST_LOST


@pytest.fixture
def sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    for name in (COMMANDS_ENV, STEP_ENV, RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "sandbox"
    manager.stop()


def status(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["sandbox", "status"]) == 0
    return dict(yaml.safe_load(capsys.readouterr().out))


def batch(endpoint: str, service: str = "batch") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=manager.REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_status_shows_the_settings_and_a_new_shell_keeps_them(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = status(capsys)
    assert shown["running"] is False
    assert (shown["runCommands"], shown["stepSeconds"], shown["jobSeconds"]) == (False, 0.2, 1.0)

    monkeypatch.setenv(COMMANDS_ENV, "1")
    monkeypatch.setenv(STEP_ENV, "0.05")
    assert manager.ensure().started == "new"
    shown = status(capsys)
    assert (shown["running"], shown["runCommands"], shown["stepSeconds"]) == (True, True, 0.05)
    assert "pending" not in shown

    # A shell that does not set them keeps what the sandbox runs with, across a restart too.
    monkeypatch.delenv(COMMANDS_ENV)
    monkeypatch.delenv(STEP_ENV)
    assert manager.ensure().started == "running"
    assert manager.stop()
    assert manager.ensure().started == "restored"
    shown = status(capsys)
    assert (shown["runCommands"], shown["stepSeconds"]) == (True, 0.05)

    # One that sets another value is shown what the next command will do...
    monkeypatch.setenv(COMMANDS_ENV, "0")
    shown = status(capsys)
    assert shown["runCommands"] is True and COMMANDS_ENV in shown["pending"]
    # ... which restarts the server with it, since no job runs on it.
    restarted = manager.ensure()
    assert restarted.started == "restarted"
    assert f"{COMMANDS_ENV}=0" in str(restarted.notice)
    shown = status(capsys)
    assert shown["runCommands"] is False and "pending" not in shown

    # `reset` forgets them with the account.
    manager.reset()
    monkeypatch.delenv(COMMANDS_ENV)
    assert status(capsys)["runCommands"] is False


def test_a_change_while_attempts_run_keeps_the_server_and_says_how_to_restart(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(STEP_ENV, "0.02")
    monkeypatch.setenv(RUN_ENV, "60")  # the job stays RUNNING (no command is run)
    first = manager.ensure()
    client = batch(first.endpoint)
    subnets = [s["SubnetId"] for s in batch(first.endpoint, "ec2").describe_subnets()["Subnets"]]
    client.create_compute_environment(
        computeEnvironmentName="settings-ce",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "subnets": subnets,
            "instanceRole": "ecsInstanceRole",
        },
    )
    client.create_job_queue(
        jobQueueName="settings-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "settings-ce"}],
    )
    client.register_job_definition(
        jobDefinitionName="settings-jd",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128},
    )
    job_id = client.submit_job(jobName="long", jobQueue="settings-q", jobDefinition="settings-jd")[
        "jobId"
    ]
    deadline = time.monotonic() + 10
    while client.describe_jobs(jobs=[job_id])["jobs"][0]["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    monkeypatch.setenv(COMMANDS_ENV, "1")
    kept = manager.ensure()
    assert (kept.started, kept.endpoint) == ("running", first.endpoint)
    assert "1 job attempt(s) are running" in str(kept.notice)
    assert f"`{COMMANDS_ENV}=1 reconciler sandbox restart`" in str(kept.notice)
    assert status(capsys)["runCommands"] is False

    # Through the CLI: the warning is on stderr, the command goes on against the same server.
    manifest = sandbox_dir.parent / "jd.yaml"
    manifest.write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: JobDefinition\nmetadata: {name: settings-jd}\n"
        "spec: {type: container, containerProperties: {image: busybox, vcpus: 1, memory: 128}}\n"
    )
    capsys.readouterr()
    assert cli.main(["get", "--sandbox", "-f", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert f"{first.endpoint} (running;" in err and "job attempt(s) are running" in err

    capsys.readouterr()
    assert cli.main(["sandbox", "restart"]) == 0
    out = capsys.readouterr()
    assert "sandbox restarted at" in out.out and f"{COMMANDS_ENV}=1" in out.err
    shown = status(capsys)
    assert shown["runCommands"] is True
    [job] = batch(str(shown["endpoint"])).describe_jobs(jobs=[job_id])["jobs"]
    assert (job["status"], job["statusReason"]) == ("FAILED", HOST_LOST)
