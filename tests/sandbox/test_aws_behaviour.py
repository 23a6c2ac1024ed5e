"""The sandbox answers as AWS does, for any client (issue #8).

Every test drives a sandbox server over HTTP with plain boto3, as the AWS CLI or a user's script
would: nothing here goes through the reconciler's own code paths, which the integration tests
cover. Each test pins one place where plain moto answers differently from AWS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reconciler.sandbox import manager
from reconciler.sandbox.config import COMMANDS_ENV, RUN_ENV, STEP_ENV
from tests.conftest import client

EXAMPLES = str(Path(__file__).resolve().parents[2] / "manifests" / "examples")
ACCOUNT = "123456789012"
SERVER = b"reconciler.sandbox.server"  # in the command line of every sandbox server process


@dataclass
class Account:
    """boto3 clients of one fresh sandbox account, and its default VPC's subnets and group."""

    batch: Any
    ec2: Any
    iam: Any
    subnets: list[str] = field(default_factory=list)
    group: str = ""

    def resources(self, **changes: Any) -> dict[str, Any]:
        """An EC2 environment's computeResources with everything AWS needs, then `changes`."""
        resources = {
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "subnets": self.subnets,
            "securityGroupIds": [self.group],
            "instanceRole": "ecsInstanceRole",
        }
        resources.update(changes)
        return {k: v for k, v in resources.items() if v is not None}

    def create_ce(self, name: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("computeResources", self.resources())
        self.batch.create_compute_environment(computeEnvironmentName=name, type="MANAGED", **kwargs)
        return self.ce(name)

    def ce(self, name: str) -> dict[str, Any]:
        found = self.batch.describe_compute_environments(computeEnvironments=[name])
        return dict(found["computeEnvironments"][0])

    def queue(self, name: str, *envs: str) -> None:
        order = [{"order": i + 1, "computeEnvironment": e} for i, e in enumerate(envs)]
        self.batch.create_job_queue(
            jobQueueName=name, priority=1, state="ENABLED", computeEnvironmentOrder=order
        )


@pytest.fixture
def acct(aws: str) -> Account:
    ec2 = client(aws, "ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"
    ]
    return Account(
        batch=client(aws),
        ec2=ec2,
        iam=client(aws, "iam"),
        subnets=[s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
        group=groups[0]["GroupId"],
    )


def _error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value)


# --- 1. CreateJobQueue ----------------------------------------------------------------------


def test_a_job_queue_created_without_state_is_enabled(acct: Account) -> None:
    acct.create_ce("ce-one")
    acct.batch.create_job_queue(
        jobQueueName="no-state",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce-one"}],
    )
    queue = acct.batch.describe_job_queues(jobQueues=["no-state"])["jobQueues"][0]
    assert queue["state"] == "ENABLED"


# --- 2. ListJobs ----------------------------------------------------------------------------


def test_list_jobs_without_a_status_lists_running_jobs_only(
    acct: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STEP_ENV, "0.05")
    monkeypatch.delenv(COMMANDS_ENV, raising=False)
    acct.create_ce("ce-one")
    acct.queue("q", "ce-one")
    acct.batch.register_job_definition(
        jobDefinitionName="jd",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )

    def wait(job_id: str, status: str) -> None:
        deadline = time.monotonic() + 10
        while acct.batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] != status:
            assert time.monotonic() < deadline, f"{job_id} never {status}"
            time.sleep(0.02)

    monkeypatch.setenv(RUN_ENV, "0.1")
    done = acct.batch.submit_job(jobName="job-done", jobQueue="q", jobDefinition="jd")["jobId"]
    wait(done, "SUCCEEDED")
    monkeypatch.setenv(RUN_ENV, "60")
    running = acct.batch.submit_job(jobName="job-running", jobQueue="q", jobDefinition="jd")
    wait(running["jobId"], "RUNNING")
    try:
        listed = acct.batch.list_jobs(jobQueue="q")["jobSummaryList"]
        assert [j["jobId"] for j in listed] == [running["jobId"]], "RUNNING jobs only"
        succeeded = acct.batch.list_jobs(jobQueue="q", jobStatus="SUCCEEDED")["jobSummaryList"]
        assert [j["jobId"] for j in succeeded] == [done]
        # With filters, every status (and jobStatus is ignored).
        by_name = [{"name": "JOB_NAME", "values": ["job-*"]}]
        for status in ({}, {"jobStatus": "FAILED"}):
            found = acct.batch.list_jobs(jobQueue="q", filters=by_name, **status)
            assert {j["jobId"] for j in found["jobSummaryList"]} == {done, running["jobId"]}
    finally:
        acct.batch.terminate_job(jobId=running["jobId"], reason="test over")


# --- 3. CreateComputeEnvironment: optional fields -------------------------------------------


def test_a_compute_environment_without_minvcpus_has_zero(acct: Account) -> None:
    env = acct.create_ce("no-min", computeResources=acct.resources(minvCpus=None))
    assert env["status"] == "VALID"
    assert env["computeResources"]["minvCpus"] == 0


def test_security_groups_are_optional_for_ec2_and_spot_but_not_fargate(acct: Account) -> None:
    # moto answered HTTP 500 (a KeyError on securityGroupIds), which clients retry for ~30 s.
    for kind in ("EC2", "SPOT"):
        resources = acct.resources(type=kind, securityGroupIds=None, minvCpus=2)
        env = acct.create_ce(f"no-groups-{kind.lower()}", computeResources=resources)
        assert env["status"] == "VALID", env
    fargate = {"type": "FARGATE", "maxvCpus": 4, "subnets": acct.subnets}
    message = _error(
        acct.batch.create_compute_environment,
        computeEnvironmentName="fargate-no-groups",
        type="MANAGED",
        computeResources=fargate,
    )
    assert "ClientException" in message and "security group" in message


# --- 4. DeleteComputeEnvironment ------------------------------------------------------------


def test_a_compute_environment_must_be_disabled_and_unused_to_be_deleted(acct: Account) -> None:
    acct.create_ce("alone")
    message = _error(acct.batch.delete_compute_environment, computeEnvironment="alone")
    assert "ClientException" in message and "ENABLED" in message

    arn = acct.create_ce("in-use")["computeEnvironmentArn"]
    acct.queue("q", "in-use")
    acct.batch.update_compute_environment(computeEnvironment="in-use", state="DISABLED")
    for ident in ("in-use", arn):  # by name or by ARN, as any client may say it
        message = _error(acct.batch.delete_compute_environment, computeEnvironment=ident)
        assert "Cannot delete, found existing JobQueue relationship" in message
    assert acct.ce("in-use")["computeEnvironmentName"] == "in-use"

    acct.batch.update_job_queue(jobQueue="q", state="DISABLED")
    acct.batch.delete_job_queue(jobQueue="q")
    acct.batch.delete_compute_environment(computeEnvironment="in-use")
    names = [
        e["computeEnvironmentName"]
        for e in acct.batch.describe_compute_environments()["computeEnvironments"]
    ]
    assert names == ["alone"]


# --- 5. What Batch cannot build -------------------------------------------------------------


ECS_IMAGE = "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id"
PROFILE_ARN = f"arn:aws:iam::{ACCOUNT}:instance-profile/ecsInstanceRole"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ecsInstanceRole"  # a role, not its instance profile
OVERRIDE = "ec2Configuration"

# (case, request changes, what the statusReason must name; None: the environment is VALID).
# IMAGE and TEMPLATE stand for an image and a launch template that exist.
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("everything exists", {}, None),
    ("instance profile by ARN", {"instanceRole": PROFILE_ARN}, None),
    ("instance profile missing", {"instanceRole": "noSuchProfile"}, "noSuchProfile"),
    ("a role ARN as instance profile", {"instanceRole": ROLE_ARN}, ROLE_ARN),
    ("service role missing", {"serviceRole": "NoSuchBatchRole"}, "role/NoSuchBatchRole"),
    ("service role by name and path", {"serviceRole": "/service-role/AWSBatchServiceRole"}, None),
    ("existing image", {"imageId": "IMAGE"}, None),
    ("image missing", {"imageId": "ami-0123456789abcdef0"}, "ami-0123456789abcdef0"),
    (
        "existing image override",
        {OVERRIDE: [{"imageType": "ECS_AL2", "imageIdOverride": "IMAGE"}]},
        None,
    ),
    (
        "image override missing",
        {OVERRIDE: [{"imageType": "ECS_AL2", "imageIdOverride": "ami-0badbadbad"}]},
        "ami-0badbadbad",
    ),
    ("existing launch template", {"launchTemplate": {"launchTemplateId": "TEMPLATE"}}, None),
    ("launch template by name", {"launchTemplate": {"launchTemplateName": "lt-real"}}, None),
    ("launch template missing", {"launchTemplate": {"launchTemplateName": "lt-gone"}}, "lt-gone"),
    (
        "launch template id missing",
        {"launchTemplate": {"launchTemplateId": "lt-0123456789abcdef0"}},
        "lt-0123456789abcdef0",
    ),
    (
        "launch template version missing",
        {"launchTemplate": {"launchTemplateName": "lt-real", "version": "7"}},
        "version 7",
    ),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    """`value` with the placeholders IMAGE and TEMPLATE replaced."""
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


def test_what_batch_cannot_build_is_created_invalid_with_the_reason(
    acct: Account, aws: str
) -> None:
    """moto refused a missing instance profile or service role and took a missing AMI or launch
    template as VALID; AWS creates the environment and reports it INVALID, saying why."""
    image = client(aws, "ssm").get_parameter(Name=ECS_IMAGE)["Parameter"]["Value"]
    template = acct.ec2.create_launch_template(
        LaunchTemplateName="lt-real", LaunchTemplateData={"InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    wrong = []
    for number, (case, changes, missing) in enumerate(CASES):
        request = _fill(changes, {"IMAGE": image, "TEMPLATE": template})
        extra = {"serviceRole": request.pop("serviceRole")} if "serviceRole" in request else {}
        env = acct.create_ce(f"ce-{number}", computeResources=acct.resources(**request), **extra)
        status, reason = env["status"], env.get("statusReason", "")
        if missing is None and status != "VALID":
            wrong.append(f"{case}: {status} ({reason})")
        if missing is not None and not (
            status == "INVALID" and reason.startswith("CLIENT_ERROR - ") and missing in reason
        ):
            wrong.append(f"{case}: {status} ({reason}), expected INVALID naming {missing}")
    assert wrong == []


# --- 6. A damaged recording -----------------------------------------------------------------


def _servers_of(directory: Path) -> list[int]:
    """Live sandbox server processes whose recording is in `directory` (ours only)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if SERVER in cmdline and str(directory).encode() in environ:
            found.append(int(proc.name))
    return found


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "sandbox"
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(directory))
    yield directory
    manager.stop()
    for pid in _servers_of(directory):  # whatever a failing version of the code left behind
        os.killpg(pid, signal.SIGTERM)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds server processes through /proc")
def test_a_damaged_recording_is_a_clear_error_leaves_no_server_and_reset_recovers(
    sandbox_dir: Path,
) -> None:
    assert _cli("sandbox", "start").returncode == 0
    assert _cli("sandbox", "stop").returncode == 0
    recording = sandbox_dir / manager.RECORDING
    lines = recording.read_text().splitlines(keepends=True)
    lines.insert(2, '{"method": "POST", "url": "http://127.0.0.1:1/x", "head\n')  # cut short
    recording.write_text("".join(lines))

    for _ in range(2):  # every command says the same, and none leaves a server behind
        got = _cli("get", "-f", EXAMPLES, "--sandbox")
        assert got.returncode == 1, got.stdout + got.stderr
        assert "Traceback" not in got.stderr and "HTTP Error" not in got.stderr, got.stderr
        assert got.stderr.startswith("error: the sandbox cannot be restored"), got.stderr
        assert f"{recording} is damaged (line 3:" in got.stderr, got.stderr
        assert "reconciler sandbox reset" in got.stderr
        assert _servers_of(sandbox_dir) == []
        assert manager.status()["running"] is False

    reset = _cli("sandbox", "reset")
    assert reset.returncode == 0, reset.stderr
    started = _cli("sandbox", "start")
    assert started.returncode == 0 and "sandbox new at" in started.stdout, started.stderr
    assert len(_servers_of(sandbox_dir)) == 1
