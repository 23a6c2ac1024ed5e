"""JobDefinition: the spec mirrors RegisterJobDefinition, minus the name.

Revisions are immutable in AWS: any change to the spec (tags aside) registers a new revision.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.models.batch_shapes import (
    PARAMETERS,
    KeyValue,
    ResourceRequirement,
    RetryStrategy,
    Timeout,
)
from reconciler.models.common import Resource, RoleRef, Strict, Tags
from reconciler.models.fields import LATE_INIT, LOCAL, secret_by_name, set_by, value_set


class Secret(Strict):
    name: str
    valueFrom: str


class Ulimit(Strict):
    name: str
    softLimit: int
    hardLimit: int


class MountPoint(Strict):
    containerPath: str
    sourceVolume: str
    readOnly: bool | None = None


class Host(Strict):
    sourcePath: str | None = None


class Volume(Strict):
    name: str
    host: Host | None = None
    efsVolumeConfiguration: dict[str, Any] | None = None


class LogConfiguration(Strict):
    logDriver: str
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
    image: str = Field(min_length=1)
    vcpus: int | None = Field(default=None, ge=1)
    memory: int | None = Field(default=None, ge=4)
    command: list[str] | None = None
    jobRoleArn: RoleRef | None = None
    executionRoleArn: RoleRef | None = None
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
        for r in self.resourceRequirements or []:
            try:
                if not math.isfinite(float(r.value)) or float(r.value) <= 0:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"resourceRequirements: {r.type} value {r.value!r} must be a positive number"
                ) from None
        return self


class JobDefinitionSpec(Strict):
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
