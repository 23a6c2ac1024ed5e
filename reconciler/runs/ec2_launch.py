"""Launching an EC2 task's instance: everything in one RunInstances, retried safely.

Tags go in `TagSpecifications` (instance, volumes, spot request), so there is no moment when an
instance of ours exists untagged and could leak; `InstanceInitiatedShutdownBehavior=terminate`
makes the script's end (the user data's `shutdown` on EXIT) the instance's end; a `ClientToken`
derived from the run, the task and the attempt makes a retried call (a lost reply) return the
instance the first call made instead of a second one. Capacity errors (no capacity, instance
limit, no free address in the subnet, spot price too low) are definitive for that attempt: the
next attempt picks another subnet at random after a random wait, as the BigDataScript seed does,
within `LaunchRetries`.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from typing import Any

from reconciler.engine.context import Context
from reconciler.errors import PlanError
from reconciler.models.common import MachineImageReference
from reconciler.models.ec2_task import Ec2Settings, ImageLookup

CAPACITY = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InstanceLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
        "InsufficientHostCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "Unsupported",  # the instance type is not offered in that subnet's zone
    }
)
TOKEN_MAX = 64


ATTEMPTS_ENV = "RECONCILER_EC2_LAUNCH_ATTEMPTS"
MAX_WAIT_ENV = "RECONCILER_EC2_LAUNCH_MAX_WAIT"
BOOT_SLACK_ENV = "RECONCILER_EC2_BOOT_SLACK_SECONDS"
BOOT_SLACK = 600.0
# On every instance launched for a task or an image build: epoch seconds after which `gc` may
# end it (its timeout plus the boot slack), so a killed CLI's instance never outlives that.
DEADLINE = "reconciler.io/deadline"
# What RunInstances acts on besides the instance (IAM authorises each): its volumes, network
# interface, spot request, subnet, groups and image (Amazon's images have no account in their
# ARN). The permissions of every kind that launches (EC2 tasks, image builders) name these.
LAUNCH_RESOURCES = (
    "instance/*",
    "volume/*",
    "network-interface/*",
    "spot-instances-request/*",
    "subnet/*",
    "security-group/*",
    "arn:{partition}:ec2:{region}::image/*",
)


@dataclass(frozen=True)
class LaunchRetries:
    """The seed's defaults: 50 attempts, waits of up to 60 s; settable by environment."""

    attempts: int = 50
    max_wait: float = 60.0

    @classmethod
    def from_env(cls) -> LaunchRetries:
        try:
            return cls(
                int(os.environ.get(ATTEMPTS_ENV) or cls.attempts),
                float(os.environ.get(MAX_WAIT_ENV) or cls.max_wait),
            )
        except ValueError as exc:
            raise PlanError(f"{ATTEMPTS_ENV} / {MAX_WAIT_ENV}: not a number: {exc}") from exc


def boot_slack_from_env() -> float:
    """Seconds an instance may take to boot (and install the agent) beyond its task's timeout
    before the driver (or `gc`, for a detached task) terminates it: the agent ends the script
    itself at the timeout, so an instance still there that much later is hung (a boot that
    never finished, a dead agent). 600 by default; settable for slow images, or tests."""
    try:
        value = float(os.environ.get(BOOT_SLACK_ENV) or BOOT_SLACK)
    except ValueError as exc:
        raise PlanError(f"{BOOT_SLACK_ENV}: not a number: {exc}") from exc
    if not 0 <= value < float("inf"):
        raise PlanError(f"{BOOT_SLACK_ENV}: must be 0 or more seconds, not {value}")
    return value


def client_token(stack: str, kind: str, name: str, run: str, task: str, attempt: int) -> str:
    """Idempotency token of one launch attempt (AWS: at most 64 ASCII characters)."""
    text = f"{stack}/{kind}/{name}/{run}/{task}/{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()[:TOKEN_MAX]


def resolve_image(ctx: Context, image: str | ImageLookup | MachineImageReference) -> str:
    """An AMI ID as given, or the newest image the lookup matches (by creation date). A
    machine image of the stack is put in by its kind before the run (kinds/ of Pipeline)."""
    if isinstance(image, str):
        return image
    if isinstance(image, MachineImageReference):
        raise PlanError(f"ec2.image: {image.machineImage}: no image built yet")

    def find() -> str:
        filters = [
            {"Name": "name", "Values": [image.name]},
            {"Name": "state", "Values": ["available"]},
        ]
        if image.architecture:
            filters.append({"Name": "architecture", "Values": [image.architecture]})
        found = ctx.aws.client("ec2").describe_images(Owners=image.owners, Filters=filters)
        images = found.get("Images") or []
        if not images:
            raise PlanError(
                f"no available image named {image.name!r} owned by {', '.join(image.owners)}"
            )
        return str(max(images, key=lambda i: i.get("CreationDate") or "")["ImageId"])

    key = ("image", image.model_dump_json())
    return str(ctx.resolver.once(key, find))


def tag_specifications(tags: dict[str, str], spot: bool) -> list[dict[str, Any]]:
    pairs = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    kinds = ["instance", "volume"] + (["spot-instances-request"] if spot else [])
    return [{"ResourceType": kind, "Tags": pairs} for kind in kinds]


def launch_request(
    settings: Ec2Settings,
    *,
    image_id: str,
    subnet: str | None,
    security_groups: list[str],
    profile: str | None,
    user_data: str,
    tags: dict[str, str],
    token: str,
) -> dict[str, Any]:
    """The RunInstances request of one attempt (pure, for tests and the saved request file)."""
    request: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": settings.instanceType,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data,
        "ClientToken": token,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": tag_specifications(tags, settings.spot is not None),
        "MetadataOptions": {"HttpTokens": "required"},  # IMDSv2 only
    }
    if subnet:
        request["SubnetId"] = subnet
    if security_groups:
        request["SecurityGroupIds"] = security_groups
    if profile:
        key = "Arn" if profile.startswith("arn:") else "Name"
        request["IamInstanceProfile"] = {key: profile}
    if settings.spot is not None:
        options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if settings.spot.maxPrice:
            options["MaxPrice"] = settings.spot.maxPrice
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
    if settings.volumeSizeGiB:
        request["BlockDeviceMappings"] = [
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": settings.volumeSizeGiB}}
        ]
    return request


def jitter(ceiling: float) -> float:
    """A random wait before the next attempt, so that many tasks do not retry in step."""
    return random.uniform(min(1.0, ceiling), ceiling)
