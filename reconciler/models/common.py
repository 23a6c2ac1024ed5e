"""What every kind shares: the envelope, metadata, and the references that resolve at plan time.

Limits AWS documents are declared on the fields (reconciler/limits.py says where each comes
from), so the JSON Schemas and the CRDs carry them; `Resource.request_problems` checks what no
single field can: the size of a whole request and the number of tags it ends up with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from reconciler import API_VERSION
from reconciler.limits import (
    ARN_MAX,
    INT32_MAX,
    MAX_TAGS,
    NAME_MAX,
    RESERVED_TAG_PREFIXES,
    STRING_MAX,
    TAG_KEY_MAX,
    TAG_VALUE_MAX,
)
from reconciler.models.fields import LOCAL

# AWS Batch names: letters, digits, hyphens and underscores, up to 128. Compute environments and
# queues must also start and end with a letter or digit; moto insists on at least 3 characters.
BATCH_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,126}[A-Za-z0-9]$|^[A-Za-z0-9]$"
RESERVED_TAG_PREFIX = "reconciler.io/"
# Tags the tool puts on everything it creates (aws/tags.py: managed-by, stack, name), and on
# every job of a run (runs/identity.py: those, kind, task, run; two more for a sandbox outcome).
OWN_TAGS = 3
DELETION_POLICY_TAG = 1  # the tag recording a deletionPolicy the manifest sets
RUN_TAGS = 6
SANDBOX_TAGS = 2
# Room a request keeps for what the tool adds to it: its own tags (the stack at its longest),
# role names become ARNs, a job's name, queue and dependencies.
OWN_TAGS_BYTES = 512
ROLE_ARN_PREFIX_BYTES = len("arn:aws-us-gov:iam::123456789012:role/")


def _not_aws(key: str) -> str:
    if key.lower().startswith(RESERVED_TAG_PREFIXES):
        raise ValueError(f"tag key {key!r} uses a reserved prefix")
    return key


def _unreserved(key: str) -> str:
    if key.startswith(RESERVED_TAG_PREFIX):
        raise ValueError(f"tag key {key!r} uses a reserved prefix")
    return _not_aws(key)


TAG_KEY = Annotated[str, Field(min_length=1, max_length=TAG_KEY_MAX)]
TAG_VALUE = Annotated[str, Field(max_length=TAG_VALUE_MAX)]
# At most 50 tags a resource, keys of 1..128 and values of up to 256 characters, none starting
# with aws: (AWS's) or reconciler.io/ (the tool's own) [tags]. Each key is checked on its own,
# so that every bad one is reported.
Tags = Annotated[
    dict[Annotated[TAG_KEY, AfterValidator(_unreserved)], TAG_VALUE], Field(max_length=MAX_TAGS)
]
# Tags for what AWS launches (a compute environment's instances): the tool does not own those,
# so only AWS's prefix is reserved (the sandbox reads reconciler.io/ ones there).
InstanceTags = Annotated[
    dict[Annotated[TAG_KEY, AfterValidator(_not_aws)], TAG_VALUE], Field(max_length=MAX_TAGS)
]
Int32 = Annotated[int, Field(le=INT32_MAX)]  # the API's Integer, for counts without a range


class Strict(BaseModel):
    """Unknown fields are errors: a typo must never be silently ignored. No string may be longer
    than the largest request AWS takes: fields with a documented limit of their own say so."""

    # defer_build: a model's validator is built when it first validates, not on import, so
    # `validate` of a file of one kind builds that kind's models only (about a third of its
    # CPU time for a file of job definitions; benchmarks/README.md, bench_startup.py).
    model_config = ConfigDict(
        extra="forbid", validate_default=True, str_max_length=STRING_MAX, defer_build=True
    )


class Metadata(Strict):
    name: str = Field(pattern=BATCH_NAME, max_length=NAME_MAX, description="The AWS name.")
    namespace: str | None = Field(
        default=None, max_length=63, description="Kubernetes namespace (operator)."
    )
    labels: dict[TAG_KEY, TAG_VALUE] = Field(
        default_factory=dict, max_length=MAX_TAGS, description="Become AWS tags on the resource."
    )
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_reserved_labels(self) -> Metadata:
        for key in self.labels:
            if key.startswith(RESERVED_TAG_PREFIX) or key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"label {key!r} uses a reserved prefix")
        return self


class Lookup(Strict):
    """Finds AWS IDs at plan time, so that one manifest runs unchanged in every account.

    `{defaultVpc: true}` takes the default subnets (or the `default` security group) of the
    default VPC; `tags` and `name` narrow by tag or by name.
    """

    defaultVpc: bool = False
    vpcId: str | None = None
    tags: dict[str, str] | None = None
    name: str | None = Field(default=None, description="Group name, or the Name tag of a subnet.")

    @model_validator(mode="after")
    def _something_to_match(self) -> Lookup:
        if not (self.defaultVpc or self.vpcId or self.tags or self.name):
            raise ValueError("a lookup needs defaultVpc, vpcId, tags or name")
        return self


def _number_as_text(value: Any) -> Any:
    """AWS takes resource quantities as strings; people write them as numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _positive_number(value: str) -> str:
    """A vCPU count, MiB of memory or GPUs: a number above 0 and within the API's Integer."""
    try:
        number = float(value) if len(value) <= 32 else math.inf
    except ValueError:
        number = math.nan
    if not (0 < number <= INT32_MAX):
        shown = value if len(value) <= 32 else value[:29] + "..."
        raise ValueError(f"must be a positive number no greater than {INT32_MAX}, got {shown!r}")
    return value


Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_positive_number)]
SubnetRef = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$", max_length=64)] | Lookup
SecurityGroupRef = Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$", max_length=64)] | Lookup
# A role given by name ("ecsInstanceRole", "service-role/AWSBatchServiceRole") or by full ARN.
RoleRef = Annotated[
    str,
    Field(pattern=r"^(arn:aws[a-z-]*:iam::\d{12}:[a-z-]+/)?[\w+=,.@/-]+$", max_length=ARN_MAX),
]

STACK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$"  # a manifest name another resource refers to


class RoleReference(Strict):
    """A role of the stack, by its manifest name: the plan puts in its ARN (or, with
    `instanceProfile: true`, the ARN of its instance profile), so no account ID or generated
    name is ever copied into a manifest, and the role is created first."""

    role: str = Field(pattern=STACK_NAME, description="The metadata.name of a Role of the stack.")
    instanceProfile: bool = Field(
        default=False, description="The role's instance profile (the Role must declare one)."
    )


class MachineImageReference(Strict):
    """A machine image of the stack, by its manifest name, where an AMI id goes (a compute
    environment's `imageIdOverride`, an EC2 task's `image`): the plan puts in the image it has
    after the plan, so a new build shows as the build, then the update of what uses it."""

    machineImage: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$",
        description="The metadata.name of a MachineImage of the stack.",
    )


class BucketReference(Strict):
    """A bucket of the stack, by its manifest name: its name, `s3://NAME` (`as: url`) or its
    ARN, resolved at plan time (the bucket is created first)."""

    model_config = ConfigDict(populate_by_name=True)

    bucket: str = Field(
        pattern=STACK_NAME, description="The metadata.name of a Bucket of the stack."
    )
    as_: Literal["name", "url", "arn"] = Field(
        default="name", alias="as", description="name, url (s3://NAME) or arn."
    )


RoleOrReference = RoleRef | RoleReference


def role_references(fields: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """(role name, path) of every field holding a RoleReference."""
    return [
        (value.role, f"{path}.{key}" if path else key)
        for key, value in fields.items()
        if isinstance(value, RoleReference)
    ]


def bucket_values(environment: list[Any] | None, path: str) -> list[tuple[str, str]]:
    """(bucket name, path) of every environment entry whose value is a BucketReference."""
    return [
        (e.value.bucket, f"{path}.{i}.value")
        for i, e in enumerate(environment or [])
        if isinstance(e.value, BucketReference)
    ]


RESERVED_ENVIRONMENT = "AWS_BATCH"  # "Environment variables cannot start with AWS_BATCH" [api]


def reserved_environment(names: list[str]) -> str | None:
    """The problem with environment variable names AWS Batch keeps for itself, if any."""
    taken = [n for n in names if n.startswith(RESERVED_ENVIRONMENT)]
    if taken:
        return f"environment: {taken[0]!r}: names starting with AWS_BATCH are AWS Batch's own"
    return None


def request_bytes(request: Any) -> int:
    """The size of a request body as botocore sends it: JSON with its default separators and
    every non-ASCII character escaped (an "é" is six bytes)."""
    return len(json.dumps(request).encode())


DeletionPolicy = Literal["Retain", "Delete"]


class Spec(Strict):
    """What every kind's spec holds besides its own fields: what deleting the resource from
    the stack does in AWS. The same field serves the CLI (`delete`, `apply --prune`) and the
    operator (a deleted custom resource), so the two can never disagree."""

    deletionPolicy: Annotated[DeletionPolicy | None, LOCAL] = Field(
        default=None,
        description="Delete: deleting the resource from the stack deletes it in AWS. Retain: "
        "leaves it there, as it is. Unset: the kind's default (Retain for buckets, which hold "
        "data no re-apply brings back; Delete for the others).",
    )


class Resource(Strict):
    """The Kubernetes-style envelope; each kind narrows `kind` and `spec`."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()
    DELETION_POLICY: ClassVar[DeletionPolicy] = "Delete"  # when the spec says none

    apiVersion: Literal["reconciler.io/v1alpha1"] = API_VERSION
    kind: str
    metadata: Metadata
    spec: Any

    @model_validator(mode="before")
    @classmethod
    def _empty_spec(cls, data: Any) -> Any:
        """`spec:` left empty (YAML null) or out is an empty spec, as kubectl takes it: a
        bucket with every default needs no spec at all."""
        if isinstance(data, dict) and data.get("spec") is None:
            return {**data, "spec": {}}
        return data

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.KIND, self.metadata.name)

    @property
    def deletion_policy(self) -> DeletionPolicy:
        return getattr(self.spec, "deletionPolicy", None) or self.DELETION_POLICY

    def references(self) -> list[tuple[str, str, str]]:
        """(kind, name, path) of every other resource this one names: the plan creates and
        updates those first and deletes them last, and validation checks they are declared."""
        return []

    def cross_problems(
        self, lookup: Callable[[str, str], Resource | None]
    ) -> list[tuple[str, str]]:
        """(path, message) for what is wrong with this resource given the ones it refers to;
        `lookup(kind, name)` gives a declared resource."""
        return []

    def request_problems(self) -> list[tuple[str, str]]:
        """(path, message) for what AWS would refuse in the requests this resource makes as a
        whole, which no single field shows: too many tags once labels, the spec's tags and the
        tool's own are together; a kind adds the size of its requests."""
        spec_tags = getattr(self.spec, "tags", None) or {}
        own = OWN_TAGS + (DELETION_POLICY_TAG if getattr(self.spec, "deletionPolicy", None) else 0)
        return too_many_tags({**self.metadata.labels, **spec_tags}, own, "spec.tags")


def too_many_tags(tags: dict[str, str], own: int, path: str) -> list[tuple[str, str]]:
    """A problem if `tags` and the tool's `own` ones are more than a resource may carry."""
    if len(tags) + own <= MAX_TAGS:
        return []
    return [
        (
            path,
            f"{len(tags)} tags with metadata.labels, and the tool adds {own} of its own: AWS "
            f"allows {MAX_TAGS} a resource",
        )
    ]


def too_large(what: str, size: int, limit: int, path: str = "spec") -> list[tuple[str, str]]:
    """A problem if a request of `size` bytes is over AWS's `limit`."""
    if size <= limit:
        return []
    return [
        (
            path,
            f"the {what} request would be about {size:,} bytes; AWS allows {limit // 1024} KiB "
            f"({limit:,} bytes)",
        )
    ]
