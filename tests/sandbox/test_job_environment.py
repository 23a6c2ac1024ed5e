"""What a job's local process sees on the sandbox: the sandbox's AWS, never the host's (#10).

On AWS a job's container gets credentials from its job role, its region, and the AWS_BATCH_*
variables; on the sandbox (RECONCILER_SANDBOX_RUN_COMMANDS=1) the same script must reach the
sandbox's S3 with `aws s3 cp` or boto3, whether the AWS CLI is installed or not (then the
sandbox's stand-in, `reconciler/sandbox/aws_shim.py`, is on its PATH). Driven with boto3 over
HTTP against the tests' moto server, extended as the sandbox is.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import aws_shim
from reconciler.sandbox.config import AWS_CLI_ENV, COMMANDS_ENV, RUN_ENV, STEP_ENV
from tests.conftest import client

BUCKET = "job-environment"
HOST_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAHOSTKEY",
    "AWS_SECRET_ACCESS_KEY": "host-secret-value",
    "AWS_SESSION_TOKEN": "host-session-token",
    "AWS_PROFILE": "host-profile",
}


@dataclass
class Jobs:
    endpoint: str
    batch: Any
    logs: Any
    s3: Any

    def run(self, command: list[str], **kwargs: Any) -> dict[str, Any]:
        """Submits the command (or an array of it) and returns the finished job."""
        kwargs.setdefault("jobDefinition", "env-jd")
        overrides = {"command": command, **kwargs.pop("containerOverrides", {})}
        job_id = self.batch.submit_job(
            jobName="env", jobQueue="env-q", containerOverrides=overrides, **kwargs
        )["jobId"]
        deadline = time.monotonic() + 30
        while (job := self.batch.describe_jobs(jobs=[job_id])["jobs"][0])["status"] not in (
            "SUCCEEDED",
            "FAILED",
        ):
            assert time.monotonic() < deadline, job["status"]
            time.sleep(0.05)
        return dict(job)

    def lines(self, job: dict[str, Any]) -> list[str]:
        events = self.logs.get_log_events(
            logGroupName="/aws/batch/job",
            logStreamName=job["container"]["logStreamName"],
            startFromHead=True,
        )["events"]
        return [e["message"] for e in events]

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.fixture
def jobs(aws: str, monkeypatch: pytest.MonkeyPatch) -> Jobs:
    monkeypatch.setenv(STEP_ENV, "0.02")
    monkeypatch.setenv(COMMANDS_ENV, "1")
    monkeypatch.delenv(AWS_CLI_ENV, raising=False)
    monkeypatch.setenv(RUN_ENV, "0.1")
    batch, ec2 = client(aws), client(aws, "ec2")
    batch.create_compute_environment(
        computeEnvironmentName="env-ce",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "maxvCpus": 8,
            "instanceTypes": ["optimal"],
            "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
            "instanceRole": "ecsInstanceRole",
        },
    )
    batch.create_job_queue(
        jobQueueName="env-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "env-ce"}],
    )
    batch.register_job_definition(
        jobDefinitionName="env-jd",
        type="container",
        parameters={"greeting": "hello"},
        containerProperties={
            "image": "busybox",
            "vcpus": 1,
            "memory": 128,
            "command": ["echo", "Ref::greeting", "Ref::name"],
            "environment": [
                {"name": "MODE", "value": "from-definition"},
                # A definition cannot send the job elsewhere, nor to other credentials.
                {"name": "AWS_ENDPOINT_URL", "value": "http://elsewhere.invalid"},
                {"name": "AWS_ENDPOINT_URL_S3", "value": "http://elsewhere.invalid"},
                {"name": "AWS_PROFILE", "value": "definition-profile"},
            ],
        },
    )
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket=BUCKET)
    made = Jobs(aws, batch, client(aws, "logs"), s3)
    # What the host (the server's environment) has: none of it may reach a job.
    for name, value in HOST_SECRETS.items():
        monkeypatch.setenv(name, value)
    return made


def test_a_job_sees_the_sandbox_its_region_and_the_batch_variables(jobs: Jobs) -> None:
    script = (
        "env | sort | grep -E '^(AWS_|MODE=|HOME=)'; command -v python; pwd; "
        '[ -d "$HOME" ] && [ "$HOME" = "$(pwd)" ] && echo home-is-scratch'
    )
    parent = jobs.run(["sh", "-c", script], arrayProperties={"size": 2})
    assert parent["status"] == "SUCCEEDED"
    for index in range(2):
        child_id = f"{parent['jobId']}:{index}"
        child = jobs.batch.describe_jobs(jobs=[child_id])["jobs"][0]
        lines = jobs.lines(child)
        env = dict(line.split("=", 1) for line in lines if "=" in line)
        assert {k: v for k, v in env.items() if not k.startswith("HOME")} == {
            "AWS_ENDPOINT_URL": jobs.endpoint,  # the sandbox, not the definition's URL
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_CONFIG_FILE": os.devnull,  # never the host's ~/.aws
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_BATCH_JOB_ID": child_id,
            "AWS_BATCH_JOB_ATTEMPT": "1",
            "AWS_BATCH_JOB_ARRAY_INDEX": str(index),
            "AWS_BATCH_JOB_ARRAY_SIZE": "2",
            "AWS_BATCH_JQ_NAME": "env-q",
            "AWS_BATCH_CE_NAME": "env-ce",
            "MODE": "from-definition",
        }
        text = "\n".join(lines)
        for secret in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *HOST_SECRETS.values()):
            assert secret not in text
        # The project's Python first on PATH; HOME is the job's scratch directory.
        assert f"{os.path.dirname(sys.executable)}/python" in lines
        assert "home-is-scratch" in lines


def test_parameters_are_substituted_as_aws_does(jobs: Jobs) -> None:
    """Ref::name takes SubmitJob's parameters over the definition's defaults."""
    job = jobs.run(["echo", "Ref::greeting", "Ref::name", "Ref::unset"], parameters={"name": "you"})
    assert jobs.lines(job) == ["hello you Ref::unset"]
    default = jobs.run(["echo", "Ref::greeting"], parameters={"greeting": "hi"})
    assert jobs.lines(default) == ["hi"]


def test_boto3_in_a_job_reaches_the_sandbox(jobs: Jobs) -> None:
    code = (
        "import boto3, os; boto3.client('s3').put_object(Bucket=os.environ['BUCKET'], "
        "Key='from-boto3.txt', Body=os.environ['AWS_BATCH_JOB_ID'].encode())"
    )
    job = jobs.run(
        ["python", "-c", code],
        containerOverrides={"environment": [{"name": "BUCKET", "value": BUCKET}]},
    )
    assert job["status"] == "SUCCEEDED", jobs.lines(job)
    assert jobs.body("from-boto3.txt") == job["jobId"].encode()


def test_the_aws_stand_in_copies_and_lists_and_refuses_the_rest(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AWS_CLI_ENV, "shim")  # whether the AWS CLI is installed here or not
    b = f"s3://{BUCKET}"
    script = f"""
        echo data > in.txt
        aws s3 cp in.txt {b}/dir/
        aws s3 cp in.txt {b}/named.txt --quiet
        printf streamed | aws s3 cp - {b}/stream.txt
        head -c 9000000 /dev/zero | aws s3 cp --quiet - {b}/big.bin
        aws s3 cp {b}/dir/in.txt copy.txt && cat copy.txt
        mkdir into && aws s3 cp {b}/named.txt into --only-show-errors && cat into/named.txt
        aws s3 cp {b}/stream.txt -; echo
        aws s3 ls {b}/
        aws s3 ls {b} --recursive | sed 's/.* //'
        aws s3 ls {b}/nothing-here; echo "empty=$?"
        aws s3 cp {b}/missing.txt .; echo "missing=$?"
        aws ec2 describe-instances; echo "ec2=$?"
        aws s3 sync . {b}/; echo "sync=$?"
        aws s3 cp {b}/named.txt {b}/copied/
        command -v aws
    """
    job = jobs.run(["sh", "-c", script])
    lines = jobs.lines(job)
    assert job["status"] == "SUCCEEDED", lines
    assert lines[:5] == [
        f"upload: in.txt to {b}/dir/in.txt",
        f"download: {b}/dir/in.txt to copy.txt",
        "data",
        "data",
        "streamed",
    ]
    assert lines[5].split() == ["PRE", "dir/"]
    assert [line.split()[-1] for line in lines[6:9]] == ["big.bin", "named.txt", "stream.txt"]
    assert lines[6].split()[-2] == "9000000"  # date, time, size, name
    assert lines[9:13] == ["big.bin", "dir/in.txt", "named.txt", "stream.txt"]
    assert "empty=1" in lines and "missing=1" in lines
    refused = [line for line in lines if "not supported on the reconciler sandbox" in line]
    assert len(refused) == 2 and "`aws ec2 describe-instances`" in refused[0]
    assert "ec2=2" in lines and "sync=2" in lines
    assert aws_shim.__name__ in Path(lines[-1]).read_text()  # the stand-in, not a real CLI
    assert jobs.body("dir/in.txt") == jobs.body("named.txt") == b"data\n"
    assert jobs.body("stream.txt") == b"streamed"
    assert f"copy: {b}/named.txt to {b}/copied/named.txt" in lines
    assert jobs.body("copied/named.txt") == b"data\n"
    assert jobs.body("big.bin") == bytes(9000000)  # streamed in parts (multipart upload)


def test_the_stand_in_parses_as_the_aws_cli(capsys: pytest.CaptureFixture[str]) -> None:
    command = aws_shim.parse(["cp", "a", "s3://b/k", "--quiet", "--region=eu-west-1"])
    assert (command.words, command.flags) == (["cp", "a", "s3://b/k"], {"--quiet"})
    assert command.options == {"--region": "eu-west-1"}
    assert aws_shim.main(["s3", "cp", "--acl", "public-read", "a", "s3://b/k"]) == 2
    assert "the option --acl is not supported" in capsys.readouterr().err
    assert aws_shim.main(["s3", "cp", "a", "b"]) == 2
    assert "between two local paths" in capsys.readouterr().err
