"""JobQueue: the spec mirrors CreateJobQueue, with compute environments named by metadata.name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.limits import ARN_MAX, INT32_MAX, MAX_ENVIRONMENTS_PER_QUEUE
from reconciler.models.common import BATCH_NAME, Resource, Spec, Strict, Tags
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.fields import LATE_INIT, set_by


class ComputeEnvironmentOrder(Strict):
    order: int = Field(ge=0, le=INT32_MAX)
    computeEnvironment: str = Field(
        pattern=BATCH_NAME, description="A ComputeEnvironment of this stack, by metadata.name."
    )


class JobStateTimeLimitAction(Strict):
    reason: str
    state: Literal["RUNNABLE"] = "RUNNABLE"
    maxTimeSeconds: int = Field(ge=600, le=86400)
    action: Literal["CANCEL"] = "CANCEL"


class JobQueueSpec(Spec):
    priority: int = Field(ge=0, le=1000)
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    computeEnvironmentOrder: Annotated[
        list[ComputeEnvironmentOrder],
        Field(min_length=1, max_length=MAX_ENVIRONMENTS_PER_QUEUE),
        set_by("order"),
    ]
    schedulingPolicyArn: Annotated[str | None, LATE_INIT, Field(max_length=ARN_MAX)] = None
    jobStateTimeLimitActions: Annotated[list[JobStateTimeLimitAction] | None, set_by("reason")] = (
        None
    )
    tags: Tags | None = None

    @model_validator(mode="after")
    def _distinct(self) -> JobQueueSpec:
        orders = [e.order for e in self.computeEnvironmentOrder]
        if len(set(orders)) != len(orders):
            raise ValueError("computeEnvironmentOrder: each order must be distinct")
        names = [e.computeEnvironment for e in self.computeEnvironmentOrder]
        if len(set(names)) != len(names):
            raise ValueError("computeEnvironmentOrder: a compute environment appears twice")
        return self


class JobQueue(Resource):
    """An AWS Batch job queue over up to three compute environments of this stack."""

    KIND: ClassVar[str] = "JobQueue"
    PLURAL: ClassVar[str] = "jobqueues"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("jq",)

    kind: Literal["JobQueue"]
    spec: JobQueueSpec

    def references(self) -> list[tuple[str, str, str]]:
        return [
            (
                ComputeEnvironment.KIND,
                e.computeEnvironment,
                f"spec.computeEnvironmentOrder.{i}.computeEnvironment",
            )
            for i, e in enumerate(self.spec.computeEnvironmentOrder)
        ]

    def cross_problems(
        self, lookup: Callable[[str, str], Resource | None]
    ) -> list[tuple[str, str]]:
        families = set()
        for entry in self.spec.computeEnvironmentOrder:
            ce = lookup(ComputeEnvironment.KIND, entry.computeEnvironment)
            if isinstance(ce, ComputeEnvironment):
                cr = ce.spec.computeResources
                families.add("FARGATE" if cr and cr.type.startswith("FARGATE") else "EC2")
        if len(families) > 1:
            return [
                (
                    "spec.computeEnvironmentOrder",
                    "cannot mix Fargate and EC2 compute environments in one queue",
                )
            ]
        return []
