"""What a fresh AWS account has ready for Batch, recreated in an empty moto server.

moto already has a default VPC with a default subnet per availability zone and a `default`
security group; the roles Batch users expect are added here: the Batch service-linked role,
the classic AWSBatchServiceRole, ecsInstanceRole with its instance profile, a spot fleet role
and a task execution role. And the example stack's Slack webhook: the Secrets Manager secret
`slack/batch-alerts` (manifests/examples/notifications.yaml names it), whose URL is the
sandbox's own Slack stand-in (`SLACK_SINK_URL`: batch_events keeps those messages locally
instead of posting them anywhere).

`reconciler.sandbox.manager.prepare_new` calls `seed_account` with boto3 clients of a new server,
in the process that started it (the CLI's): this module does not import moto.
"""

from __future__ import annotations

import json
from typing import Any

SEED = 42  # fixed, so that replaying the recording regenerates the same IDs
# The seed request of a new sandbox; `streams=request` asks for a random stream per recorded
# request (reconciler.sandbox.request_streams). moto itself reads only `a`.
SEED_PATH = "/moto-api/seed"
STREAMS_PARAM, STREAMS_VALUE = "streams", "request"
SEED_QUERY = f"a={SEED}&{STREAMS_PARAM}={STREAMS_VALUE}"

# The role CreateComputeEnvironment falls back to (reconciler.sandbox.resource_patches).
SERVICE_LINKED_ROLE_NAME = "AWSServiceRoleForBatch"
SERVICE_LINKED_ROLE_PATH = "/aws-service-role/batch.amazonaws.com/"


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


ROLES = (
    (SERVICE_LINKED_ROLE_NAME, SERVICE_LINKED_ROLE_PATH, "batch.amazonaws.com"),
    ("AWSBatchServiceRole", "/service-role/", "batch.amazonaws.com"),
    ("ecsInstanceRole", "/", "ec2.amazonaws.com"),
    ("AmazonEC2SpotFleetRole", "/", "spotfleet.amazonaws.com"),
    ("ecsTaskExecutionRole", "/", "ecs-tasks.amazonaws.com"),
    ("BatchJobRole", "/", "ecs-tasks.amazonaws.com"),
)


# The example's webhook secret, and the URL it holds: not a real webhook (no such workspace);
# the sandbox writes what is posted to it to slack.jsonl in its state directory.
SLACK_SECRET = "slack/batch-alerts"
SLACK_SINK_URL = "https://hooks.slack.com/services/T00000000/B00000000/reconciler-sandbox"


def seed_account(iam: Any, ec2: Any, secrets: Any | None = None) -> None:
    for name, path, service in ROLES:
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=_trust(service))
    iam.create_instance_profile(InstanceProfileName="ecsInstanceRole")
    iam.add_role_to_instance_profile(
        InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole"
    )
    ec2.describe_vpcs()  # makes moto create the default VPC now, under the fixed seed
    if secrets is not None:  # last: what comes before keeps the IDs it always had
        secrets.create_secret(Name=SLACK_SECRET, SecretString=SLACK_SINK_URL)
