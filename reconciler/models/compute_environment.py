"""ComputeEnvironment: the spec mirrors CreateComputeEnvironment, minus the name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.models.common import (
    InstanceTags,
    Int32,
    Resource,
    RoleOrReference,
    RoleReference,
    SecurityGroupRef,
    Spec,
    Strict,
    SubnetRef,
    Tags,
    role_references,
)
from reconciler.models.fields import (
    IMMUTABLE,
    LATE_INIT,
    LOCAL,
    SERVICE_MANAGED,
    paths_marked,
    set_by,
    value_set,
)
from reconciler.models.machine_image import MachineImage, MachineImageReference

# Allocation strategies with which AWS can replace instances in place (an "infrastructure update").
PROGRESSIVE_STRATEGIES = frozenset(
    {"BEST_FIT_PROGRESSIVE", "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED"}
)


class Infrastructure:
    """Marks a field AWS can change in place only by an infrastructure update: instances are
    replaced over tens of minutes, and only with the service-linked role and a progressive
    allocation strategy; otherwise the environment is replaced
    blue/green (kinds/compute_environment.py)."""


INFRA = Infrastructure()


class LaunchTemplate(Strict):
    launchTemplateId: str | None = Field(default=None, pattern=r"^lt-[0-9a-f]+$", max_length=64)
    launchTemplateName: str | None = Field(default=None, max_length=128)
    version: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> LaunchTemplate:
        if bool(self.launchTemplateId) == bool(self.launchTemplateName):
            raise ValueError("give exactly one of launchTemplateId and launchTemplateName")
        return self


class Ec2Configuration(Strict):
    imageType: str
    imageIdOverride: str | MachineImageReference | None = Field(
        default=None,
        description="An AMI id, or {machineImage: NAME} of a MachineImage of the stack.",
    )
    imageKubernetesVersion: str | None = None


class ComputeResources(Strict):
    type: Annotated[Literal["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"], IMMUTABLE]
    allocationStrategy: Annotated[
        Literal[
            "BEST_FIT",
            "BEST_FIT_PROGRESSIVE",
            "SPOT_CAPACITY_OPTIMIZED",
            "SPOT_PRICE_CAPACITY_OPTIMIZED",
        ]
        | None,
        INFRA,
        LATE_INIT,
    ] = None
    minvCpus: Annotated[Int32 | None, Field(ge=0), LATE_INIT] = None
    maxvCpus: Int32 = Field(ge=0)
    desiredvCpus: Annotated[Int32 | None, Field(ge=0), SERVICE_MANAGED] = None
    instanceTypes: Annotated[list[str] | None, value_set(), INFRA] = None
    imageId: Annotated[str | None, INFRA] = None
    subnets: Annotated[list[SubnetRef], Field(min_length=1), value_set(), INFRA]
    securityGroupIds: Annotated[list[SecurityGroupRef] | None, value_set(), INFRA] = None
    ec2KeyPair: Annotated[str | None, INFRA] = None
    instanceRole: Annotated[RoleOrReference | None, INFRA] = None
    tags: Annotated[InstanceTags | None, INFRA] = None
    placementGroup: Annotated[str | None, IMMUTABLE] = None
    bidPercentage: Annotated[int | None, Field(ge=0, le=100), INFRA] = None
    spotIamFleetRole: Annotated[RoleOrReference | None, IMMUTABLE] = None
    launchTemplate: Annotated[LaunchTemplate | None, INFRA] = None
    ec2Configuration: Annotated[
        list[Ec2Configuration] | None,
        Field(max_length=2),
        set_by("imageType", late_init=True),
        INFRA,
    ] = None
    updateToLatestImageVersion: Annotated[bool | None, INFRA, LATE_INIT] = None

    @model_validator(mode="after")
    def _consistent(self) -> ComputeResources:
        fargate = self.type.startswith("FARGATE")
        if self.minvCpus is not None and self.minvCpus > self.maxvCpus:
            raise ValueError(
                f"minvCpus ({self.minvCpus}) is greater than maxvCpus ({self.maxvCpus})"
            )
        if self.desiredvCpus is not None and not (
            (self.minvCpus or 0) <= self.desiredvCpus <= self.maxvCpus
        ):
            raise ValueError("desiredvCpus must lie between minvCpus and maxvCpus")
        if fargate:
            ec2_only = [
                f
                for f in (
                    "instanceTypes",
                    "instanceRole",
                    "imageId",
                    "ec2KeyPair",
                    "minvCpus",
                    "allocationStrategy",
                    "launchTemplate",
                    "placementGroup",
                )
                if getattr(self, f) is not None
            ]
            if ec2_only:
                raise ValueError(f"{', '.join(ec2_only)}: not allowed with type {self.type}")
        else:
            missing = [f for f in ("instanceTypes", "instanceRole") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required with type {self.type}")
        if self.type != "SPOT" and self.bidPercentage is not None:
            raise ValueError("bidPercentage: only for type SPOT")
        return self


class UpdatePolicy(Strict):
    terminateJobsOnUpdate: bool | None = None
    # 1..7200 in the current API reference (1..360 before).
    jobExecutionTimeoutMinutes: int | None = Field(default=None, ge=1, le=7200)


class ComputeEnvironmentSpec(Spec):
    type: Annotated[Literal["MANAGED", "UNMANAGED"], IMMUTABLE] = "MANAGED"
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    unmanagedvCpus: Int32 | None = Field(default=None, ge=0)
    computeResources: ComputeResources | None = None
    serviceRole: Annotated[
        RoleOrReference | None,
        LATE_INIT,
        Field(
            description="Omit to use the Batch service-linked role (needed for in-place "
            "infrastructure updates)."
        ),
    ] = None
    updatePolicy: Annotated[
        UpdatePolicy | None,
        LATE_INIT,
        Field(description="Sent with updates only: AWS rejects it on create."),
    ] = None
    tags: Tags | None = None
    trackDesiredvCpus: Annotated[
        bool,
        LOCAL,
        Field(description="Treat desiredvCpus as drift. Off by default: Batch moves it itself."),
    ] = False

    @model_validator(mode="after")
    def _managed_has_resources(self) -> ComputeEnvironmentSpec:
        if self.type == "MANAGED" and self.computeResources is None:
            raise ValueError("computeResources: required for a MANAGED compute environment")
        if self.type == "UNMANAGED" and self.computeResources is not None:
            raise ValueError("computeResources: not allowed for an UNMANAGED compute environment")
        return self


class ComputeEnvironment(Resource):
    """An AWS Batch compute environment."""

    KIND: ClassVar[str] = "ComputeEnvironment"
    PLURAL: ClassVar[str] = "computeenvironments"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ce",)

    kind: Literal["ComputeEnvironment"]
    spec: ComputeEnvironmentSpec

    def _roles(self) -> dict[str, Any]:
        cr = self.spec.computeResources
        roles: dict[str, Any] = {"spec.serviceRole": self.spec.serviceRole}
        if cr is not None:
            roles["spec.computeResources.instanceRole"] = cr.instanceRole
            roles["spec.computeResources.spotIamFleetRole"] = cr.spotIamFleetRole
        return roles

    def references(self) -> list[tuple[str, str, str]]:
        roles = [("Role", name, at) for name, at in role_references(self._roles(), "")]
        cr = self.spec.computeResources
        configs = (cr.ec2Configuration if cr is not None else None) or []
        images = [
            (
                MachineImage.KIND,
                c.imageIdOverride.machineImage,
                f"spec.computeResources.ec2Configuration.{i}.imageIdOverride",
            )
            for i, c in enumerate(configs)
            if isinstance(c.imageIdOverride, MachineImageReference)
        ]
        return roles + images

    def cross_problems(
        self, lookup: Callable[[str, str], Resource | None]
    ) -> list[tuple[str, str]]:
        """An instance role must be an instance profile: of a role that declares one."""
        out = []
        for path, ref in self._roles().items():
            if not isinstance(ref, RoleReference):
                continue
            role = lookup("Role", ref.role)
            has_profile = bool(getattr(getattr(role, "spec", None), "instanceProfile", False))
            wants_profile = path.endswith("instanceRole")
            if role is not None and wants_profile and not ref.instanceProfile:
                out.append(
                    (path, "an instance role is an instance profile: add instanceProfile: true")
                )
            elif role is not None and ref.instanceProfile and not has_profile:
                out.append(
                    (path, f"Role {ref.role!r} declares no instance profile (spec.instanceProfile)")
                )
            elif ref.instanceProfile and not wants_profile:
                out.append((path, "only instanceRole takes an instance profile"))
        return out


def is_infrastructure(path: str) -> bool:
    """A change at `path` is an infrastructure update: the field, or a field it lies in, is
    marked INFRA (a launch template's version, an instance tag)."""
    marked = paths_marked(ComputeEnvironmentSpec, Infrastructure)
    parts = path.split(".")
    return any(".".join(parts[:i]) in marked for i in range(1, len(parts) + 1))
