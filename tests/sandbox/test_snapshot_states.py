"""A state machine execution (a scheduled Pipeline's firing: a chain of `batch:submitJob`
states) across a stop, a crash and a replay: its jobs are submitted once.

- A stop lets a running execution end before it writes the snapshot (`server`): none can be
  written while one runs, and the next start would replay the whole recording.
- The execution's own requests are not recorded (`states_patches`, `durability_patches`): the
  replayed StartExecution runs it again, which makes them again. Recorded too, a replay
  submitted the jobs an execution had submitted twice.

Real sandbox servers in their own state directories, driven with plain boto3, as in
test_snapshot (whose fixture and helpers these are).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from reconciler.sandbox import manager
from reconciler.sandbox.clock_api import PATH as CLOCK_PATH
from reconciler.sandbox.states_patches import RUNNER_HEADER
from tests.sandbox.test_snapshot import client, header, kill, log_since, log_size, queue, recorded
from tests.sandbox.test_snapshot import state_dir as state_dir_fixture

state_dir = state_dir_fixture  # test_snapshot's fixture, by the name its tests use

STATES = 60  # long enough (a request each) for the stop to come while it runs


def chain(count: int, queue: str, definition: str, prefix: str) -> str:
    """A state machine of `count` submitJob states one after the other (jobs PREFIX0, ...), as
    the definition CreateStateMachine takes (bench_restart times a restart during one)."""
    states = {
        f"s{i}": {
            "Type": "Task",
            "Resource": "arn:aws:states:::batch:submitJob",
            "Parameters": {
                "JobName": f"{prefix}{i}",
                "JobQueue": queue,
                "JobDefinition": definition,
            },
            **({"Next": f"s{i + 1}"} if i < count - 1 else {"End": True}),
        }
        for i in range(count)
    }
    return json.dumps({"StartAt": "s0", "States": states})


def _start(endpoint: str) -> str:
    """A state machine of STATES submitJob states in a chain, started; its execution's ARN
    once its first job is submitted."""
    queue(endpoint, "sfn")
    sfn = client(endpoint, "stepfunctions")
    machine = sfn.create_state_machine(
        name="dag",
        definition=chain(STATES, "queue-sfn", "jd-sfn", "j"),
        roleArn="arn:aws:iam::123456789012:role/dag-states",
    )["stateMachineArn"]
    execution = str(sfn.start_execution(stateMachineArn=machine)["executionArn"])
    deadline = time.monotonic() + 30
    while not _jobs(endpoint):
        assert time.monotonic() < deadline, "the execution submitted nothing"
        time.sleep(0.01)
    return execution


def _jobs(endpoint: str) -> dict[str, list[str]]:
    """Job name -> the IDs of the jobs of that name."""
    batch = client(endpoint, "batch")
    found: dict[str, list[str]] = {}
    pages = batch.get_paginator("list_jobs").paginate(
        jobQueue="queue-sfn", filters=[{"name": "JOB_NAME", "values": ["j*"]}]
    )
    for page in pages:
        for job in page["jobSummaryList"]:
            found.setdefault(job["jobName"], []).append(job["jobId"])
    return found


def _ended(endpoint: str, execution: str) -> dict[str, Any]:
    sfn = client(endpoint, "stepfunctions")
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return dict(described)


def _each_job_once(endpoint: str) -> dict[str, str]:
    jobs = _jobs(endpoint)
    assert {name: len(ids) for name, ids in jobs.items()} == {f"j{i}": 1 for i in range(STATES)}
    return {name: ids[0] for name, ids in jobs.items()}


def test_a_stop_lets_a_running_execution_end_then_writes_the_snapshot(state_dir: Path) -> None:
    first = manager.ensure()
    execution = _start(first.endpoint)
    assert manager.stop()
    said = log_since(state_dir, 0)
    assert "sandbox stop: waiting (a state machine execution is running)" in said, said
    assert "snapshot: not written" not in said, said
    assert header(state_dir)["lines"] == recorded(state_dir)

    start = log_size(state_dir)
    restored = manager.ensure()
    assert restored.started == "restored"
    assert "snapshot: loaded" in log_since(state_dir, start)
    assert _ended(restored.endpoint, execution)["status"] == "SUCCEEDED"
    _each_job_once(restored.endpoint)


def test_a_replay_runs_an_interrupted_execution_again_and_submits_each_job_once(
    state_dir: Path,
) -> None:
    first = manager.ensure()
    execution = _start(first.endpoint)
    before = {name: ids[0] for name, ids in _jobs(first.endpoint).items()}
    # A client's request that names the runner's header without its token is recorded.
    s3 = client(first.endpoint, "s3")
    s3.meta.events.register(
        "request-created", lambda request, **_: request.headers.__setitem__(RUNNER_HEADER, "x")
    )
    s3.create_bucket(Bucket="forged")
    kill(state_dir)  # no snapshot: the next start replays the whole recording
    assert len(before) < STATES, "the execution ended before the crash"
    lines = (state_dir / manager.RECORDING).read_text().splitlines()
    targets = [json.loads(line)["headers"].get("X-Amz-Target", "") for line in lines]
    assert "AWSStepFunctions.StartExecution" in targets
    assert not [line for line in lines if '"SubmitJob"' in line or "/v1/submitjob" in line]
    assert any("/forged" in json.loads(line)["url"] for line in lines)

    restored = manager.ensure()
    assert restored.started == "restored"
    assert "snapshot: loaded" not in log_since(state_dir, 0)
    assert _ended(restored.endpoint, execution)["status"] == "SUCCEEDED"
    ids = _each_job_once(restored.endpoint)
    # What it had submitted before the crash keeps its IDs: it is the same job.
    assert {name: ids[name] for name in before} == before
    assert "forged" in [
        b["Name"] for b in client(restored.endpoint, "s3").list_buckets()["Buckets"]
    ]


def test_a_replay_goes_on_after_the_replayed_execution_ends(state_dir: Path) -> None:
    """A request recorded after an execution's end that names one of its last jobs (a tag on
    it) finds the job: the replay waits for the execution it started again."""
    first = manager.ensure()
    execution = _start(first.endpoint)
    assert _ended(first.endpoint, execution)["status"] == "SUCCEEDED"
    last = _each_job_once(first.endpoint)[f"j{STATES - 1}"]
    batch = client(first.endpoint, "batch")
    [job] = batch.describe_jobs(jobs=[last])["jobs"]
    batch.tag_resource(resourceArn=job["jobArn"], tags={"seen": "after"})
    kill(state_dir)

    restored = manager.ensure()
    assert restored.started == "restored"
    assert _each_job_once(restored.endpoint)[f"j{STATES - 1}"] == last
    [job] = client(restored.endpoint, "batch").describe_jobs(jobs=[last])["jobs"]
    assert job["tags"].get("seen") == "after", job["tags"]


def test_an_execution_that_waits_holds_neither_a_stop_nor_a_replay(state_dir: Path) -> None:
    """One that sends nothing for 2 s (a Wait state of an hour) is not waited for: the stop
    writes no snapshot, and the replay runs it again and goes on without it ending."""
    first = manager.ensure()
    queue(first.endpoint, "sfn")
    submit = {"JobQueue": "queue-sfn", "JobDefinition": "jd-sfn"}
    definition = {
        "StartAt": "first",
        "States": {
            "first": {
                "Type": "Task",
                "Resource": "arn:aws:states:::batch:submitJob",
                "Parameters": {"JobName": "j0", **submit},
                "Next": "hour",
            },
            "hour": {"Type": "Wait", "Seconds": 3600, "Next": "last"},
            "last": {
                "Type": "Task",
                "Resource": "arn:aws:states:::batch:submitJob",
                "Parameters": {"JobName": "j1", **submit},
                "End": True,
            },
        },
    }
    sfn = client(first.endpoint, "stepfunctions")
    machine = sfn.create_state_machine(
        name="waits",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/waits-states",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 30
    while not _jobs(first.endpoint):
        assert time.monotonic() < deadline, "the execution submitted nothing"
        time.sleep(0.01)
    began = time.monotonic()
    assert manager.stop()
    assert time.monotonic() - began < 6
    said = log_since(state_dir, 0)
    assert "sandbox snapshot: not written (a state machine execution is running" in said, said

    restored = manager.ensure()
    assert restored.started == "restored"
    described = client(restored.endpoint, "stepfunctions").describe_execution(
        executionArn=execution
    )
    assert described["status"] == "RUNNING"
    assert {name: len(ids) for name, ids in _jobs(restored.endpoint).items()} == {"j0": 1}


def test_a_fired_pipelines_jobs_come_back_once_after_a_crash(state_dir: Path) -> None:
    """A schedule's firing starts its state machine over HTTP, recorded as a client's request:
    a replay starts it again, and its jobs (whose own requests are not recorded) come back
    once, with their IDs, and so does the execution."""
    first = manager.ensure()
    queue(first.endpoint, "sfn")
    sfn = client(first.endpoint, "stepfunctions")
    machine = sfn.create_state_machine(
        name="fired",
        definition=chain(5, "queue-sfn", "jd-sfn", "j"),
        roleArn="arn:aws:iam::123456789012:role/fired-states",
    )["stateMachineArn"]
    client(first.endpoint, "scheduler").create_schedule(
        Name="nightly",
        ScheduleExpression="cron(0 2 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine, "RoleArn": "arn:aws:iam::123456789012:role/fired-scheduler"},
    )
    clock = f"{first.endpoint}{CLOCK_PATH}"
    advanced = urllib.request.urlopen(
        urllib.request.Request(clock, data=json.dumps({"advance": 86400}).encode())
    )
    [fired] = json.loads(advanced.read())["fired"]
    execution = fired["outcome"].removeprefix("execution ")
    assert _ended(first.endpoint, execution)["status"] == "SUCCEEDED"
    before = {name: ids[0] for name, ids in _jobs(first.endpoint).items()}
    assert len(before) == 5
    kill(state_dir)  # no snapshot: the next start replays the whole recording

    restored = manager.ensure()
    assert restored.started == "restored"
    assert {name: len(ids) for name, ids in _jobs(restored.endpoint).items()} == dict.fromkeys(
        before, 1
    )
    assert {name: ids[0] for name, ids in _jobs(restored.endpoint).items()} == before
    assert _ended(restored.endpoint, execution)["status"] == "SUCCEEDED"
