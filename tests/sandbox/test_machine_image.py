"""MachineImage on the sandbox (issue #12): a builder instance really runs the script under the
agent, the image is created from it and tagged with the recipe hash, and nothing of the build
is left; over HTTP only (the CLI, and plain boto3 to look)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client

HEADER = "apiVersion: reconciler.io/v1alpha1\n"


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.chdir(tmp_path)


def image(name: str, script: str, extra: str = "") -> str:
    body = "\n".join("      " + line for line in script.splitlines())
    return (
        f"{HEADER}kind: MachineImage\nmetadata: {{name: {name}}}\nspec:\n"
        "  base: {owners: [amazon], name: amzn2-ami-hvm-*, architecture: x86_64}\n"
        "  build:\n"
        "    instanceTypes: [t3.micro]\n"
        "    timeoutSeconds: 600\n"
        f"    script: |\n{body}\n{extra}"
    )


def owned_images(endpoint: str, name: str) -> list[dict[str, Any]]:
    found = client(endpoint, "ec2").describe_images(
        Owners=["self"], Filters=[{"Name": "tag:reconciler.io/name", "Values": [name]}]
    )
    return list(found["Images"])


def live_builders(endpoint: str) -> list[str]:
    reservations = client(endpoint, "ec2").describe_instances(
        Filters=[{"Name": "tag:reconciler.io/task", "Values": ["image-builder"]}]
    )["Reservations"]
    return [
        i["InstanceId"]
        for r in reservations
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]


def builder_groups(endpoint: str) -> list[str]:
    groups = client(endpoint, "ec2").describe_security_groups(
        Filters=[{"Name": "tag:reconciler.io/role", "Values": ["image-builder"]}]
    )["SecurityGroups"]
    return [g["GroupId"] for g in groups]


def test_a_build_makes_a_tagged_image_and_leaves_no_builder(srun, write, aws):
    path = write(image("baked", "echo baking\necho done"))
    plan = srun("diff", "-f", path)
    assert "build image: no image yet" in plan.out, plan.out
    assert "at most $0.00" in plan.out or "at most $" in plan.out
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    (made,) = owned_images(aws, "baked")
    tags = {t["Key"]: t["Value"] for t in made["Tags"]}
    assert made["State"] == "available"
    assert len(tags["reconciler.io/recipe"]) == 64
    assert tags["reconciler.io/base"].startswith("ami-")
    assert made["Name"].startswith("baked-") and tags["reconciler.io/recipe"][:8] in made["Name"]
    assert live_builders(aws) == [], "the builder is terminated"
    assert builder_groups(aws) == [], "the builder's security group is deleted"

    again = srun("apply", "-f", path)
    assert again.code == 0 and again.writes == 0, again.out + again.err
    assert "RunInstances" not in " ".join(again.calls)

    changed = write(image("baked", "echo baking\necho more"))
    plan = srun("diff", "-f", changed)
    assert "build.script changed" in plan.out, plan.out
    result = srun("apply", "-f", changed)
    assert result.code == 0, result.out + result.err
    assert len([i for i in owned_images(aws, "baked") if i["State"] == "available"]) == 2


def test_a_failed_script_fails_with_its_last_lines_and_leaves_nothing(srun, write, aws):
    path = write(image("broken", "echo step one\necho it broke >&2\nexit 4"))
    result = srun("apply", "-f", path)
    assert result.code != 0
    assert "exited with 4" in result.out + result.err
    assert "it broke" in result.out + result.err
    assert owned_images(aws, "broken") == []
    assert live_builders(aws) == []
    assert builder_groups(aws) == []


def test_keep_deregisters_old_images_and_deletes_their_snapshots(srun, write, aws):
    ec2 = client(aws, "ec2")
    for i in range(3):
        path = write(image("kept", f"echo build {i}", "  keep: 1\n"))
        result = srun("apply", "-f", path)
        assert result.code == 0, result.out + result.err
    left = owned_images(aws, "kept")
    assert len(left) == 1
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    mine = {m["Ebs"]["SnapshotId"] for m in left[0]["BlockDeviceMappings"] if m.get("Ebs")}
    assert mine <= snapshots
    tagged = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:reconciler.io/name", "Values": ["kept"]}]
    )["Snapshots"]
    assert {s["SnapshotId"] for s in tagged} == mine, "old images' snapshots are deleted"
