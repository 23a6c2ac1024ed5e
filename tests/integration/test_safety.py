"""Replacement without breaking queues, ownership conflicts and adoption, interrupted applies,
and queue deletion that would kill jobs; all over HTTP to moto."""

from __future__ import annotations

import json
import time

import pytest

from reconciler.engine.types import Work
from reconciler.kinds.job_queue import JobQueueKind
from tests.conftest import client, tags_of
from tests.stacks import ce, jd, jq, stack


def _queue_envs(endpoint: str, name: str = "main-queue") -> list[str]:
    queue = client(endpoint).describe_job_queues(jobQueues=[name])["jobQueues"][0]
    return [
        e["computeEnvironment"].split("/")[-1]
        for e in sorted(queue["computeEnvironmentOrder"], key=lambda e: e["order"])
    ]


def _env_names(endpoint: str) -> list[str]:
    envs = client(endpoint).describe_compute_environments()["computeEnvironments"]
    return sorted(e["computeEnvironmentName"] for e in envs)


def test_replacement_is_blue_green_and_the_queue_never_breaks(run, write, aws, monkeypatch):
    # Batch keeps the queue relationship for a while after the queue lets go: the delete of the
    # old environment must wait for it rather than fail.
    monkeypatch.setenv("RECONCILER_SANDBOX_RELATIONSHIP_LAG", "1.5")
    run("apply", "-f", write(stack(ce(type_="EC2", strategy="BEST_FIT"), jq())))
    path = write(stack(ce(type_="EC2", strategy="BEST_FIT", instance_types="[c5, m5]"), jq()))

    plan = run("diff", "-f", path)
    assert plan.code == 2
    assert "-/+ ComputeEnvironment/spot-ce" in plan.out
    assert "in-place infrastructure updates need the service-linked role" in plan.out
    assert "computeEnvironmentOrder.1.computeEnvironment: spot-ce -> spot-ce-" in plan.out, (
        "the queue re-pointing is in the plan"
    )
    assert "- ComputeEnvironment/spot-ce" in plan.out, "the delete of the old one is in the plan"

    started = time.monotonic()
    applied = run("apply", "--yes", "-f", path)
    assert applied.code == 0, applied.out + applied.err
    assert time.monotonic() - started >= 1.0, "waited for the relationship to clear"
    names = _env_names(aws)
    assert len(names) == 1 and names[0].startswith("spot-ce-")
    assert _queue_envs(aws) == names
    assert client(aws).describe_compute_environments(computeEnvironments=names)[
        "computeEnvironments"
    ][0]["computeResources"]["instanceTypes"] == ["c5", "m5"]
    again = run("apply", "-f", path)
    assert again.code == 0 and again.writes == 0, again.out
    got = run("get", "-f", path)
    assert "in sync" in got.out and names[0] in got.out


def test_infrastructure_update_in_place_with_progressive_strategy(run, write, aws):
    run("apply", "-f", write(stack(ce(type_="EC2", strategy="BEST_FIT_PROGRESSIVE"), jq())))
    path = write(
        stack(ce(type_="EC2", strategy="BEST_FIT_PROGRESSIVE", instance_types="[c5]"), jq())
    )
    applied = run("apply", "-f", path)
    assert applied.code == 0
    assert "infrastructure update in place" in applied.out
    assert applied.calls.get("batch:CreateComputeEnvironment", 0) == 0
    assert _env_names(aws) == ["spot-ce"]
    assert run("diff", "-f", path).code == 0


def test_unowned_resource_is_a_conflict_until_adopted(run, write, aws):
    batch = client(aws)
    batch.register_job_definition(
        jobDefinitionName="leader",
        type="container",
        containerProperties={"image": "theirs", "vcpus": 1, "memory": 512},
    )
    path = write(jd())
    diff = run("diff", "-f", path)
    assert diff.code == 1
    assert "! JobDefinition/leader" in diff.out and "not managed by reconciler" in diff.out
    refused = run("apply", "-f", path)
    assert refused.code == 1 and refused.writes == 0
    assert "cannot be applied" in refused.err
    active = batch.describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    assert [d["containerProperties"]["image"] for d in active["jobDefinitions"]] == ["theirs"]

    adopted = run("apply", "-f", path, "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert run("diff", "-f", path).code == 0, "owned now: no conflict, no changes"


def test_adopting_a_compute_environment_tags_it_and_keeps_it(run, write, aws):
    run("apply", "-f", write(ce()), "--stack", "other")
    path = write(ce())
    conflict = run("diff", "-f", path)
    assert conflict.code == 1 and "owned by stack 'other'" in conflict.out
    assert run("delete", "--yes", "-f", path).writes == 0, (
        "delete leaves another stack's resource alone"
    )
    assert _env_names(aws) == ["spot-ce"]
    adopted = run("apply", "-f", path, "--adopt")
    assert adopted.code == 0
    assert "adopt" in adopted.out
    arn = client(aws).describe_compute_environments()["computeEnvironments"][0][
        "computeEnvironmentArn"
    ]
    assert tags_of(aws, arn)["reconciler.io/stack"] == "default"
    assert adopted.calls.get("batch:CreateComputeEnvironment", 0) == 0


def test_interrupted_apply_converges_on_rerun(run, write, aws, monkeypatch):
    path = write(stack(ce(), jq(), jd()))

    def crash(*_args: object) -> str:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(JobQueueKind, "create", lambda *_args: Work(run=crash))
    broken = run("apply", "-f", path)
    assert broken.code == 1
    assert "failed" in broken.out and "connection lost" in broken.out
    assert "Re-run the same command" in broken.out
    monkeypatch.undo()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    rerun = run("apply", "-f", path)
    assert rerun.code == 0, rerun.out + rerun.err
    assert rerun.calls.get("batch:CreateComputeEnvironment", 0) == 0
    assert rerun.calls.get("batch:RegisterJobDefinition", 0) == 0
    assert rerun.calls["batch:CreateJobQueue"] == 1
    assert run("apply", "-f", path).writes == 0


def test_interrupted_replacement_is_finished_on_rerun(run, write, aws):
    """A crash after the replacement was created but before the queue moved to it."""
    run("apply", "-f", write(stack(ce(type_="EC2", strategy="BEST_FIT"), jq())))
    path = write(stack(ce(type_="EC2", strategy="BEST_FIT", instance_types="[c5]"), jq()))
    plan = run("diff", "-f", path, "-o", "json")
    actions = json.loads(plan.out)["actions"]
    new_name = next(a["awsName"] for a in actions if a["action"] == "replace")
    existing = client(aws).describe_compute_environments()["computeEnvironments"][0]
    resources = dict(existing["computeResources"], instanceTypes=["c5"])
    client(aws).create_compute_environment(
        computeEnvironmentName=new_name,
        type="MANAGED",
        state="ENABLED",
        computeResources=resources,
        serviceRole=existing["serviceRole"],
        tags=tags_of(aws, existing["computeEnvironmentArn"]),
    )

    rerun = run("apply", "--yes", "-f", path)
    assert rerun.code == 0, rerun.out + rerun.err
    assert "leftover of an interrupted replacement" in rerun.out
    assert rerun.calls.get("batch:CreateComputeEnvironment", 0) == 0
    assert _env_names(aws) == [new_name]
    assert _queue_envs(aws) == [new_name]


@pytest.fixture
def running_job(aws, run, write, monkeypatch):
    # Long enough that the job still runs when the delete plans, on a loaded machine too.
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "5")
    path = write(stack(ce(), jq(), jd()))
    assert run("apply", "-f", path).code == 0
    client(aws).submit_job(jobName="work", jobQueue="main-queue", jobDefinition="leader")
    return path


def test_deleting_a_queue_with_running_jobs_is_refused(run, running_job, aws):
    refused = run("delete", "--yes", "-f", running_job)
    assert refused.code == 1
    assert "unfinished jobs that deleting would kill" in refused.out
    assert refused.writes == 0
    assert _env_names(aws) == ["spot-ce"]


def test_drain_waits_for_jobs_then_deletes(run, running_job, aws):
    started = time.monotonic()
    drained = run("delete", "--yes", "-f", running_job, "--drain")
    assert drained.code == 0, drained.out + drained.err
    assert time.monotonic() - started >= 1.0
    assert "draining them first" in drained.out
    assert client(aws).describe_job_queues()["jobQueues"] == []


def test_deleting_what_an_unowned_queue_uses_is_refused_before_any_write(run, write, aws):
    path = write(ce())
    assert run("apply", "-f", path).code == 0
    arn = client(aws).describe_compute_environments(computeEnvironments=["spot-ce"])[
        "computeEnvironments"
    ][0]["computeEnvironmentArn"]
    client(aws).create_job_queue(
        jobQueueName="their-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": arn}],
    )
    refused = run("delete", "--yes", "-f", path)
    assert refused.code == 1
    assert "still used by JobQueue their-queue (unowned)" in refused.out
    assert refused.writes == 0, refused.calls
    env = client(aws).describe_compute_environments(computeEnvironments=["spot-ce"])
    assert env["computeEnvironments"][0]["state"] == "ENABLED", "nothing was disabled"
