"""An EC2 task in the cluster: the controller drives its run (kopf over HTTP against the
emulator, the engine against the sandbox's moto, where the instance really runs its script)."""

from __future__ import annotations

import time

from tests.conftest import client
from tests.operator.conftest import NAMESPACE, manifest, wait_for

TASK = """
apiVersion: reconciler.io/v1alpha1
kind: Task
metadata:
  name: count
spec:
  ec2: {instanceType: t3.micro, image: {owners: [amazon], name: amzn2-ami-hvm-*}}
  script: |
    echo HI
    echo BYE
"""


def test_the_controller_drives_an_ec2_task_to_its_end_once(start_operator, aws):
    op = start_operator(drift_interval=1.0)
    op.client.create(NAMESPACE, manifest(TASK))

    def finished():
        status = (op.obj("Task", "count") or {}).get("status") or {}
        return status if status.get("runStatus") in ("SUCCEEDED", "FAILED") else None

    status = wait_for("the EC2 task to end", finished, timeout=120)
    assert status["runStatus"] == "SUCCEEDED", status
    assert status["tasks"] == {"count": {"SUCCEEDED": 1}}
    ec2 = client(aws, "ec2")

    def states() -> list[str]:
        reservations = ec2.describe_instances()["Reservations"]
        return [i["State"]["Name"] for r in reservations for i in r["Instances"]]

    # The agent reports the exit code, then shuts the instance down (it goes away: launched
    # with InstanceInitiatedShutdownBehavior=terminate), so the status may come first.
    wait_for("the instance to terminate itself", lambda: states() == ["terminated"], timeout=30)
    # The run's queue is gone once the controller recorded the run's end.
    wait_for(
        "the run's queue to be deleted",
        lambda: (
            not client(aws, "sqs").list_queues(QueueNamePrefix="reconciler-run-").get("QueueUrls")
        ),
        timeout=30,
    )
    launched = op.stats.calls["ec2:RunInstances"]
    time.sleep(2.5)  # drift passes: an ended run is never launched again
    assert op.stats.calls["ec2:RunInstances"] == launched == 1
