"""The normalised diff: what counts as a change, and how each change is named."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from reconciler.engine.diff import Change, canonical_of, diff
from reconciler.models.compute_environment import ComputeEnvironmentSpec
from reconciler.models.job_definition import JobDefinitionSpec
from reconciler.models.job_queue import JobQueueSpec

ROLE = "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"

CE: dict[str, Any] = {
    "type": "MANAGED",
    "state": "ENABLED",
    "computeResources": {
        "type": "EC2",
        "minvCpus": 0,
        "maxvCpus": 16,
        "instanceTypes": ["c5", "m5", "r5"],
        "subnets": ["subnet-0a", "subnet-0b"],
        "securityGroupIds": ["sg-01"],
        "instanceRole": ROLE,
    },
    "tags": {"team": "genomics", "app": "stress"},
}

JD: dict[str, Any] = {
    "type": "container",
    "parameters": {"arraysize": "2"},
    "containerProperties": {
        "image": "public.ecr.aws/amazonlinux/amazonlinux:2",
        "command": ["/entrypoint.sh", "--fast"],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "1024"},
        ],
        "environment": [
            {"name": "ALPHA", "value": "1"},
            {"name": "BETA", "value": "2"},
            {"name": "GAMMA", "value": "3"},
        ],
    },
    "retryStrategy": {"attempts": 2},
    "tags": {"team": "genomics"},
}

Edit = Callable[[dict[str, Any]], None]


def _noop(_d: dict[str, Any]) -> None:
    pass


@dataclass
class Case:
    reason: str
    model: type[BaseModel]
    base: dict[str, Any]
    desired: Edit = _noop  # applied to a copy of base: what the manifest says
    actual: Edit = _noop  # applied to another copy of base: what AWS returns
    expected: list[tuple[str, Any, Any]] = field(default_factory=list)  # (path, old, new)
    ignore: frozenset[str] = frozenset()

    def run(self) -> list[Change]:
        want, have = copy.deepcopy(self.base), copy.deepcopy(self.base)
        self.desired(want)
        self.actual(have)
        return diff(want, have, self.model, self.ignore)


def _cr(d: dict[str, Any]) -> dict[str, Any]:
    return d["computeResources"]


def _cp(d: dict[str, Any]) -> dict[str, Any]:
    return d["containerProperties"]


def _set(getter: Callable[[dict[str, Any]], dict[str, Any]], **values: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        getter(d).update(values)

    return edit


def _top(**values: Any) -> Edit:
    return _set(lambda d: d, **values)


def _all(*edits: Edit) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for e in edits:
            e(d)

    return edit


def _reverse(getter: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        getter(d)[key] = list(reversed(getter(d)[key]))

    return edit


def _env(name: str, value: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for item in _cp(d)["environment"]:
            if item["name"] == name:
                item["value"] = value

    return edit


CASES = [
    # -- nothing to do ---------------------------------------------------------------------
    Case("identical compute environments give no change", ComputeEnvironmentSpec, CE),
    Case("identical job definitions give no change", JobDefinitionSpec, JD),
    Case(
        "AWS's extra response fields are not part of the model: ignored",
        ComputeEnvironmentSpec,
        CE,
        actual=_all(
            _top(
                containerOrchestrationType="ECS",
                status="VALID",
                statusReason="ComputeEnvironment Healthy",
                computeEnvironmentArn="arn:aws:batch:us-east-1:123456789012:compute-environment/x",
                ecsClusterArn="arn:aws:ecs:us-east-1:123456789012:cluster/x",
                uuid="0000",
            ),
            _set(_cr, someFutureField="x"),
        ),
    ),
    Case(
        "AWS's extra job definition fields (status, revision, ARN) are ignored",
        JobDefinitionSpec,
        JD,
        actual=_top(
            status="ACTIVE",
            revision=3,
            jobDefinitionArn="arn:aws:batch:us-east-1:123456789012:job-definition/x:3",
            containerOrchestrationType="ECS",
        ),
    ),
    Case(
        "empty lists and dicts returned by AWS equal absent fields",
        JobDefinitionSpec,
        JD,
        actual=_all(
            _set(_cp, volumes=[], mountPoints=[], ulimits=[], secrets=[], linuxParameters={}),
            _top(nodeProperties=None),
        ),
    ),
    Case(
        "empty lists and dicts in the manifest equal absent fields",
        JobDefinitionSpec,
        JD,
        desired=_all(_set(_cp, volumes=[], mountPoints=[]), _top(timeout=None)),
    ),
    Case(
        "empty tags on one side, none on the other: no change",
        ComputeEnvironmentSpec,
        CE,
        desired=_top(tags={}),
        actual=lambda d: d.pop("tags"),
    ),
    Case(
        "instanceTypes is a set: order does not matter",
        ComputeEnvironmentSpec,
        CE,
        actual=_reverse(_cr, "instanceTypes"),
    ),
    Case(
        "subnets are a set: order does not matter",
        ComputeEnvironmentSpec,
        CE,
        actual=_reverse(_cr, "subnets"),
    ),
    Case(
        "environment is keyed by name: order does not matter",
        JobDefinitionSpec,
        JD,
        actual=_reverse(_cp, "environment"),
    ),
    Case(
        "resourceRequirements is keyed by type: order does not matter",
        JobDefinitionSpec,
        JD,
        actual=_reverse(_cp, "resourceRequirements"),
    ),
    Case(
        "allocationStrategy unset in the manifest: AWS's default is not drift",
        ComputeEnvironmentSpec,
        CE,
        actual=_set(_cr, allocationStrategy="BEST_FIT"),
    ),
    Case(
        "serviceRole unset in the manifest: AWS's service-linked role is not drift",
        ComputeEnvironmentSpec,
        CE,
        actual=_top(
            serviceRole="arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/"
            "AWSServiceRoleForBatch"
        ),
    ),
    Case(
        "late-init ec2Configuration filled in by AWS is not drift",
        ComputeEnvironmentSpec,
        CE,
        actual=_set(_cr, ec2Configuration=[{"imageType": "ECS_AL2"}]),
    ),
    Case(
        "platformCapabilities and propagateTags unset: AWS's defaults are not drift",
        JobDefinitionSpec,
        JD,
        actual=_top(platformCapabilities=["EC2"], propagateTags=False),
    ),
    Case(
        "late-init container fields unset: AWS's defaults are not drift",
        JobDefinitionSpec,
        JD,
        actual=_set(_cp, networkConfiguration={"assignPublicIp": "DISABLED"}),
    ),
    Case(
        "desiredvCpus moved by Batch is not drift when ignored",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, desiredvCpus=4),
        actual=_set(_cr, desiredvCpus=12),
        ignore=frozenset({"computeResources.desiredvCpus"}),
    ),
    Case(
        "desiredvCpus unset in the manifest is not drift even when tracked",
        ComputeEnvironmentSpec,
        CE,
        actual=_set(_cr, desiredvCpus=12),
    ),
    Case(
        "local fields (revisionHistoryLimit) never compare",
        JobDefinitionSpec,
        JD,
        desired=_top(revisionHistoryLimit=3),
    ),
    # -- changes ---------------------------------------------------------------------------
    Case(
        "allocationStrategy set in the manifest is compared",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, allocationStrategy="BEST_FIT_PROGRESSIVE"),
        actual=_set(_cr, allocationStrategy="BEST_FIT"),
        expected=[("computeResources.allocationStrategy", "BEST_FIT", "BEST_FIT_PROGRESSIVE")],
    ),
    Case(
        "serviceRole set in the manifest is compared",
        ComputeEnvironmentSpec,
        CE,
        desired=_top(serviceRole="arn:aws:iam::123456789012:role/MyBatchRole"),
        actual=_top(serviceRole="arn:aws:iam::123456789012:role/OtherRole"),
        expected=[
            (
                "serviceRole",
                "arn:aws:iam::123456789012:role/OtherRole",
                "arn:aws:iam::123456789012:role/MyBatchRole",
            )
        ],
    ),
    Case(
        "serviceRole set in the manifest but absent in AWS is a change",
        ComputeEnvironmentSpec,
        CE,
        desired=_top(serviceRole="arn:aws:iam::123456789012:role/MyBatchRole"),
        expected=[("serviceRole", None, "arn:aws:iam::123456789012:role/MyBatchRole")],
    ),
    Case(
        "platformCapabilities set in the manifest is compared (as a whole set)",
        JobDefinitionSpec,
        JD,
        desired=_top(platformCapabilities=["FARGATE"]),
        actual=_top(platformCapabilities=["EC2"]),
        expected=[("platformCapabilities", ["EC2"], ["FARGATE"])],
    ),
    Case(
        "propagateTags set in the manifest is compared",
        JobDefinitionSpec,
        JD,
        desired=_top(propagateTags=True),
        actual=_top(propagateTags=False),
        expected=[("propagateTags", False, True)],
    ),
    Case(
        "desiredvCpus is compared when not ignored (trackDesiredvCpus)",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, desiredvCpus=4),
        actual=_set(_cr, desiredvCpus=12),
        expected=[("computeResources.desiredvCpus", 12, 4)],
    ),
    Case(
        "a scalar change is named by its dotted path",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, maxvCpus=64),
        expected=[("computeResources.maxvCpus", 16, 64)],
    ),
    Case(
        "a changed set of values is reported as the whole (sorted) list",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, instanceTypes=["m5", "c6i"]),
        expected=[("computeResources.instanceTypes", ["c5", "m5", "r5"], ["c6i", "m5"])],
    ),
    Case(
        "a value change inside a keyed list is named by the item's key",
        JobDefinitionSpec,
        JD,
        desired=_env("BETA", "20"),
        actual=_reverse(_cp, "environment"),
        expected=[("containerProperties.environment.BETA.value", "2", "20")],
    ),
    Case(
        "a new item in a keyed list is named by its key",
        JobDefinitionSpec,
        JD,
        desired=lambda d: _cp(d)["environment"].append({"name": "DELTA", "value": "4"}),
        expected=[("containerProperties.environment.DELTA", None, {"name": "DELTA", "value": "4"})],
    ),
    Case(
        "a removed item in a keyed list is named by its key",
        JobDefinitionSpec,
        JD,
        desired=lambda d: _cp(d)["environment"].pop(0),
        expected=[("containerProperties.environment.ALPHA", {"name": "ALPHA", "value": "1"}, None)],
    ),
    Case(
        "resourceRequirements changes are keyed by type",
        JobDefinitionSpec,
        JD,
        desired=lambda d: _cp(d)["resourceRequirements"].__setitem__(
            1, {"type": "MEMORY", "value": "2048"}
        ),
        expected=[("containerProperties.resourceRequirements.MEMORY.value", "1024", "2048")],
    ),
    Case(
        "a change inside a plain list (command) is reported as the whole list",
        JobDefinitionSpec,
        JD,
        desired=_set(_cp, command=["/entrypoint.sh", "--slow"]),
        expected=[
            (
                "containerProperties.command",
                ["/entrypoint.sh", "--fast"],
                ["/entrypoint.sh", "--slow"],
            )
        ],
    ),
    Case(
        "order matters in a plain list: reordering the command is a change",
        JobDefinitionSpec,
        JD,
        actual=_reverse(_cp, "command"),
        expected=[
            (
                "containerProperties.command",
                ["--fast", "/entrypoint.sh"],
                ["/entrypoint.sh", "--fast"],
            )
        ],
    ),
    Case(
        "an item appended to a plain list is reported as the whole list",
        JobDefinitionSpec,
        JD,
        desired=lambda d: _cp(d)["command"].append("--verbose"),
        expected=[
            (
                "containerProperties.command",
                ["/entrypoint.sh", "--fast"],
                ["/entrypoint.sh", "--fast", "--verbose"],
            )
        ],
    ),
    Case(
        "tag changes give one tags.key path each (added, changed, removed)",
        ComputeEnvironmentSpec,
        CE,
        desired=_top(tags={"team": "proteomics", "owner": "me"}),
        expected=[
            ("tags.app", "stress", None),
            ("tags.owner", None, "me"),
            ("tags.team", "genomics", "proteomics"),
        ],
    ),
    Case(
        "instance tags (computeResources.tags) give nested paths",
        ComputeEnvironmentSpec,
        CE,
        desired=_set(_cr, tags={"Name": "worker"}),
        expected=[("computeResources.tags", None, {"Name": "worker"})],
    ),
    Case(
        "several changes are sorted by path",
        JobDefinitionSpec,
        JD,
        desired=_all(
            _top(tags={"team": "x"}),
            _set(_cp, image="busybox"),
            _top(retryStrategy={"attempts": 3}),
        ),
        expected=[
            ("containerProperties.image", "public.ecr.aws/amazonlinux/amazonlinux:2", "busybox"),
            ("retryStrategy.attempts", 2, 3),
            ("tags.team", "genomics", "x"),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.reason for c in CASES])
def test_diff(case: Case) -> None:
    got = [(c.path, c.old, c.new) for c in case.run()]
    assert got == case.expected, case.reason


def test_job_queue_order_keyed_by_int_field() -> None:
    base = {
        "priority": 1,
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": "a"},
            {"order": 2, "computeEnvironment": "b"},
        ],
    }
    reordered = {**base, "computeEnvironmentOrder": list(reversed(base["computeEnvironmentOrder"]))}
    assert diff(base, reordered, JobQueueSpec) == []
    swapped = {
        **base,
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": "b"},
            {"order": 2, "computeEnvironment": "a"},
        ],
    }
    paths = [c.path for c in diff(swapped, base, JobQueueSpec)]
    assert paths == [
        "computeEnvironmentOrder.1.computeEnvironment",
        "computeEnvironmentOrder.2.computeEnvironment",
    ]


def test_change_formatting() -> None:
    assert str(Change("a.b", None, "x")) == "a.b: (unset) -> x"
    assert str(Change("a", ["c5"], ["m5", "c5"])) == 'a: ["c5"] -> ["m5", "c5"]'
    assert Change("p", 1, 2).as_dict() == {"path": "p", "old": 1, "new": 2}


def test_canonical_form_ignores_order_of_sets() -> None:
    other = copy.deepcopy(CE)
    other["computeResources"]["instanceTypes"].reverse()
    assert canonical_of(other, ComputeEnvironmentSpec) == canonical_of(CE, ComputeEnvironmentSpec)


def test_defaults_aws_fills_inside_a_partly_set_late_init_field_are_not_drift():
    desired = {"type": "UNMANAGED", "updatePolicy": {"terminateJobsOnUpdate": True}}
    actual = {
        "type": "UNMANAGED",
        "updatePolicy": {"terminateJobsOnUpdate": True, "jobExecutionTimeoutMinutes": 30},
    }
    assert diff(desired, actual, ComputeEnvironmentSpec) == []
    changed = {**desired, "updatePolicy": {"terminateJobsOnUpdate": False}}
    assert [c.path for c in diff(changed, actual, ComputeEnvironmentSpec)] == [
        "updatePolicy.terminateJobsOnUpdate"
    ]
