"""JobDefinition: the spec mirrors RegisterJobDefinition, minus the name.

Revisions are immutable in AWS: any change to the spec (tags aside) registers a new revision.
A RegisterJobDefinition request may be at most 24 KiB [quotas]: `request_problems` estimates it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.limits import IMAGE_MAX, INT32_MAX, JOB_DEFINITION_MAX_BYTES, VOLUME_NAME_MAX
from reconciler.models.batch_shapes import (
    PARAMETERS,
    KeyValue,
    ResourceRequirement,
    RetryStrategy,
    Timeout,
)
from reconciler.models.common import (
    OWN_TAGS_BYTES,
    ROLE_ARN_PREFIX_BYTES,
    Resource,
    RoleOrReference,
    RoleReference,
    Spec,
    Strict,
    Tags,
    bucket_values,
    request_bytes,
    reserved_environment,
    role_references,
    too_large,
)
from reconciler.models.fields import (
    LATE_INIT,
    LOCAL,
    local_fields,
    secret_by_name,
    set_by,
    value_set,
)

# Docker's ulimits that AWS Batch takes, and the log drivers the ECS agent speaks [api].
UlimitName = Literal[
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
]  # fmt: skip
LogDriver = Literal[
    "awsfirelens", "awslogs", "fluentd", "gelf", "json-file", "journald", "logentries",
    "syslog", "splunk",
]  # fmt: skip


class Secret(Strict):
    name: str
    valueFrom: str


class Ulimit(Strict):
    name: UlimitName
    softLimit: int = Field(ge=-INT32_MAX - 1, le=INT32_MAX)
    hardLimit: int = Field(ge=-INT32_MAX - 1, le=INT32_MAX)


class MountPoint(Strict):
    containerPath: str
    sourceVolume: str = Field(max_length=VOLUME_NAME_MAX)
    readOnly: bool | None = None


class Host(Strict):
    sourcePath: str | None = None


class Volume(Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$",
        max_length=VOLUME_NAME_MAX,
        description="Letters, digits, hyphens and underscores.",
    )
    host: Host | None = None
    efsVolumeConfiguration: dict[str, Any] | None = None


class LogConfiguration(Strict):
    logDriver: LogDriver
    # A log driver's credentials (splunk-token) belong in secretOptions.
    options: Annotated[
        dict[str, str] | None,
        secret_by_name(
            "secretOptions, whose valueFrom is the ARN of a Secrets Manager secret or an SSM "
            "Parameter Store parameter"
        ),
    ] = None
    secretOptions: Annotated[list[Secret] | None, set_by("name")] = None


class ContainerProperties(Strict):
    image: str = Field(min_length=1, max_length=IMAGE_MAX)
    vcpus: int | None = Field(default=None, ge=1, le=INT32_MAX)
    memory: int | None = Field(default=None, ge=4, le=INT32_MAX, description="MiB.")
    command: list[str] | None = None
    jobRoleArn: RoleOrReference | None = None
    executionRoleArn: RoleOrReference | None = None
    volumes: Annotated[list[Volume] | None, set_by("name")] = None
    environment: Annotated[list[KeyValue] | None, set_by("name")] = None
    mountPoints: Annotated[list[MountPoint] | None, set_by("containerPath")] = None
    readonlyRootFilesystem: bool | None = None
    privileged: bool | None = None
    ulimits: Annotated[list[Ulimit] | None, set_by("name")] = None
    user: str | None = None
    instanceType: str | None = None
    resourceRequirements: Annotated[list[ResourceRequirement] | None, set_by("type")] = None
    linuxParameters: dict[str, Any] | None = None
    logConfiguration: LogConfiguration | None = None
    secrets: Annotated[list[Secret] | None, set_by("name")] = None
    networkConfiguration: Annotated[dict[str, Any] | None, LATE_INIT] = None
    fargatePlatformConfiguration: Annotated[dict[str, Any] | None, LATE_INIT] = None
    ephemeralStorage: dict[str, Any] | None = None
    runtimePlatform: Annotated[dict[str, Any] | None, LATE_INIT] = None

    @model_validator(mode="after")
    def _has_resources(self) -> ContainerProperties:
        kinds = {r.type for r in self.resourceRequirements or []}
        if self.vcpus is None and "VCPU" not in kinds:
            raise ValueError("give vcpus, or a VCPU entry in resourceRequirements")
        if self.memory is None and "MEMORY" not in kinds:
            raise ValueError("give memory, or a MEMORY entry in resourceRequirements")
        if self.vcpus is not None and "VCPU" in kinds:
            raise ValueError("give vcpus or a VCPU resourceRequirement, not both")
        if self.memory is not None and "MEMORY" in kinds:
            raise ValueError("give memory or a MEMORY resourceRequirement, not both")
        reserved = reserved_environment([e.name for e in self.environment or []])
        if reserved:
            raise ValueError(reserved)
        return self


class JobDefinitionSpec(Spec):
    type: Literal["container", "multinode"] = "container"
    parameters: Annotated[dict[str, str] | None, PARAMETERS] = None
    containerProperties: ContainerProperties | None = None
    nodeProperties: dict[str, Any] | None = None
    retryStrategy: RetryStrategy | None = None
    timeout: Timeout | None = None
    platformCapabilities: Annotated[
        list[Literal["EC2", "FARGATE"]] | None, value_set(late_init=True)
    ] = None
    propagateTags: Annotated[bool | None, LATE_INIT] = None
    schedulingPriority: int | None = Field(default=None, ge=0, le=9999)
    tags: Tags | None = None
    revisionHistoryLimit: Annotated[
        int,
        LOCAL,
        Field(ge=1, le=1000, description="ACTIVE revisions to keep; older ones are deregistered."),
    ] = 5

    @model_validator(mode="after")
    def _properties_match_type(self) -> JobDefinitionSpec:
        if self.type == "container" and self.containerProperties is None:
            raise ValueError("containerProperties: required for type container")
        if self.type == "multinode" and self.nodeProperties is None:
            raise ValueError("nodeProperties: required for type multinode")
        if self.type == "multinode" and self.containerProperties is not None:
            raise ValueError("containerProperties: not allowed for type multinode")
        return self


class JobDefinition(Resource):
    """An AWS Batch job definition; every change is a new immutable revision."""

    KIND: ClassVar[str] = "JobDefinition"
    PLURAL: ClassVar[str] = "jobdefinitions"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("jd",)

    kind: Literal["JobDefinition"]
    spec: JobDefinitionSpec

    def references(self) -> list[tuple[str, str, str]]:
        cp = self.spec.containerProperties
        if cp is None:
            return []
        path = "spec.containerProperties"
        roles = {"jobRoleArn": cp.jobRoleArn, "executionRoleArn": cp.executionRoleArn}
        return [("Role", name, at) for name, at in role_references(roles, path)] + [
            ("Bucket", name, at)
            for name, at in bucket_values(cp.environment, f"{path}.environment")
        ]

    def request_problems(self) -> list[tuple[str, str]]:
        return super().request_problems() + too_large(
            "RegisterJobDefinition", register_request_bytes(self), JOB_DEFINITION_MAX_BYTES
        )


def register_request_bytes(res: JobDefinition) -> int:
    """An estimate of the RegisterJobDefinition request for `res`, from above: role names are
    counted as the ARNs they become, and the tool's own tags at their longest."""
    body = res.spec.model_dump(mode="json", exclude_none=True)
    for path in local_fields(JobDefinitionSpec):
        body.pop(path, None)
    body["jobDefinitionName"] = res.name
    body["tags"] = {**res.metadata.labels, **(res.spec.tags or {})}
    roles = res.spec.containerProperties
    arns = [r for r in (roles.jobRoleArn, roles.executionRoleArn) if r] if roles else []
    # A role of the stack becomes an ARN as long as its prefix, the longest path and a name.
    extra = sum(
        ROLE_ARN_PREFIX_BYTES + (512 + 64 if isinstance(r, RoleReference) else 0)
        for r in arns
        if not (isinstance(r, str) and r.startswith("arn:"))
    )
    return request_bytes(body) + extra + OWN_TAGS_BYTES
