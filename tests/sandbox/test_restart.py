"""The seed's leader/follower workflow runs on the sandbox, and a restart keeps what it did (#10).

Plain boto3 against a real sandbox server (`manager.ensure`, its own state directory), as the
seed's users drive AWS: a bucket, a compute environment, a queue, the two job definitions
whose commands are the seed's scripts (stress-ng replaced by a short busy loop where it is
missing), the leader, then a 3-child follower array with `dependsOn` N_TO_N on the non-array
leader. Then `sandbox stop` and a restored server: every finished job, log and object is as it
was, and nothing ran again. An attempt running when the server went away fails as on a lost
host, and its retry strategy decides.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from reconciler.sandbox import manager
from reconciler.sandbox.config import AWS_CLI_ENV, COMMANDS_ENV, RUN_ENV, STEP_ENV
from reconciler.sandbox.job_run import HOST_LOST

DONE = ("SUCCEEDED", "FAILED")
BUCKET = "stress-results-sandbox"

# stress-ng where it is installed, else what the seed needs of it: the list of CPU methods (its
# first six words are prose, as stress-ng prints it) and a short busy loop.
STRESS = """
stress() {
  if command -v stress-ng >/dev/null 2>&1; then stress-ng "$@"; return; fi
  case "$*" in
    *"cpu-method which"*) echo "cpu-method must be one of: all ackermann bitops collatz";;
    *) echo "busy loop instead of stress-ng $*"; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done
       echo "ran at $(date +%s%N)";;
  esac
}
"""
# The seed's leader (its mktests.sh and entrypoint), writing to the scratch directory, not /.
LEADER = (
    STRESS
    + """
FILE=stress-tests.txt
COUNT=0
for II in `stress --cpu-method which 2>&1`
do
    if [ $COUNT -gt  5 ]; then
        echo "--cpu 1 -t 1s --times --cpu-method $II" >> $FILE
    fi
    COUNT=`expr $COUNT + 1`
done
cat $FILE
aws s3 ls ${STRESS_BUCKET}/
aws s3 cp $FILE ${STRESS_BUCKET}/ --quiet
"""
)
# The seed's follower entrypoint, unchanged but for the scratch directory and the fallback.
FOLLOWER = (
    STRESS
    + """
aws s3 ls ${STRESS_BUCKET}/
aws s3 cp ${STRESS_BUCKET}/stress-tests.txt . --quiet
STRESS_ARGS=`sed -n $((AWS_BATCH_JOB_ARRAY_INDEX + 1))p stress-tests.txt`
echo "Passing the following arguments to stress-ng: $STRESS_ARGS"
stress ${STRESS_ARGS} 2>&1 | aws s3 cp --quiet - \
${STRESS_BUCKET}/${AWS_BATCH_JOB_ID}_${AWS_BATCH_JOB_ATTEMPT}_${AWS_BATCH_JOB_ARRAY_INDEX}.txt
"""
)


@dataclass
class Sandbox:
    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=manager.REGION,
            aws_access_key_id="user",
            aws_secret_access_key="user",
        )

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        batch, deadline = self.client("batch"), time.monotonic() + timeout
        while True:
            [job] = batch.describe_jobs(jobs=[job_id])["jobs"]
            if job["status"] in DONE:
                return dict(job)
            assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
            time.sleep(0.1)

    def jobs(self, *job_ids: str) -> dict[str, dict[str, Any]]:
        """What DescribeJobs shows of each job, and its log events, by job ID."""
        batch, logs = self.client("batch"), self.client("logs")
        seen = {}
        for job in batch.describe_jobs(jobs=list(job_ids))["jobs"]:
            job = dict(job)
            job.pop("ResponseMetadata", None)
            stream = job.get("container", {}).get("logStreamName")
            if stream and "size" not in job.get("arrayProperties", {}):  # not an array parent
                try:
                    events = logs.get_log_events(
                        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
                    )["events"]
                except logs.exceptions.ResourceNotFoundException:  # it printed nothing
                    events = []
                job["logEvents"] = [(e["timestamp"], e["message"]) for e in events]
            seen[job["jobId"]] = job
        return seen

    def objects(self) -> dict[str, tuple[str, bytes]]:
        s3 = self.client("s3")
        listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {
            o["Key"]: (o["ETag"], s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
            for o in listed
        }


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv(COMMANDS_ENV, "1")
    monkeypatch.setenv(STEP_ENV, "0.05")
    monkeypatch.setenv(RUN_ENV, "0.2")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    started = manager.ensure()
    assert started.started == "new"
    yield Sandbox(started.endpoint)
    manager.stop()


def prepare(sb: Sandbox) -> None:
    """The seed's account: its bucket, an environment, the queue and the two definitions."""
    batch, ec2 = sb.client("batch"), sb.client("ec2")
    sb.client("s3").create_bucket(Bucket=BUCKET)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    batch.create_compute_environment(
        computeEnvironmentName="stress-ce",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "maxvCpus": 16,
            "instanceTypes": ["optimal"],
            "subnets": subnets,
            "instanceRole": "ecsInstanceRole",
        },
    )
    batch.create_job_queue(
        jobQueueName="stress-ng-queue",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "stress-ce"}],
    )
    for name, script in (("leader", LEADER), ("follower", FOLLOWER)):
        batch.register_job_definition(
            jobDefinitionName=f"stress-ng-{name}-job-definition",
            type="container",
            containerProperties={
                "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/stress-ng-{name}",
                "vcpus": 1,
                "memory": 1024,
                "command": ["sh", "-c", script],
                "jobRoleArn": "arn:aws:iam::123456789012:role/BatchJobRole",
            },
            retryStrategy={"attempts": 2},
        )


def submit_workflow(sb: Sandbox) -> tuple[str, str]:
    """The seed's two submissions: the leader, then the followers, N_TO_N on the leader."""
    batch = sb.client("batch")
    overrides = {"environment": [{"name": "STRESS_BUCKET", "value": f"s3://{BUCKET}"}]}
    leader = batch.submit_job(
        jobName="stress-ng-leader",
        jobQueue="stress-ng-queue",
        jobDefinition="stress-ng-leader-job-definition",
        containerOverrides=overrides,
    )["jobId"]
    follower = batch.submit_job(
        jobName="stress-ng-follower",
        jobQueue="stress-ng-queue",
        jobDefinition="stress-ng-follower-job-definition",
        arrayProperties={"size": 3},
        dependsOn=[{"jobId": leader, "type": "N_TO_N"}],
        containerOverrides=overrides,
    )["jobId"]
    return leader, follower


@pytest.mark.parametrize("cli", ["shim", "aws"])
def test_the_seed_workflow_runs_and_a_restart_keeps_what_it_did(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, cli: str
) -> None:
    if cli == "shim":
        monkeypatch.setenv(AWS_CLI_ENV, "shim")  # whether the AWS CLI is installed or not
    elif shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed here (the shim case covers its absence)")
    if cli == "shim":  # the setting is the server's: it is restarted with it
        again = manager.ensure()
        assert again.started == "restarted" and AWS_CLI_ENV in str(again.notice)
        sandbox.endpoint = again.endpoint
    prepare(sandbox)
    leader, follower = submit_workflow(sandbox)
    finished = sandbox.wait(follower)
    assert finished["status"] == "SUCCEEDED", sandbox.jobs(*[f"{follower}:{i}" for i in range(3)])
    children = [f"{follower}:{i}" for i in range(3)]
    before = sandbox.jobs(leader, follower, *children)
    objects = sandbox.objects()

    # The leader's list, read back with boto3, and one output per follower child, named as the
    # seed names them, holding the line of stress-tests.txt its index picked.
    lines = objects["stress-tests.txt"][1].decode().splitlines()
    if shutil.which("stress-ng") is None:
        methods = ("ackermann", "bitops", "collatz")
        assert lines == [f"--cpu 1 -t 1s --times --cpu-method {m}" for m in methods]
    assert len(lines) >= 3
    outputs = {f"{child}_1_{i}.txt" for i, child in enumerate(children)}
    assert set(objects) == {"stress-tests.txt", *outputs}, sorted(objects)
    for i, child in enumerate(children):
        job = before[child]
        assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)
        assert job["startedAt"] >= before[leader]["stoppedAt"]  # N_TO_N on a non-array leader
        messages = [message for _, message in job["logEvents"]]
        assert f"Passing the following arguments to stress-ng: {lines[i]}" in messages
        assert lines[i].split("--cpu-method ")[-1] in objects[f"{child}_1_{i}.txt"][1].decode()
    assert before[leader]["logEvents"], "the leader's output is in its log stream"

    # Large objects are uploaded in parts (multipart), by a user and by a job's `aws`.
    big = os.urandom(9 * 1024 * 1024)
    sandbox.client("s3").upload_fileobj(io.BytesIO(big), BUCKET, "big/by-user.bin")
    streamed = sandbox.client("batch").submit_job(
        jobName="big",
        jobQueue="stress-ng-queue",
        jobDefinition="stress-ng-leader-job-definition",
        containerOverrides={
            "command": [
                "sh",
                "-c",
                f"head -c 9000000 /dev/urandom | aws s3 cp - s3://{BUCKET}/big/by-job.bin",
            ]
        },
    )["jobId"]
    assert sandbox.wait(streamed)["status"] == "SUCCEEDED"
    before.update(sandbox.jobs(streamed))
    objects = sandbox.objects()
    assert objects["big/by-user.bin"][1] == big and len(objects["big/by-job.bin"][1]) == 9000000
    assert objects["big/by-user.bin"][0].endswith('-2"')  # an ETag of two parts

    assert manager.stop()
    restored = manager.ensure()
    assert restored.started == "restored"
    sandbox.endpoint = restored.endpoint
    time.sleep(1.0)  # time enough for a job run again to show (states take 0.05 s here)
    after = sandbox.jobs(leader, follower, *children, streamed)
    assert after == before  # status, exit codes, attempts, timestamps, reasons, log events
    assert sandbox.objects() == objects  # nothing rewritten: no output of a second run


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_an_attempt_running_at_a_restart_fails_as_on_a_lost_host(
    sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    prepare(sandbox)
    batch = sandbox.client("batch")
    pids = tmp_path / "pids"
    pids.mkdir()
    sleeper = ["sh", "-c", f'echo $$ > {pids}/"$AWS_BATCH_JOB_ATTEMPT-$1"; sleep 30', "sh"]
    retried = batch.submit_job(
        jobName="retried",
        jobQueue="stress-ng-queue",
        jobDefinition="stress-ng-leader-job-definition",
        containerOverrides={"command": [*sleeper, "retried"]},
        retryStrategy={
            "attempts": 2,
            "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )["jobId"]
    single = batch.submit_job(
        jobName="single",
        jobQueue="stress-ng-queue",
        jobDefinition="stress-ng-leader-job-definition",
        containerOverrides={"command": [*sleeper, "single"]},
        retryStrategy={"attempts": 1},
    )["jobId"]
    deadline = time.monotonic() + 30
    while len(list(pids.iterdir())) < 2:
        assert time.monotonic() < deadline, "the attempts did not start"
        time.sleep(0.1)
    started = {p.name: int(p.read_text()) for p in pids.iterdir()}
    assert manager.status()["jobAttemptsRunning"] == 2

    if how == "stop":
        assert manager.stop()
        for pid in started.values():  # the server took its jobs' processes with it
            assert b"sleep" not in _cmdline(pid)
    else:  # the server dies at once, and its jobs' processes live on
        server = manager.status()["pid"]
        assert isinstance(server, int)
        os.kill(server, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while manager.status()["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert all(b"sleep" in _cmdline(pid) for pid in started.values())
    restored = manager.ensure()
    assert restored.started == "restored"
    sandbox.endpoint = restored.endpoint
    for pid in started.values():  # whatever is left of a lost host's attempts is gone
        assert b"sleep" not in _cmdline(pid)

    gone = sandbox.wait(single)
    assert (gone["status"], gone["statusReason"]) == ("FAILED", HOST_LOST)
    [lost] = gone["attempts"]
    assert lost["statusReason"] == HOST_LOST and "exitCode" not in lost["container"]
    deadline = time.monotonic() + 30
    while "2-retried" not in os.listdir(pids):  # the retry strategy retried it
        assert time.monotonic() < deadline, sandbox.jobs(retried)
        time.sleep(0.1)
    job = sandbox.jobs(retried)[retried]
    assert job["status"] == "RUNNING" and job["attempts"][0]["statusReason"] == HOST_LOST
    batch = sandbox.client("batch")
    batch.terminate_job(jobId=retried, reason="done with it")
    assert sandbox.wait(retried)["statusReason"] == "done with it"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
