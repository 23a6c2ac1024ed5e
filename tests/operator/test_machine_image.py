"""A MachineImage in the cluster: the controller bakes it over several reconciles (kopf over
HTTP against the emulator, the engine against the sandbox's moto, where the builder really
runs its script), then keeps it without building again."""

from __future__ import annotations

import time

from tests.conftest import client
from tests.operator.conftest import NAMESPACE, manifest, wait_for

IMAGE = """
apiVersion: reconciler.io/v1alpha1
kind: MachineImage
metadata:
  name: tools
spec:
  base: {owners: [amazon], name: amzn2-ami-hvm-*, architecture: x86_64}
  build:
    instanceTypes: [t3.micro]
    timeoutSeconds: 600
    script: echo baked
"""


def test_the_controller_bakes_a_machine_image_once_and_leaves_no_builder(start_operator, aws):
    op = start_operator(drift_interval=1.0)
    op.client.create(NAMESPACE, manifest(IMAGE))

    def built():
        status = (op.obj("MachineImage", "tools") or {}).get("status") or {}
        return status if str(status.get("imageId") or "").startswith("ami-") else None

    status = wait_for("the image to be built", built, timeout=180)
    ec2 = client(aws, "ec2")
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "tag:reconciler.io/name", "Values": ["tools"]}]
    )["Images"]
    assert [i["ImageId"] for i in images] == [status["imageId"]]
    assert images[0]["State"] == "available"
    wait_for(
        "the builder to be terminated",
        lambda: all(
            i["State"]["Name"] == "terminated"
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        ),
        timeout=60,
    )
    launched = op.stats.calls["ec2:RunInstances"]
    time.sleep(3)  # drift ticks: an image of the current recipe is never built again
    assert op.stats.calls["ec2:RunInstances"] == launched == 1
    assert op.stats.calls.get("ec2:CreateImage") == 1
    # Its snapshots are tagged like it, and it no longer says its build is unfinished.
    (image,) = ec2.describe_images(ImageIds=[status["imageId"]])["Images"]
    assert "reconciler.io/unfinished-build" not in {t["Key"] for t in image.get("Tags", [])}
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    (snap,) = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    assert {t["Key"]: t["Value"] for t in snap.get("Tags", [])}.get("reconciler.io/name") == "tools"
