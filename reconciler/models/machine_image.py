"""MachineImage: a custom AMI baked from a base image and a script, rebuilt only when what it is
made of changes (issue #12).

A build starts a builder instance from the base image (the EC2-task launch and agent), runs the
script, stops the instance and creates the image from it. The image carries a recipe hash: the
resolved base image id and everything under `build` that changes the image (script, files by
their S3 ETags, the instance architecture). An owned, available image with the hash of the
current recipe means nothing is built. The pure parts (the hash, why a build is needed, what it
costs at most, the image name) live here so that they are tested without AWS.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from reconciler.models.common import (
    MachineImageReference,
    Resource,
    RoleReference,
    SecurityGroupRef,
    Spec,
    Strict,
    SubnetRef,
    Tags,
)
from reconciler.models.ec2_task import INSTANCE_PROFILE, INSTANCE_TYPE, ImageLookup, S3Url, Spot

__all__ = ["MachineImageReference"]  # where compute environments and EC2 tasks name it

AMI_ID = r"^ami-[0-9a-f]+$"
SSM_PARAMETER = r"^(resolve:ssm:)?/[A-Za-z0-9_./-]+$"
# EC2 image names: 3..128 characters of letters, digits, ( ) [ ] space . / - ' @ _ [CreateImage]
IMAGE_NAME_MAX = 128
IMAGE_NAME_CHARS = re.compile(r"^[A-Za-z0-9()\[\] ./'@_-]+$")
TEMPLATE_FIELDS = ("date", "hash8")
TIMEOUT_MAX = 24 * 3600
KEEP_MAX = 100


class SsmParameter(Strict):
    """An SSM public parameter naming an AMI, such as
    `/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id`."""

    ssmParameter: str = Field(pattern=SSM_PARAMETER, max_length=2048)


class BuildFile(Strict):
    """An S3 object copied onto the builder before the script runs; its ETag is part of the
    recipe, so a new version of the object rebuilds the image."""

    source: S3Url
    path: str = Field(
        pattern=r"^/", max_length=1024, description="Absolute path; ending in / is a directory."
    )


class Build(Strict):
    instanceTypes: list[Annotated[str, Field(pattern=INSTANCE_TYPE, max_length=64)]] = Field(
        min_length=1,
        max_length=10,
        description="One per launch attempt, in order; a capacity error moves to the next.",
    )
    spot: Spot | None = None
    subnets: list[SubnetRef] | None = Field(
        default=None, max_length=16, description="Unset: the default VPC's subnets."
    )
    securityGroupIds: list[SecurityGroupRef] | None = Field(
        default=None,
        max_length=5,
        description="Unset: a group the tool creates with no inbound rule, deleted after.",
    )
    instanceProfile: INSTANCE_PROFILE | RoleReference | None = Field(
        default=None,
        description="The builder's instance profile: a name, or {role: NAME, instanceProfile: "
        "true} of a Role of the stack. The agent needs sqs:SendMessage on the build's queue "
        "and s3:PutObject on its prefix in the scratch bucket; build files need s3:GetObject.",
    )
    script: str = Field(min_length=1, max_length=64 * 1024)
    files: list[BuildFile] | None = Field(default=None, max_length=50)
    timeoutSeconds: int = Field(default=3600, ge=60, le=TIMEOUT_MAX)
    volumeSizeGiB: int | None = Field(default=None, ge=1, le=16384)

    @field_validator("instanceTypes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an instance type appears twice")
        return value

    @field_validator("instanceProfile")
    @classmethod
    def _profile(cls, value: Any) -> Any:
        if isinstance(value, RoleReference) and not value.instanceProfile:
            raise ValueError(
                "an instance needs the role's instance profile: {role: NAME, instanceProfile: true}"
            )
        return value


class Ebs(Strict):
    volumeSize: int | None = Field(default=None, ge=1, le=16384)
    volumeType: Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"] | None = None
    iops: int | None = Field(default=None, ge=100, le=256000)
    throughput: int | None = Field(default=None, ge=125, le=1000)
    encrypted: bool | None = None
    deleteOnTermination: bool | None = None


class BlockDeviceMapping(Strict):
    deviceName: str = Field(pattern=r"^/dev/[a-z0-9]+$", max_length=32)
    ebs: Ebs


class Image(Strict):
    nameTemplate: str = Field(
        default="{name}-{date}-{hash8}",
        max_length=IMAGE_NAME_MAX,
        description="The image name; {name} (metadata.name), {date} (UTC, YYYYMMDD-HHMMSS) "
        "and {hash8} (the recipe hash's first 8 characters) are filled in. It must contain "
        "{hash8} or {date}: image names are unique per account and region.",
    )
    blockDeviceMappings: list[BlockDeviceMapping] | None = Field(default=None, max_length=16)
    tags: Tags | None = None

    @field_validator("nameTemplate")
    @classmethod
    def _template(cls, value: str) -> str:
        fields = set(re.findall(r"\{([^{}]*)\}", value))
        unknown = sorted(fields - {"name", *TEMPLATE_FIELDS})
        if unknown:
            raise ValueError(f"unknown field {{{unknown[0]}}}: use {{name}}, {{date}}, {{hash8}}")
        if not fields & set(TEMPLATE_FIELDS):
            raise ValueError("needs {hash8} or {date}: every build needs a name of its own")
        literal = re.sub(r"\{[^{}]*\}", "x", value)
        if not IMAGE_NAME_CHARS.match(literal):
            raise ValueError(
                "image names take letters, digits, spaces and ( ) [ ] . / - ' @ _ only"
            )
        return value


class MachineImageSpec(Spec):
    base: Annotated[str, Field(pattern=AMI_ID, max_length=64)] | SsmParameter | ImageLookup = Field(
        description="An AMI id, {ssmParameter: /aws/service/...}, or a lookup {owners, name, "
        "architecture} resolved to the newest match by creation date."
    )
    rebuildOnNewBase: bool = Field(
        default=True,
        description="A newer base image rebuilds; false keeps the base of the last build.",
    )
    build: Build
    image: Image = Field(default_factory=Image)
    rebuild: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Part of the recipe: raise it to build the same recipe again (a failed "
        "build of a recipe is recorded and not retried on its own, so it is not paid twice).",
    )
    keep: int = Field(
        default=3,
        ge=1,
        le=KEEP_MAX,
        description="Owned images kept; older ones are deregistered with their snapshots, "
        "unless something still uses them.",
    )

    @model_validator(mode="after")
    def _files_distinct(self) -> MachineImageSpec:
        targets = [f"{f.source} {f.path}" for f in self.build.files or []]
        if len(set(targets)) != len(targets):
            raise ValueError("build.files: the same file is copied to the same path twice")
        return self


class MachineImage(Resource):
    """A custom AMI baked from a base image and a script, rebuilt when its recipe changes."""

    KIND: ClassVar[str] = "MachineImage"
    PLURAL: ClassVar[str] = "machineimages"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mi",)

    kind: Literal["MachineImage"]
    spec: MachineImageSpec

    def references(self) -> list[tuple[str, str, str]]:
        profile = self.spec.build.instanceProfile
        if isinstance(profile, RoleReference):
            return [("Role", profile.role, "spec.build.instanceProfile")]
        return []


class ImageState(Strict):
    """What the engine compares for a MachineImage: the recipe hash of its current image (and
    its tags), not the spec: a build is decided by what the image is made of."""

    recipe: str | None = None
    tags: dict[str, str] | None = None


NEW_IMAGE = "(new image of MachineImage/{name})"


def new_image(name: str) -> str:
    """What the plan shows for an image that a build of this plan makes."""
    return NEW_IMAGE.format(name=name)


def built_by(value: Any) -> str | None:
    """The MachineImage whose build `value` stands for, if it is such a placeholder."""
    head, _, tail = NEW_IMAGE.partition("{name}")
    if isinstance(value, str) and value.startswith(head) and value.endswith(tail):
        return value[len(head) : len(value) - len(tail)]
    return None


# -- the recipe: pure ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """What an image is made of, once the base and the files are resolved; `hash` names it."""

    base: str  # the resolved base image id
    architecture: str
    script: str
    files: tuple[tuple[str, str, str], ...]  # (source, path, ETag)
    volume: int | None = None
    block_devices: str = ""  # canonical JSON of the image's block device mappings
    rebuild: int = 0  # spec.rebuild; in the hash only when set, so older hashes stay

    @property
    def hash(self) -> str:
        body = json.dumps(
            {
                "base": self.base,
                "architecture": self.architecture,
                "script": self.script,
                "files": [list(f) for f in self.files],
                "volume": self.volume,
                "blockDevices": self.block_devices,
                **({"rebuild": self.rebuild} if self.rebuild else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()

    def parts(self) -> dict[str, str]:
        """Each part's own digest: told apart, they say why a build is needed."""

        def digest(value: object) -> str:
            return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

        return {
            "base": self.base,
            "architecture": self.architecture,
            "script": digest(self.script),
            "files": digest([list(f) for f in self.files]),
            "volume": str(self.volume or ""),
            "blockDevices": digest(self.block_devices),
            **({"rebuild": str(self.rebuild)} if self.rebuild else {}),
        }


def recipe(spec: MachineImageSpec, base: str, architecture: str, etags: dict[str, str]) -> Recipe:
    """The recipe of `spec` with its base resolved to `base` and each file's ETag."""
    files = tuple(
        sorted((f.source, f.path, etags.get(f.source, "")) for f in spec.build.files or [])
    )
    mappings = [
        m.model_dump(mode="json", exclude_none=True) for m in spec.image.blockDeviceMappings or []
    ]
    return Recipe(
        base=base,
        architecture=architecture,
        script=spec.build.script,
        files=files,
        volume=spec.build.volumeSizeGiB,
        block_devices=json.dumps(mappings, sort_keys=True, separators=(",", ":")),
        rebuild=spec.rebuild,
    )


PART_WORDS = {
    "architecture": "instance architecture",
    "script": "build.script",
    "files": "build.files",
    "volume": "build.volumeSizeGiB",
    "blockDevices": "image.blockDeviceMappings",
    "rebuild": "spec.rebuild",
}


def build_reason(current: dict[str, str] | None, wanted: dict[str, str]) -> str:
    """Why a build is needed, from the parts recorded on the newest image (None: no image)."""
    if not current:
        return "no image yet"
    said = []
    if current.get("base") != wanted["base"]:
        said.append(f"base {current.get('base') or '?'} -> {wanted['base']}")
    said += [
        f"{word} changed"
        for key, word in PART_WORDS.items()
        if current.get(key, "") != wanted.get(key, "")
    ]
    return ", ".join(said) or "recipe changed"


def parts_tag(parts: dict[str, str]) -> str:
    """The parts as one tag value (at most 256 characters: digests are 16)."""
    return ",".join(f"{k}={parts[k]}" for k in sorted(parts))


def parse_parts(value: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        key, _, got = item.partition("=")
        if key:
            out[key] = got
    return out


# On-demand prices in us-east-1, USD per hour (AWS price list, Linux, checked 2026); an unknown
# type falls back to FALLBACK_PRICE, said so in the plan. A spot maxPrice caps what is paid.
PRICES: dict[str, Decimal] = {
    "t3.micro": Decimal("0.0104"),
    "t3.small": Decimal("0.0208"),
    "t3.medium": Decimal("0.0416"),
    "t3.large": Decimal("0.0832"),
    "m5.large": Decimal("0.096"),
    "m5.xlarge": Decimal("0.192"),
    "c5.large": Decimal("0.085"),
    "c5.xlarge": Decimal("0.17"),
    "c5a.large": Decimal("0.077"),
    "c5a.xlarge": Decimal("0.154"),
    "c6i.large": Decimal("0.085"),
    "c6g.large": Decimal("0.068"),
    "m6g.large": Decimal("0.077"),
    "r5.large": Decimal("0.126"),
}
FALLBACK_PRICE = Decimal("1.00")


def cost_bound(build: Build) -> tuple[Decimal, str]:
    """The most a build can cost: the dearest instance type's hourly price (the spot maxPrice
    when it is lower) times the timeout, and how that was priced."""
    prices = [PRICES.get(t, FALLBACK_PRICE) for t in build.instanceTypes]
    price = max(prices)
    how = "on-demand price" + (
        "" if all(t in PRICES for t in build.instanceTypes) else " (unknown type: $1.00/h assumed)"
    )
    if build.spot is not None and build.spot.maxPrice:
        cap = Decimal(build.spot.maxPrice)
        if cap < price:
            price, how = cap, "spot maxPrice"
    hours = Decimal(build.timeoutSeconds) / Decimal(3600)
    return (price * hours).quantize(Decimal("0.001")), how


def image_name(template: str, name: str, recipe_hash: str, now: datetime | None = None) -> str:
    """The image's name from the template (at most 128 characters)."""
    when = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    text = template.replace("{name}", name).replace("{date}", when)
    return text.replace("{hash8}", recipe_hash[:8])[:IMAGE_NAME_MAX]
