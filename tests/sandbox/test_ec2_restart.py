"""A sandbox that stops or dies takes its instances' processes with it, and a restored sandbox
shows the tool's instances that were running then as terminated, with a reason (an instance
death), never as still running (reconciler.sandbox.ec2_host.InstanceHost.after_replay).

A real sandbox server (`manager.ensure`, its own state directory), driven with plain boto3.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from reconciler.sandbox import manager
from reconciler.sandbox.config import PENDING_ENV, USER_DATA_ENV
from tests.sandbox.test_ec2_instances import IMAGE, SHUTDOWN_REASON, alive, tag_specs

LOOP = "#!/bin/sh\necho $$ > main.pid\nsleep 300\n"


@pytest.fixture
def sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv(PENDING_ENV, "0.1")
    monkeypatch.delenv(USER_DATA_ENV, raising=False)
    yield tmp_path / "sandbox"
    manager.stop()


def ec2_of(endpoint: str) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=manager.REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def launch(ec2: Any, user_data: str, owned: bool = True, **kwargs: Any) -> str:
    if owned:
        kwargs["TagSpecifications"] = tag_specs("instance")
    reply = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, UserData=user_data, **kwargs)
    return str(reply["Instances"][0]["InstanceId"])


def describe(ec2: Any, instance_id: str) -> dict[str, Any]:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservation["Instances"][0])


def started(directory: Path, instance_id: str, timeout: float = 30.0) -> int:
    """The pid of the instance's user data, once it wrote it."""
    pid_file = directory / "instances" / instance_id / "home" / "main.pid"
    deadline = time.monotonic() + timeout
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, f"{instance_id} did not start"
        time.sleep(0.05)
    return int(pid_file.read_text())


def test_running_instances_die_with_the_sandbox_and_are_terminated_when_it_is_restored(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = manager.ensure()
    ec2 = ec2_of(first.endpoint)
    looping = launch(ec2, LOOP, ClientToken="run-1/looping")  # its ID derived from the token
    finished = launch(
        ec2, "#!/bin/sh\nshutdown -h now\n", InstanceInitiatedShutdownBehavior="terminate"
    )
    theirs = launch(ec2, LOOP, owned=False)
    pid = started(sandbox_dir, looping)
    deadline = time.monotonic() + 30
    while describe(ec2, finished)["State"]["Name"] != "terminated":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # Other settings do not restart a sandbox under a running instance (it would die).
    monkeypatch.setenv(PENDING_ENV, "0.2")
    kept = manager.ensure()
    assert kept.started == "running" and "1 EC2 instance(s) are running" in str(kept.notice)
    assert manager.status()["instancesRunning"] == 1
    assert alive(pid)

    assert manager.stop()
    assert not alive(pid), "stopping the sandbox kills its instances' processes"
    again = manager.ensure()
    assert again.started == "restored"
    ec2 = ec2_of(again.endpoint)
    died = describe(ec2, looping)
    assert died["State"]["Name"] == "terminated"
    assert died["StateReason"]["Code"] == "Server.InternalError"
    assert "the sandbox restarted" in died["StateReason"]["Message"]
    assert describe(ec2, finished)["StateReason"]["Message"] == SHUTDOWN_REASON, "as it was"
    assert describe(ec2, theirs)["State"]["Name"] == "running", "it never ran anything"
    assert "running its user data" in ec2.get_console_output(InstanceId=looping)["Output"]
    assert not (sandbox_dir / "instances" / looping / "home").exists()

    # A server killed outright leaves its instances' processes behind: the next one kills them.
    orphaned = launch(ec2, LOOP)
    pid = started(sandbox_dir, orphaned)
    assert again.pid is not None
    os.kill(again.pid, signal.SIGKILL)
    assert alive(pid)
    third = manager.ensure()
    assert third.started == "restored"
    assert not alive(pid)
    found = describe(ec2_of(third.endpoint), orphaned)
    assert (found["State"]["Name"], found["StateReason"]["Code"]) == (
        "terminated",
        "Server.InternalError",
    )
