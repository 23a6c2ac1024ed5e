"""What every kind shares: the envelope, metadata, and the references that resolve at plan time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from reconciler import API_VERSION

# AWS Batch names: letters, digits, hyphens and underscores. Compute environments and queues must
# also start and end with a letter or digit; moto insists on at least 3 characters for them.
BATCH_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,126}[A-Za-z0-9]$|^[A-Za-z0-9]$"
TAG_KEY = Annotated[str, Field(min_length=1, max_length=128)]
TAG_VALUE = Annotated[str, Field(max_length=256)]
Tags = dict[TAG_KEY, TAG_VALUE]
RESERVED_TAG_PREFIX = "reconciler.io/"


class Strict(BaseModel):
    """Unknown fields are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class Metadata(Strict):
    name: str = Field(pattern=BATCH_NAME, max_length=128, description="The AWS name.")
    namespace: str | None = Field(default=None, description="Kubernetes namespace (operator).")
    labels: dict[TAG_KEY, TAG_VALUE] = Field(
        default_factory=dict, description="Become AWS tags on the resource."
    )
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_reserved_labels(self) -> Metadata:
        for key in self.labels:
            if key.startswith(RESERVED_TAG_PREFIX) or key.startswith("aws:"):
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


Quantity = Annotated[str, BeforeValidator(_number_as_text)]
SubnetRef = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")] | Lookup
SecurityGroupRef = Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")] | Lookup
# A role given by name ("ecsInstanceRole", "service-role/AWSBatchServiceRole") or by full ARN.
RoleRef = Annotated[str, Field(pattern=r"^(arn:aws[a-z-]*:iam::\d{12}:[a-z-]+/)?[\w+=,.@/-]+$")]


class Resource(Strict):
    """The Kubernetes-style envelope; each kind narrows `kind` and `spec`."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    apiVersion: Literal["reconciler.io/v1alpha1"] = API_VERSION
    kind: str
    metadata: Metadata
    spec: Any

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.KIND, self.metadata.name)

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
