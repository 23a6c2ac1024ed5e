"""The sandbox fires schedules: a Task's job, a Pipeline's whole DAG, each firing a run."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from reconciler.sandbox import moto_ext
from tests.conftest import client
from tests.integration.test_schedule import schedule, task
from tests.stacks import infra, pipeline, stack


@pytest.fixture
def clock(aws, monkeypatch, tmp_path):
    """The test server's schedule clock, pointed at the server; time moves only when told."""
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.setenv("MOTO_PORT", aws.rsplit(":", 1)[1])  # moto's state machine runner
    monkeypatch.chdir(tmp_path)
    extensions = moto_ext.installed()
    assert extensions is not None
    clock = extensions.clock
    monkeypatch.setattr(clock, "endpoint", aws)
    clock.tick()  # forget schedules of earlier tests
    return clock


def _jobs(aws: str, prefix: str) -> list[dict]:
    batch = client(aws)
    ids = [
        s["jobId"]
        for s in batch.list_jobs(
            jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": [prefix + "*"]}]
        )["jobSummaryList"]
        if ":" not in s["jobId"]
    ]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def _until(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_each_firing_submits_the_task_as_a_run_of_its_own(srun, write, aws, clock):
    path = write(stack(infra(), task(), schedule()))
    assert srun("apply", "-f", path).code == 0
    assert clock.advance(60) == []  # nothing due within the minute (hourly, on the hour)
    fired = clock.advance(2 * 3600)
    assert len(fired) == 2, fired
    assert all(f.outcome.startswith("job ") for f in fired), fired
    jobs = _jobs(aws, "poller--")
    assert len(jobs) == 2
    runs = {j["tags"]["reconciler.io/run"] for j in jobs}
    assert runs == {f.execution for f in fired}  # each firing is a run of its own
    for job in jobs:
        assert job["tags"]["reconciler.io/kind"] == "Task"
        assert job["tags"]["reconciler.io/name"] == "poller"
        assert job["container"]["command"] == ["poll", "--once"]
    done = _until(lambda: all(j["status"] == "SUCCEEDED" for j in _jobs(aws, "poller--")))
    assert done
    got = srun("get", "-f", path, "task/poller")
    assert got.code == 0, got.out + got.err
    assert any(f.execution in got.out for f in fired), got.out
    report = srun("report", "-f", path, "task/poller")
    assert report.code == 0, report.out + report.err
    # Re-applying the stack submits nothing: the task runs only when the schedule fires.
    again = srun("apply", "-f", path)
    assert again.code == 0 and again.calls.get("batch:SubmitJob", 0) == 0, again.calls


def test_a_disabled_schedule_does_not_fire(srun, write, aws, clock):
    path = write(stack(infra(), task(), schedule(state="DISABLED")))
    assert srun("apply", "-f", path).code == 0
    assert clock.advance(3 * 3600) == []
    assert _jobs(aws, "poller--") == []


def test_a_fired_pipeline_submits_the_whole_dag_with_its_dependencies(srun, write, aws, clock):
    body = pipeline().replace("concurrencyPolicy", "submitOnApply: false\n  concurrencyPolicy")
    path = write(stack(infra(), body, schedule(target="{pipeline: stress}")))
    first = srun("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    fired = clock.advance(3600)
    assert len(fired) == 1 and fired[0].outcome.startswith("execution "), fired
    jobs = _until(lambda: len(_jobs(aws, "stress--")) == 2 and _jobs(aws, "stress--"))
    assert jobs, "the state machine did not submit both jobs"
    by_task = {j["tags"]["reconciler.io/task"]: j for j in jobs}
    leader, follower = by_task["leader"], by_task["follower"]
    assert follower["dependsOn"] == [{"jobId": leader["jobId"]}]
    assert follower["arrayProperties"]["size"] == 4
    assert leader["tags"]["reconciler.io/run"] == follower["tags"]["reconciler.io/run"]
    assert _until(lambda: all(j["status"] == "SUCCEEDED" for j in _jobs(aws, "stress--")))
    got = srun("get", "-f", path, "pipeline/stress")
    assert leader["tags"]["reconciler.io/run"] in got.out, got.out


def test_a_firing_that_cannot_submit_goes_to_the_dead_letter_queue(srun, write, aws, clock):
    extra = "\n  deadLetterQueue: {create: true}"
    path = write(stack(infra(), task(), schedule(extra=extra)))
    assert srun("apply", "-f", path).code == 0
    arn = client(aws, "scheduler").get_schedule(GroupName="reconciler-default", Name="hourly")[
        "Target"
    ]["DeadLetterConfig"]["Arn"]
    client(aws).update_job_queue(jobQueue="main-queue", state="DISABLED")
    client(aws).delete_job_queue(jobQueue="main-queue")
    fired = clock.advance(3600)
    assert len(fired) == 1 and fired[0].outcome.startswith("failed"), fired
    sqs = client(aws, "sqs")
    url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert len(messages) == 1
    assert "main-queue" in messages[0]["Body"]


def test_a_fired_fan_in_beyond_twenty_dependencies_uses_barrier_jobs(srun, write, aws, clock):
    tasks = "\n".join(f"    - {{name: a{i}, jobDefinition: leader}}" for i in range(21))
    deps = ", ".join(f"{{task: a{i}}}" for i in range(21))
    wide = f"""
apiVersion: reconciler.io/v1alpha1
kind: Pipeline
metadata: {{name: wide}}
spec:
  jobQueue: main-queue
  submitOnApply: false
  tasks:
{tasks}
    - {{name: join, jobDefinition: follower, dependsOn: [{deps}]}}
"""
    path = write(stack(infra(), wide, schedule(target="{pipeline: wide}")))
    first = srun("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    assert first.calls.get("batch:RegisterJobDefinition", 0) == 3  # leader, follower, barrier
    fired = clock.advance(3600)
    assert len(fired) == 1, fired
    jobs = _until(lambda: len(_jobs(aws, "wide--")) == 24 and _jobs(aws, "wide--"), 30)
    assert jobs, "the state machine did not submit 21 tasks, 2 barriers and the join"
    join = next(j for j in jobs if j["tags"]["reconciler.io/task"] == "join")
    assert len(join["dependsOn"]) == 2  # the barriers, each waiting for up to 20
    assert _until(lambda: all(j["status"] == "SUCCEEDED" for j in _jobs(aws, "wide--")), 30)


def test_the_clock_is_advanced_over_http_as_sandbox_clock_does(srun, write, aws, clock):
    """`reconciler sandbox clock advance 2h` posts to this route; the firings come back."""
    path = write(stack(infra(), task(), schedule()))
    assert srun("apply", "-f", path).code == 0
    url = f"{aws}/moto-api/reconciler/clock"
    shown = json.loads(urllib.request.urlopen(url).read())
    assert set(shown) == {"now", "advancedSeconds", "timeScale"}
    body = json.dumps({"advance": 7200}).encode()
    advanced = json.loads(urllib.request.urlopen(urllib.request.Request(url, data=body)).read())
    assert advanced["advancedSeconds"] == shown["advancedSeconds"] + 7200
    assert len(advanced["fired"]) == 2, advanced
    assert all(f["outcome"].startswith("job ") for f in advanced["fired"])
    assert all(
        f["schedule"].endswith("schedule/reconciler-default/hourly") for f in advanced["fired"]
    )
    assert len(_jobs(aws, "poller--")) == 2
    bad = urllib.request.Request(url, data=json.dumps({"advance": -1}).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad)
    assert refused.value.code == 400
