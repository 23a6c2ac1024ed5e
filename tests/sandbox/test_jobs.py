"""Jobs on the sandbox behave like AWS Batch jobs (reconciler.sandbox.job_patches, job_scheduler
and job_runner), observed over HTTP through the Batch and CloudWatch Logs APIs only."""

from __future__ import annotations

import datetime
import itertools
import time
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.sandbox.config import COMMANDS_ENV, RUN_ENV, STEP_ENV
from tests.conftest import client

ORDER = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
DONE = ("SUCCEEDED", "FAILED")
FAIL = {"reconciler.io/sandbox-outcome": "fail"}
TIMED_OUT = "Job attempt duration exceeded timeout"  # AWS's wording


@dataclass
class Sandbox:
    batch: Any
    logs: Any

    def submit(self, name: str = "job", **kwargs: Any) -> str:
        kwargs.setdefault("jobQueue", "test-q")
        kwargs.setdefault("jobDefinition", "test-jd")
        return str(self.batch.submit_job(jobName=name, **kwargs)["jobId"])

    def get(self, job_id: str) -> dict[str, Any]:
        jobs = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        assert len(jobs) == 1, job_id
        return dict(jobs[0])

    def watch(self, job_id: str, timeout: float = 10.0) -> tuple[list[str], dict[str, Any]]:
        """Polls every 20 ms until the job finished: (distinct statuses in order, last describe)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if not seen or seen[-1] != job["status"]:
                seen.append(job["status"])
            if job["status"] in DONE:
                return seen, job
            assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
            time.sleep(0.02)

    def wait(self, *job_ids: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [self.watch(job_id, timeout)[1] for job_id in job_ids]

    def wait_for(self, job_id: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.get(job_id))["status"] != status:
            assert job["status"] not in DONE, job
            assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
            time.sleep(0.02)
        return job

    def log_lines(self, job: dict[str, Any]) -> list[str]:
        events = self.logs.get_log_events(
            logGroupName="/aws/batch/job",
            logStreamName=job["container"]["logStreamName"],
            startFromHead=True,
        )["events"]
        return [e["message"] for e in events]


@pytest.fixture
def sb(aws: str, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv(STEP_ENV, "0.05")
    monkeypatch.setenv(RUN_ENV, "0.2")
    monkeypatch.delenv(COMMANDS_ENV, raising=False)
    batch, ec2 = client(aws), client(aws, "ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])
    batch.create_compute_environment(
        computeEnvironmentName="test-ce",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 16,
            "instanceTypes": ["optimal"],
            "subnets": subnets,
            "securityGroupIds": [g["GroupId"] for g in groups["SecurityGroups"]],
            "instanceRole": "ecsInstanceRole",
        },
    )
    batch.create_job_queue(
        jobQueueName="test-q",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "test-ce"}],
    )
    batch.register_job_definition(
        jobDefinitionName="test-jd",
        type="container",
        containerProperties={
            "image": "busybox",
            "vcpus": 1,
            "memory": 128,
            "command": ["echo", "hi"],
            "environment": [{"name": "FROM_DEFINITION", "value": "jd"}],
        },
    )
    return Sandbox(batch, client(aws, "logs"))


def test_a_job_goes_through_the_aws_states_in_order(sb, monkeypatch):
    monkeypatch.setenv(STEP_ENV, "0.2")  # slow enough for a 20 ms poll on a loaded machine
    seen, job = sb.watch(sb.submit())
    assert seen == ORDER[:6]
    assert job["container"]["exitCode"] == 0
    assert job["statusReason"] == "Essential container in task exited"
    [attempt] = job["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["container"]["logStreamName"] == job["container"]["logStreamName"]
    assert job["startedAt"] == attempt["startedAt"] <= attempt["stoppedAt"] == job["stoppedAt"]
    assert attempt["stoppedAt"] - attempt["startedAt"] >= 150, "RUNNING for the job seconds"


def test_a_jobs_stop_is_its_last_attempts_stop_however_it_ended(sb, monkeypatch):
    """Batch shows one instant twice; a clock that moves on every read shows a second read."""
    from reconciler.sandbox import job_scheduler

    ticks = itertools.count()
    start = datetime.datetime.now()
    monkeypatch.setattr(
        job_scheduler, "now", lambda: start + datetime.timedelta(milliseconds=next(ticks))
    )
    ended = sb.submit("ended")
    failed = sb.submit("failed", tags=FAIL)
    monkeypatch.setenv(RUN_ENV, "10")
    timed_out = sb.submit("timed-out", timeout={"attemptDurationSeconds": 1})
    terminated = sb.submit("terminated")
    sb.wait_for(terminated, "RUNNING")
    sb.batch.terminate_job(jobId=terminated, reason="stop it")
    jobs = sb.wait(ended, failed, timed_out, terminated)
    assert [j["statusReason"] for j in jobs[2:]] == [TIMED_OUT, "stop it"]
    for job in jobs:
        assert job["stoppedAt"] == job["attempts"][-1]["stoppedAt"], job["jobName"]


def test_a_dependant_waits_in_pending_until_its_dependency_succeeded(sb):
    first = sb.submit("first")
    then = sb.submit("then", dependsOn=[{"jobId": first}])
    waited = set()
    while True:
        waiting = sb.get(then)["status"]  # read first: the dependency is read after it
        if (dep := sb.get(first)["status"]) in DONE:
            break
        if dep in ("RUNNABLE", "STARTING", "RUNNING"):
            assert waiting in ("SUBMITTED", "PENDING")
            waited.add(waiting)
        time.sleep(0.02)
    assert "PENDING" in waited
    job = sb.watch(then)[1]
    assert job["status"] == "SUCCEEDED"
    assert job["startedAt"] >= sb.get(first)["stoppedAt"]


def test_a_failed_dependency_fails_its_dependants_with_the_aws_reason(sb):
    first = sb.submit("first", tags=FAIL)
    second = sb.submit("second", dependsOn=[{"jobId": first}])
    third = sb.submit("third", dependsOn=[{"jobId": second}])
    array = sb.submit("array", dependsOn=[{"jobId": first}], arrayProperties={"size": 2})
    a, b, c, parent = sb.wait(first, second, third, array)
    assert (a["status"], a["container"]["exitCode"]) == ("FAILED", 1)
    assert a["statusReason"] == "Essential container in task exited"
    children = [sb.get(f"{array}:{i}") for i in range(2)]
    for job in (b, c, parent, *children):
        assert job["status"] == "FAILED"
        assert job["statusReason"] == "Dependent Job failed"
        assert job["attempts"] == [] and "startedAt" not in job


def test_n_to_n_pairs_the_children_of_two_arrays(sb):
    # A's children run one after another, so that B's can be seen waiting for one child each,
    # not for the whole of A.
    a = sb.submit("a", arrayProperties={"size": 4}, dependsOn=[{"type": "SEQUENTIAL"}])
    b = sb.submit("b", arrayProperties={"size": 4}, dependsOn=[{"jobId": a, "type": "N_TO_N"}])
    assert [j["status"] for j in sb.wait(a, b)] == ["SUCCEEDED", "SUCCEEDED"]
    for i in range(4):
        ai, bi = sb.get(f"{a}:{i}"), sb.get(f"{b}:{i}")
        assert bi["startedAt"] >= ai["stoppedAt"], i
    assert sb.get(f"{b}:0")["startedAt"] < sb.get(f"{a}:3")["startedAt"]


def test_sequential_runs_an_arrays_children_in_order(sb):
    parent = sb.submit("seq", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    assert sb.watch(parent)[1]["status"] == "SUCCEEDED"
    children = [sb.get(f"{parent}:{i}") for i in range(3)]
    for before, after in itertools.pairwise(children):
        assert after["startedAt"] >= before["stoppedAt"]


def test_an_array_parent_summarises_its_children(sb):
    parent = sb.submit("arr", arrayProperties={"size": 3})
    seen, summaries = [], []
    while (job := sb.get(parent))["status"] not in DONE:
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        summaries.append(job["arrayProperties"]["statusSummary"])
        time.sleep(0.02)
    assert seen[-2:] == ["PENDING", "RUNNING"] and set(seen) <= {"SUBMITTED", *seen[-2:]}
    assert job["status"] == "SUCCEEDED" and job["arrayProperties"]["size"] == 3
    assert job["arrayProperties"]["statusSummary"] == dict.fromkeys(ORDER, 0) | {"SUCCEEDED": 3}
    assert all(set(s) == set(ORDER) and sum(s.values()) == 3 for s in summaries)
    assert any(s["RUNNING"] for s in summaries)

    # AWS: without jobStatus, ListJobs lists RUNNING jobs only, an array's children too.
    listed = sb.batch.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == [f"{parent}:{i}" for i in range(3)]
    assert sb.batch.list_jobs(arrayJobId=parent)["jobSummaryList"] == []
    child = sb.get(f"{parent}:1")
    assert child["status"] == "SUCCEEDED" and child["arrayProperties"] == {"index": 1}
    queue = sb.batch.list_jobs(jobQueue="test-q", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [j["jobId"] for j in queue] == [parent], "a queue lists the parent, not its children"


def test_retries_record_every_attempt(sb, monkeypatch):
    monkeypatch.setenv(STEP_ENV, "0.2")  # slow enough for a 20 ms poll on a loaded machine
    job_id = sb.submit(
        "retry",
        tags=FAIL | {"reconciler.io/sandbox-exit-code": "7"},
        retryStrategy={"attempts": 3},
    )
    seen, job = sb.watch(job_id)
    assert seen == ORDER[:5] + ["RUNNABLE", "STARTING", "RUNNING"] * 2 + ["FAILED"]
    assert len(job["attempts"]) == 3
    for attempt in job["attempts"]:
        assert attempt["container"]["exitCode"] == 7
        assert attempt["statusReason"] == "Essential container in task exited"
        assert attempt["startedAt"] <= attempt["stoppedAt"]
    assert len({a["container"]["logStreamName"] for a in job["attempts"]}) == 3
    assert job["container"]["exitCode"] == 7

    # The job definition's retryStrategy, and evaluateOnExit.
    sb.batch.register_job_definition(
        jobDefinitionName="twice",
        type="container",
        retryStrategy={"attempts": 2},
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )
    twice = sb.submit("twice", jobDefinition="twice", tags=FAIL)
    exits = sb.submit(
        "exits",
        tags=FAIL,
        retryStrategy={"attempts": 5, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]},
    )
    a, b = sb.wait(twice, exits)
    assert (a["status"], len(a["attempts"])) == ("FAILED", 2)
    assert (b["status"], len(b["attempts"])) == ("FAILED", 1)


def test_cancel_and_terminate(sb, monkeypatch):
    monkeypatch.setenv(RUN_ENV, "10")
    long = sb.submit("long")
    waiting = sb.submit("waiting", dependsOn=[{"jobId": long}])
    array = sb.submit("array", arrayProperties={"size": 2})
    sb.wait_for(long, "RUNNING")
    sb.wait_for(f"{array}:0", "RUNNING")

    sb.batch.cancel_job(jobId=waiting, reason="not needed")
    sb.batch.cancel_job(jobId=long, reason="too late to cancel")
    time.sleep(0.2)
    assert sb.get(long)["status"] == "RUNNING", "cancel leaves a started job alone"
    job = sb.watch(waiting)[1]
    assert (job["status"], job["statusReason"], job["attempts"]) == ("FAILED", "not needed", [])

    sb.batch.terminate_job(jobId=long, reason="stop it")
    job = sb.watch(long, timeout=2)[1]
    assert (job["status"], job["statusReason"]) == ("FAILED", "stop it")
    [attempt] = job["attempts"]
    assert attempt["container"]["exitCode"] == 137 and attempt["statusReason"] == "stop it"

    sb.batch.terminate_job(jobId=array, reason="all of it")
    job = sb.watch(array, timeout=2)[1]
    assert (job["status"], job["statusReason"]) == ("FAILED", "all of it")
    assert job["arrayProperties"]["statusSummary"]["FAILED"] == 2
    for i in range(2):
        assert sb.get(f"{array}:{i}")["statusReason"] == "all of it"

    # Cancelling an array parent cancels the children that have not started.
    monkeypatch.setenv(RUN_ENV, "0.2")
    parent = sb.submit("arr", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    sb.wait_for(f"{parent}:0", "RUNNING")
    sb.batch.cancel_job(jobId=parent, reason="enough")
    job = sb.watch(parent)[1]
    assert (job["status"], job["statusReason"]) == ("FAILED", "enough")
    first, *rest = (sb.get(f"{parent}:{i}") for i in range(3))
    assert first["status"] == "SUCCEEDED", "the running child ran to its end"
    assert [(c["status"], c["statusReason"]) for c in rest] == [("FAILED", "enough")] * 2


def test_a_timeout_fails_the_attempt_kills_the_process_and_is_not_retried(sb, monkeypatch):
    monkeypatch.setenv(RUN_ENV, "10")
    limit = {"attemptDurationSeconds": 1}
    simulated = sb.submit("simulated", timeout=limit, retryStrategy={"attempts": 3})
    monkeypatch.setenv(COMMANDS_ENV, "1")
    local = sb.submit(
        "local",
        timeout=limit,
        retryStrategy={"attempts": 3},
        containerOverrides={"command": ["sh", "-c", "echo started; sleep 1.5; echo finished"]},
    )
    for job in sb.wait(simulated, local):
        assert (job["status"], job["statusReason"]) == ("FAILED", TIMED_OUT)
        [attempt] = job["attempts"]
        assert attempt["statusReason"] == TIMED_OUT
        assert attempt["container"]["exitCode"] == 137
        assert 1000 <= attempt["stoppedAt"] - attempt["startedAt"] < 1500
    time.sleep(0.9)
    assert sb.log_lines(job) == ["started"], "the process was killed at the timeout"


def test_local_execution_with_environment_and_logs(sb, monkeypatch):
    monkeypatch.setenv(COMMANDS_ENV, "1")
    parent = sb.submit(
        "local",
        arrayProperties={"size": 2},
        containerOverrides={"command": ["sh", "-c", "echo idx=$AWS_BATCH_JOB_ARRAY_INDEX; exit 3"]},
    )
    job = sb.watch(parent)[1]
    assert job["status"] == "FAILED"
    for i in range(2):
        child = sb.get(f"{parent}:{i}")
        assert (child["status"], child["container"]["exitCode"]) == ("FAILED", 3)
        assert child["statusReason"] == "Essential container in task exited"
        assert sb.log_lines(child) == [f"idx={i}"]

    script = (
        'echo "id=$AWS_BATCH_JOB_ID attempt=$AWS_BATCH_JOB_ATTEMPT queue=$AWS_BATCH_JQ_NAME '
        'ce=$AWS_BATCH_CE_NAME def=$FROM_DEFINITION over=$FROM_OVERRIDE arg=$1"; '
        # The host's credentials ("testing", from the aws fixture) never reach the job: the
        # sandbox's dummy ones do (tests/sandbox/test_job_environment.py has the rest).
        'echo oops >&2; pwd; touch here; ls; [ "$AWS_SECRET_ACCESS_KEY" = sandbox ]'
    )
    job_id = sb.submit(
        "env",
        parameters={"word": "hello"},
        containerOverrides={
            "command": ["sh", "-c", script, "sh", "Ref::word"],
            "environment": [{"name": "FROM_OVERRIDE", "value": "yes"}],
        },
    )
    job = sb.watch(job_id)[1]
    assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)
    first, err, cwd, listing = sb.log_lines(job)
    assert first == f"id={job_id} attempt=1 queue=test-q ce=test-ce def=jd over=yes arg=hello"
    assert err == "oops"
    assert "reconciler-sandbox-job-" in cwd and listing == "here"


def test_local_execution_outcomes(sb, monkeypatch):
    monkeypatch.setenv(COMMANDS_ENV, "1")
    mixed = sb.submit(
        "mixed",
        arrayProperties={"size": 2},
        containerOverrides={"command": ["sh", "-c", "exit $AWS_BATCH_JOB_ARRAY_INDEX"]},
    )
    missing = sb.submit("missing", containerOverrides={"command": ["no-such-program-here"]})
    default = sb.submit("default")  # the definition's command: echo hi
    parent, gone, hi = sb.wait(mixed, missing, default)
    assert parent["status"] == "FAILED"
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert (gone["status"], gone["container"]["exitCode"]) == ("FAILED", 127)
    assert sb.log_lines(hi) == ["hi"]


def test_a_job_stays_runnable_while_no_compute_environment_is_enabled(sb):
    sb.batch.update_compute_environment(computeEnvironment="test-ce", state="DISABLED")
    job_id = sb.submit("parked")
    sb.wait_for(job_id, "RUNNABLE")
    time.sleep(0.3)
    assert sb.get(job_id)["status"] == "RUNNABLE"
    sb.batch.update_compute_environment(computeEnvironment="test-ce", state="ENABLED")
    assert sb.watch(job_id)[1]["status"] == "SUCCEEDED"
