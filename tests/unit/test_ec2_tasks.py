"""EC2 tasks: what the manifest accepts, how a launch is asked for, how an instance reads as a
job, and when a driven run is complete. Pure functions; the runs themselves are tested on the
sandbox (tests/sandbox/test_ec2_tasks.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.errors import ManifestError
from reconciler.manifests import validate_documents
from reconciler.manifests.loader import load_text
from reconciler.models.ec2_task import Ec2Settings
from reconciler.models.pipeline import Pipeline
from reconciler.models.submission import file_dependencies
from reconciler.runs import drive, ec2_launch, ec2_state

EC2 = "ec2: {instanceType: t3a.medium, image: ami-0abc}"


def _pipeline(tasks: str, queue: str = "") -> str:
    return (
        "apiVersion: reconciler.io/v1alpha1\nkind: Pipeline\nmetadata: {name: p}\n"
        f"spec:\n{queue}  tasks:\n{tasks}"
    )


def _problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        validate_documents(load_text(text, "p.yaml"))
    return [str(p) for p in info.value.problems]


def _valid(text: str) -> Any:
    return validate_documents(load_text(text, "p.yaml")).resources[0]


def test_an_ec2_task_needs_no_queue_or_definition() -> None:
    res = _valid(_pipeline(f"  - name: count\n    {EC2}\n    script: echo HI\n"))
    assert isinstance(res, Pipeline)
    assert res.references() == []
    assert res.spec.tasks[0].ec2 is not None


def test_batch_fields_script_and_queues_are_checked_with_their_place() -> None:
    problems = _problems(
        _pipeline(
            f"  - name: a\n    {EC2}\n    jobDefinition: jd\n    script: x\n"
            f"  - name: b\n    {EC2}\n"
            "  - name: c\n    jobDefinition: jd\n    script: echo\n"
        )
    )
    text = "\n".join(problems)
    assert "spec.tasks.0: jobDefinition: Batch fields, not with ec2" in text
    assert "spec.tasks.1: script: required with ec2" in text
    assert "spec.tasks.2: script: only with ec2" in text
    assert all(p.startswith("p.yaml:") for p in problems)
    # Once every task is well formed: a Batch task needs a queue, its own or the pipeline's.
    queue = _problems(
        _pipeline(f"  - name: a\n    {EC2}\n    script: x\n  - name: d\n    jobDefinition: jd\n")
    )
    assert any("task 'd': jobQueue: required" in p for p in queue)


def test_nothing_may_depend_on_a_detached_task() -> None:
    problems = _problems(
        _pipeline(
            f"  - name: a\n    {EC2}\n    script: x\n    detached: true\n"
            f"  - name: b\n    {EC2}\n    script: x\n    dependsOn: [{{task: a}}]\n"
        )
    )
    assert any("depends on 'a', which is detached" in p for p in problems)


def test_files_order_tasks_and_a_file_cycle_is_refused() -> None:
    res = _valid(
        _pipeline(
            f"  - name: make\n    {EC2}\n    script: x\n    outputs: [s3://bkt/out.txt]\n"
            f"  - name: use\n    {EC2}\n    script: x\n    inputs: [s3://bkt/out.txt]\n"
        )
    )
    assert file_dependencies(res.spec.tasks) == {"use": {"make"}}
    problems = _problems(
        _pipeline(
            f"  - name: a\n    {EC2}\n    script: x\n    inputs: [s3://bkt/1]\n"
            "    outputs: [s3://bkt/2]\n"
            f"  - name: b\n    {EC2}\n    script: x\n    inputs: [s3://bkt/2]\n"
            "    outputs: [s3://bkt/1]\n"
        )
    )
    assert any("dependency cycle" in p for p in problems)


def test_a_role_reference_must_be_its_instance_profile() -> None:
    with pytest.raises(ValueError, match="instanceProfile: true"):
        Ec2Settings.model_validate(
            {"instanceType": "t3.micro", "image": "ami-1", "instanceProfile": {"role": "r"}}
        )


def test_the_launch_request_carries_tags_token_spot_and_shutdown_behaviour() -> None:
    settings = Ec2Settings.model_validate(
        {"instanceType": "t3.micro", "image": "ami-1", "spot": {"maxPrice": "0.07"}}
    )
    request = ec2_launch.launch_request(
        settings,
        image_id="ami-1",
        subnet="subnet-1",
        security_groups=["sg-1"],
        profile="arn:aws:iam::123456789012:instance-profile/p",
        user_data="#!/bin/bash\n",
        tags={"reconciler.io/run": "r1"},
        token="t" * 64,
    )
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert request["ClientToken"] == "t" * 64
    assert {s["ResourceType"] for s in request["TagSpecifications"]} == {
        "instance",
        "volume",
        "spot-instances-request",
    }
    assert request["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == "0.07"
    assert request["IamInstanceProfile"] == {"Arn": "arn:aws:iam::123456789012:instance-profile/p"}


def test_a_token_is_stable_per_attempt_and_within_aws_limit() -> None:
    one = ec2_launch.client_token("s", "Task", "t", "run1", "count", 0)
    assert one == ec2_launch.client_token("s", "Task", "t", "run1", "count", 0)
    assert one != ec2_launch.client_token("s", "Task", "t", "run1", "count", 1)
    assert len(one) <= 64


def _instance(state: str, reason: str = "") -> dict[str, Any]:
    return {
        "InstanceId": "i-1",
        "State": {"Name": state},
        "StateReason": {"Message": reason} if reason else {},
        "LaunchTime": datetime(2026, 1, 1, tzinfo=UTC),
        "Tags": [{"Key": "reconciler.io/task", "Value": "count"}],
    }


@pytest.mark.parametrize(
    ("state", "code", "status"),
    [
        ("pending", None, "STARTING"),
        ("running", None, "RUNNING"),
        ("running", 0, "SUCCEEDED"),
        ("shutting-down", 3, "FAILED"),
        ("terminated", None, "FAILED"),
    ],
)
def test_an_instance_reads_as_a_job(state: str, code: int | None, status: str) -> None:
    job = ec2_state.instance_job(_instance(state, "Server.SpotInstanceTermination"), code)
    assert job["status"] == status
    assert job["jobName"] == "count"
    if state == "terminated" and code is None:
        assert "before the script ended" in job["statusReason"]
        assert "SpotInstanceTermination" in job["statusReason"]
    if code is not None:
        assert job["attempts"][0]["container"]["exitCode"] == code


def test_a_driven_run_is_complete_when_every_attached_task_ended() -> None:
    res = _valid(
        _pipeline(
            f"  - name: a\n    {EC2}\n    script: x\n"
            f"  - name: d\n    {EC2}\n    script: x\n    detached: true\n"
        )
    )
    tasks = res.task_list()
    assert drive.driven(tasks)
    assert not drive.run_complete(tasks, {"a": {"status": "RUNNING"}})
    assert not drive.run_complete(tasks, {"a": {"status": "SUCCEEDED"}})
    assert drive.run_complete(tasks, {"a": {"status": "SUCCEEDED"}, "d": {"status": "RUNNING"}})


def test_a_schedule_cannot_fire_work_that_needs_a_driver() -> None:
    text = _pipeline(f"  - name: count\n    {EC2}\n    script: echo HI\n") + (
        "---\napiVersion: reconciler.io/v1alpha1\nkind: Schedule\nmetadata: {name: hourly}\n"
        "spec:\n  schedule: rate(1 hour)\n  target: {pipeline: p}\n"
    )
    problems = _problems(text)
    assert any("Schedule/hourly: spec.target.pipeline: count: EC2 tasks" in p for p in problems), (
        problems
    )


def test_a_batch_task_is_not_wired_to_a_dependency_skipped_as_up_to_date(monkeypatch) -> None:
    """A skipped task succeeded without a job: a Batch task after it waits for nothing."""
    from types import SimpleNamespace

    res = Pipeline.model_validate(
        {
            "apiVersion": "reconciler.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": {
                "jobQueue": "q",
                "tasks": [
                    {"name": "a", "jobDefinition": "jd", "outputs": ["s3://bkt/a.txt"]},
                    {"name": "b", "jobDefinition": "jd", "dependsOn": [{"task": "a"}]},
                ],
            },
        }
    )
    sent = []

    def submit_unit(ctx, res, run, unit, queue_of, job_ids):
        sent.append((unit.key, unit.depends, job_ids))
        return "job-b"

    monkeypatch.setattr(drive, "submit_unit", submit_unit)
    driver = drive.Driver(res, "run1", res.task_list(), {"a": "q", "b": "q"})
    driver.jobs["a"] = ec2_state.skipped_job("a")
    ctx = SimpleNamespace(log=lambda _line: None)
    driver._maybe_start(ctx, driver.by_key["b"])  # type: ignore[arg-type]
    (key, depends, wiring) = sent[0]
    assert key == "b" and depends == [] and "a" not in wiring
    assert driver.jobs["b"]["jobId"] == "job-b"
