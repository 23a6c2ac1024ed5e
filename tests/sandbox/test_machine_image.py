"""MachineImage on the sandbox (issue #12): a builder instance really runs the script under the
agent, the image is created from it and tagged with the recipe hash, and nothing of the build
is left; over HTTP only (the CLI, and plain boto3 to look)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import ec2_faults
from tests.conftest import client
from tests.sandbox.test_ec2_tasks import _cli_in_background, _wait_for
from tests.stacks import ce, jq

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
    assert "baked/image-builder: baking" in result.out, "the script's output, live"
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


def test_the_newest_base_is_built_on_and_a_newer_one_rebuilds_unless_pinned(srun, write, aws):
    ec2 = client(aws, "ec2")
    amazon = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]
    )
    source = ec2.run_instances(
        ImageId=amazon["Images"][0]["ImageId"], MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )["Instances"][0]["InstanceId"]

    def base(n: int) -> str:
        image_id = ec2.create_image(InstanceId=source, Name=f"mybase-{n}")["ImageId"]
        time.sleep(1.1)  # creation dates a second apart
        return str(image_id)

    first, second = base(1), base(2)
    lookup = "  base: {owners: [self], name: mybase-*}\n"
    text = image("based", "echo on base").replace(
        "  base: {owners: [amazon], name: amzn2-ami-hvm-*, architecture: x86_64}\n", lookup
    )
    path = write(text)
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    (made,) = owned_images(aws, "based")
    assert {t["Key"]: t["Value"] for t in made["Tags"]}["reconciler.io/base"] == second != first

    third = base(3)
    plan = srun("diff", "-f", path)
    assert f"base {second} -> {third}" in plan.out, plan.out
    pinned = write(text + "  rebuildOnNewBase: false\n")
    plan = srun("diff", "-f", pinned)
    assert "No changes" in plan.out, plan.out
    ec2.terminate_instances(InstanceIds=[source])


def test_keep_spares_an_image_an_instance_still_runs(srun, write, aws):
    ec2 = client(aws, "ec2")
    path = write(image("spared", "echo one", "  keep: 1\n"))
    assert srun("apply", "-f", path).code == 0
    (first,) = owned_images(aws, "spared")
    user = ec2.run_instances(ImageId=first["ImageId"], MinCount=1, MaxCount=1)["Instances"][0]
    path = write(image("spared", "echo two", "  keep: 1\n"))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    assert f"kept in use: {first['ImageId']}" in result.out, result.out
    assert first["ImageId"] in {i["ImageId"] for i in owned_images(aws, "spared")}
    ec2.terminate_instances(InstanceIds=[user["InstanceId"]])
    again = srun("apply", "-f", path)
    assert again.code == 0, again.out + again.err
    assert [i["ImageId"] for i in owned_images(aws, "spared")] != [first["ImageId"]]
    assert len(owned_images(aws, "spared")) == 1


def test_an_interrupted_build_continues_on_the_next_apply(srun, write, aws):
    path = write(image("resumed", "echo started\nsleep 4\necho finished"))
    proc = _cli_in_background(aws, path)
    try:
        _wait_for(lambda: live_builders(aws))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    srun("unlock", "--force")  # the killed apply held the stack's lease
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    assert "RunInstances" not in " ".join(result.calls), "the running builder is used"
    assert len(owned_images(aws, "resumed")) == 1
    assert live_builders(aws) == [] and builder_groups(aws) == []


def test_gc_ends_the_builder_and_its_group_after_kill_9(srun, write, aws):
    path = write(image("orphaned", "echo started\nsleep 60"))
    proc = _cli_in_background(aws, path)
    try:
        _wait_for(lambda: live_builders(aws))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert live_builders(aws) and builder_groups(aws)
    srun("unlock", "--force")
    dry = srun("gc", "--dry-run")
    assert "would end instance" in dry.out and "would end security group" in dry.out, dry.out
    done = srun("gc")
    assert done.code == 0, done.out + done.err
    _wait_for(lambda: not live_builders(aws))
    assert builder_groups(aws) == []
    assert "nothing left behind" in srun("gc").out


def test_a_builders_deadline_counts_the_boot_slack_setting(srun, write, aws, monkeypatch):
    """As an EC2 task's instance: gc may end a builder its timeout plus the boot slack after
    launch, and the slack is RECONCILER_EC2_BOOT_SLACK_SECONDS, not a fixed 600 s."""
    monkeypatch.setenv("RECONCILER_EC2_BOOT_SLACK_SECONDS", "soon")
    path = write(image("slack", "echo started\nsleep 60"))
    refused = srun("apply", "-f", path)
    assert refused.code != 0 and "RECONCILER_EC2_BOOT_SLACK_SECONDS: not a number" in refused.err
    assert "Traceback" not in refused.err and live_builders(aws) == []
    monkeypatch.setenv("RECONCILER_EC2_BOOT_SLACK_SECONDS", "30")
    launched = time.time()
    proc = _cli_in_background(aws, path)
    try:
        _wait_for(lambda: live_builders(aws))
        [builder] = live_builders(aws)
        reservations = client(aws, "ec2").describe_instances(InstanceIds=[builder])
        [instance] = reservations["Reservations"][0]["Instances"]
        deadline = float({t["Key"]: t["Value"] for t in instance["Tags"]}["reconciler.io/deadline"])
        assert launched + 600 + 30 - 1 <= deadline <= time.time() + 600 + 30 + 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    srun("unlock", "--force")
    assert srun("gc").code == 0
    _wait_for(lambda: not live_builders(aws))


def test_deregister_image_deletes_its_snapshots_when_asked_as_aws_does(aws):
    ec2 = client(aws, "ec2")
    amazon = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]
    )
    source = ec2.run_instances(
        ImageId=amazon["Images"][0]["ImageId"], MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )["Instances"][0]["InstanceId"]

    def snapshot_of(image_id: str) -> str:
        (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
        return str(image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])

    def snapshots() -> set[str]:
        return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}

    kept = ec2.create_image(InstanceId=source, Name="keeps-snapshot")["ImageId"]
    gone = ec2.create_image(InstanceId=source, Name="loses-snapshot")["ImageId"]
    kept_snapshot, gone_snapshot = snapshot_of(kept), snapshot_of(gone)
    ec2.deregister_image(ImageId=kept)
    ec2.deregister_image(ImageId=gone, DeleteAssociatedSnapshots=True)
    assert kept_snapshot in snapshots(), "without the flag AWS keeps the snapshot"
    assert gone_snapshot not in snapshots()
    ec2.terminate_instances(InstanceIds=[source])


def test_a_compute_environment_follows_its_machine_image_build_first(srun, write, aws):
    uses = "    ec2Configuration: [{imageType: ECS_AL2, imageIdOverride: {machineImage: octave}}]\n"

    def manifests(script: str) -> str:
        return image("octave", script) + "---" + ce() + uses + "---" + jq()

    path = write(manifests("echo one"))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    (first,) = owned_images(aws, "octave")

    def override() -> str:
        (env,) = client(aws).describe_compute_environments(computeEnvironments=["spot-ce"])[
            "computeEnvironments"
        ]
        return str(env["computeResources"]["ec2Configuration"][0]["imageIdOverride"])

    assert override() == first["ImageId"]
    assert srun("diff", "-f", path).code == 0, "nothing to do once built and used"

    path = write(manifests("echo two"))
    plan = srun("diff", "-f", path)
    assert "build.script changed" in plan.out, plan.out
    assert "(new image of MachineImage/octave)" in plan.out, plan.out
    assert "infrastructure update in place" in plan.out, plan.out
    assert plan.out.index("MachineImage/octave") < plan.out.index("ComputeEnvironment/spot-ce")
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    (second,) = [i for i in owned_images(aws, "octave") if i["ImageId"] != first["ImageId"]]
    assert override() == second["ImageId"]


def test_a_capacity_error_moves_the_builder_to_the_next_instance_type(srun, write, aws):
    ec2_faults.fail_launches(aws, 1, instance_type="t3.micro")
    path = write(image("moved", "echo ok").replace("[t3.micro]", "[t3.micro, t3.small]"))
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    assert "InsufficientInstanceCapacity for t3.micro" in result.out, result.out
    reservations = client(aws, "ec2").describe_instances(
        Filters=[{"Name": "tag:reconciler.io/name", "Values": ["moved"]}]
    )["Reservations"]
    assert [i["InstanceType"] for r in reservations for i in r["Instances"]] == ["t3.small"]


def test_a_failed_build_is_recorded_and_built_again_only_when_asked(srun, write, aws):
    path = write(image("flaky", "echo fetching\nexit 5"))
    first = srun("apply", "-f", path)
    assert first.code != 0 and "exited with 5" in first.out + first.err

    again = srun("apply", "-f", path)  # the same recipe: refused, not paid for twice
    assert again.code != 0
    assert "the last build of recipe" in again.out + again.err, again.out + again.err
    assert "raise spec.rebuild" in again.out + again.err
    assert again.calls.get("ec2:RunInstances", 0) == 0, again.calls
    assert live_builders(aws) == []

    path = write(image("flaky", "echo fetching\nexit 5", "  rebuild: 1\n"))
    plan = srun("diff", "-f", path)
    assert "build image: no image yet" in plan.out, plan.out  # a new recipe: built again
    assert "the last build" not in plan.out
    retried = srun("apply", "-f", path)
    assert retried.calls.get("ec2:RunInstances", 0) == 1, retried.calls
    assert "exited with 5" in retried.out + retried.err
    assert owned_images(aws, "flaky") == [] and live_builders(aws) == []


def test_an_ssm_parameter_base_is_resolved_to_its_image(srun, write, aws):
    parameter = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    expected = client(aws, "ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    text = image("ecs", "echo ok").replace(
        "{owners: [amazon], name: amzn2-ami-hvm-*, architecture: x86_64}",
        f"{{ssmParameter: {parameter}}}",
    )
    result = srun("apply", "-f", write(text))
    assert result.code == 0, result.out + result.err
    (built,) = owned_images(aws, "ecs")
    tags = {t["Key"]: t["Value"] for t in built["Tags"]}
    assert tags["reconciler.io/base"] == expected


def test_an_ec2_task_boots_its_machine_image_with_the_builders_profile(srun, write, aws):
    role = (
        f"{HEADER}kind: Role\nmetadata: {{name: agent}}\nspec:\n"
        "  trustedServices: [ec2.amazonaws.com]\n  instanceProfile: true\n"
    )
    profile = "    instanceProfile: {role: agent, instanceProfile: true}\n"
    built = image("tools", "echo baked").replace(
        "    timeoutSeconds: 600\n", profile + "    timeoutSeconds: 600\n"
    )
    task = (
        f"{HEADER}kind: Task\nmetadata: {{name: use}}\nspec:\n"
        "  ec2: {instanceType: t3.micro, image: {machineImage: tools},\n"
        "        instanceProfile: {role: agent, instanceProfile: true}}\n"
        "  script: echo running on the baked image\n"
    )
    path = write(role + "---\n" + built + "---\n" + task)
    plan = srun("diff", "-f", path)
    assert plan.out.index("MachineImage/tools") < plan.out.index("Task/use"), plan.out
    result = srun("apply", "-f", path)
    assert result.code == 0, result.out + result.err
    assert "use/use: running on the baked image" in result.out, result.out
    (image_,) = owned_images(aws, "tools")
    reservations = client(aws, "ec2").describe_instances()["Reservations"]
    by_task = {
        {t["Key"]: t["Value"] for t in i["Tags"]}["reconciler.io/task"]: i
        for r in reservations
        for i in r["Instances"]
    }
    assert by_task["use"]["ImageId"] == image_["ImageId"]
    # The builder and the task were launched with the role's instance profile (a terminated
    # instance no longer shows it: their launch records do).
    s3 = client(aws, "s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if "scratch" in b["Name"]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    records = [k for k in keys if k.endswith("ec2.json") or "/launch" in k]
    profiles = set()
    for key in records:
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        profiles.add(body["request"]["IamInstanceProfile"]["Arn"].rsplit(":", 1)[1])
    assert len(records) == 2 and profiles == {"instance-profile/agent"}, records
    assert srun("diff", "-f", path).code == 0, "built and run: nothing to do"


def test_gc_with_the_manifests_deletes_images_of_machine_images_no_longer_declared(
    srun, write, aws
):
    kept, gone = image("kept", "echo one"), image("gone", "echo two")
    both = write(kept + "---\n" + gone, "both.yaml")
    assert srun("apply", "-f", both).code == 0
    (old,) = owned_images(aws, "gone")
    snapshots = [m["Ebs"]["SnapshotId"] for m in old["BlockDeviceMappings"] if "Ebs" in m]
    only_kept = write(kept, "kept.yaml")

    assert "MachineImage/gone" not in srun("gc").out, "without manifests, no image is touched"
    dry = srun("gc", "-f", only_kept, "--dry-run")
    assert "would delete MachineImage/gone" in dry.out, dry.out
    assert "MachineImage/kept" not in dry.out
    assert len(owned_images(aws, "gone")) == 1

    done = srun("gc", "-f", only_kept)
    assert done.code == 0, done.out + done.err
    assert owned_images(aws, "gone") == [] and len(owned_images(aws, "kept")) == 1
    left = client(aws, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert not {s["SnapshotId"] for s in left} & set(snapshots), "its snapshots went with it"
