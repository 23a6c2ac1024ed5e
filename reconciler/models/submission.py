"""What a Batch job submission takes, shared by the kinds that submit work (Pipeline, Task)
and by the code that submits, follows and reports their runs (reconciler/runs/).

Not a kind of its own: the shapes of SubmitJob that several kinds use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from reconciler.models.batch_shapes import (
    PARAMETERS,
    KeyValue,
    ResourceRequirement,
    RetryStrategy,
    Timeout,
)
from reconciler.models.common import Strict, Tags

MAX_DEPENDENCIES = 20  # AWS: a job may depend on at most 20 jobs
TASK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class ContainerOverrides(Strict):
    command: list[str] | None = None
    environment: list[KeyValue] | None = None
    resourceRequirements: list[ResourceRequirement] | None = None
    instanceType: str | None = None


class ArrayProperties(Strict):
    size: int = Field(ge=2, le=10_000)


class TaskDependency(Strict):
    task: str | None = Field(
        default=None,
        description="Omit with SEQUENTIAL: the array's own children run one after another.",
    )
    type: Literal["N_TO_N", "SEQUENTIAL"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> TaskDependency:
        if self.type == "SEQUENTIAL" and self.task is not None:
            raise ValueError("SEQUENTIAL names no task: it orders the array's own children")
        if self.type != "SEQUENTIAL" and self.task is None:
            raise ValueError("task: required unless type is SEQUENTIAL")
        return self


class SandboxBehaviour(Strict):
    """How the task behaves on the embedded sandbox only (demos and tests); ignored on AWS."""

    outcome: Literal["succeed", "fail"] = "succeed"
    exitCode: int | None = Field(default=None, ge=0, le=255)


class Submission(Strict):
    """What SubmitJob takes, minus the job name and queue wiring."""

    jobDefinition: str = Field(
        min_length=1,
        description="A JobDefinition of the stack by name (its current revision), or an "
        "external one as name:revision or ARN.",
    )
    jobQueue: str | None = Field(default=None, description="Overrides the pipeline's queue.")
    parameters: Annotated[dict[str, str] | None, PARAMETERS] = None
    containerOverrides: ContainerOverrides | None = None
    arrayProperties: ArrayProperties | None = None
    retryStrategy: RetryStrategy | None = None
    timeout: Timeout | None = None
    tags: Tags | None = None
    propagateTags: bool | None = None
    schedulingPriorityOverride: int | None = Field(default=None, ge=0, le=9999)
    shareIdentifier: str | None = None
    sandbox: SandboxBehaviour | None = None

    @property
    def external_definition(self) -> bool:
        return ":" in self.jobDefinition


class PipelineTask(Submission):
    name: str = Field(pattern=TASK_NAME)
    dependsOn: list[TaskDependency] | None = None
