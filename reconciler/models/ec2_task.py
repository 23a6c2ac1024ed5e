"""What a task that runs its script on an EC2 instance of its own takes (BigDataScript's
`task(system := 'aws')`): the instance to launch, the script, and the files it reads and
writes. Not a kind: a part of Task and of a Pipeline's tasks, next to the Batch fields.

The instance runs the script under the agent shipped in this package (reconciler/agent/), which
streams its output back through the run's SQS queue and keeps it in S3; the instance shuts
itself down (and so terminates) when the script ends.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from reconciler.models.common import (
    MachineImageReference,
    RoleReference,
    SecurityGroupRef,
    Strict,
    SubnetRef,
)

# EC2 caps user data at 16 KB; the agent and a small script travel inside it (reconciler/agent).
USER_DATA_MAX = 16 * 1024
S3_URL = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
S3Url = Annotated[str, Field(pattern=S3_URL, max_length=1024)]
INSTANCE_TYPE = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"
INSTANCE_PROFILE = Annotated[str, Field(pattern=r"^[\w+=,.@-]+$", max_length=128)]


class ImageLookup(Strict):
    """The newest image matching, resolved when a run launches (DescribeImages)."""

    owners: list[str] = Field(min_length=1, description="amazon, self, or account IDs.")
    name: str = Field(min_length=1, max_length=128, description="Name pattern, * wildcards.")
    architecture: str | None = Field(default=None, description="x86_64 or arm64.")


class Spot(Strict):
    maxPrice: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?$",
        description="Dollars per hour; unset: the on-demand price caps it, as AWS does.",
    )


class Ec2Settings(Strict):
    instanceType: str = Field(pattern=INSTANCE_TYPE, max_length=64)
    image: (
        Annotated[str, Field(pattern=r"^ami-[0-9a-f]+$")] | ImageLookup | MachineImageReference
    ) = Field(
        description="An AMI ID, a lookup resolved to the newest match, or {machineImage: "
        "NAME} of the stack (its image once built: the task runs after the build)."
    )
    subnets: list[SubnetRef] | None = Field(
        default=None,
        max_length=16,
        description="IDs or lookups; one is picked at random per launch attempt. Unset: the "
        "default VPC's subnets.",
    )
    securityGroupIds: list[SecurityGroupRef] | None = Field(
        default=None, max_length=5, description="Unset: the default VPC's default group."
    )
    instanceProfile: INSTANCE_PROFILE | RoleReference | None = Field(
        default=None,
        description="An instance profile name, or {role: NAME, instanceProfile: true} of a Role "
        "of the stack. The agent needs sqs:SendMessage on the run's queue and s3:PutObject on "
        "the run's prefix.",
    )
    spot: Spot | None = None
    keepInstanceAliveAfterFinish: bool = Field(
        default=False,
        description="Leave the instance running after the script ends (for debugging); it is "
        "then yours to terminate (or `reconciler gc`).",
    )
    volumeSizeGiB: int | None = Field(default=None, ge=1, le=16384)

    @model_validator(mode="after")
    def _profile_is_an_instance_profile(self) -> Ec2Settings:
        if (
            isinstance(self.instanceProfile, RoleReference)
            and not self.instanceProfile.instanceProfile
        ):
            raise ValueError(
                "instanceProfile: an instance needs the role's instance profile: "
                "{role: NAME, instanceProfile: true}"
            )
        return self


BATCH_ONLY = (
    "jobDefinition",
    "jobQueue",
    "parameters",
    "containerOverrides",
    "arrayProperties",
    "retryStrategy",
    "propagateTags",
    "schedulingPriorityOverride",
    "shareIdentifier",
)
