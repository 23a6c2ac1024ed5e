"""What a Batch job submission takes, shared by the kinds that submit work (Pipeline, Task)
and by the code that submits, follows and reports their runs (reconciler/runs/).

Not a kind of its own: the shapes of SubmitJob that several kinds use, and the estimate of a
SubmitJob request, which AWS bounds at 30 KiB [quotas].
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from reconciler.limits import (
    ARN_MAX,
    MAX_ARRAY_SIZE,
    MAX_DEPENDENCIES,
    NAME_MAX,
    SHARE_IDENTIFIER_MAX,
    SUBMIT_JOB_MAX_BYTES,
)
from reconciler.models.batch_shapes import (
    PARAMETERS,
    KeyValue,
    ResourceRequirement,
    RetryStrategy,
    Timeout,
)
from reconciler.models.common import (
    BATCH_NAME,
    OWN_TAGS_BYTES,
    RUN_TAGS,
    SANDBOX_TAGS,
    Strict,
    Tags,
    request_bytes,
    reserved_environment,
    too_large,
    too_many_tags,
)
from reconciler.models.ec2_task import BATCH_ONLY, Ec2Settings, S3Url

__all__ = [
    "MAX_DEPENDENCIES",
    "NOT_SUBMITTED",
    "TASK_NAME",
    "PipelineTask",
    "Submission",
    "TaskDependency",
]

# A task's fields that are not SubmitJob's: the run's wiring, and what EC2 tasks take.
NOT_SUBMITTED = frozenset(
    {
        "name",
        "dependsOn",
        "jobQueue",
        "sandbox",
        "tags",
        "ec2",
        "script",
        "detached",
        "inputs",
        "outputs",
    }
)
TASK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# What the tool adds to each SubmitJob beyond the task's own fields: the job's name and queue
# (names of at most 128), and up to 20 dependencies of a job ID (36) and a type each.
DEPENDENCY_BYTES = len('{"jobId":"01234567-89ab-cdef-0123-456789abcdef","type":"SEQUENTIAL"},')
WIRING_BYTES = len('"jobName":"","jobQueue":"",') + 2 * NAME_MAX


class ContainerOverrides(Strict):
    command: list[str] | None = None
    environment: list[KeyValue] | None = None
    resourceRequirements: list[ResourceRequirement] | None = None
    instanceType: str | None = None

    @model_validator(mode="after")
    def _own_environment(self) -> ContainerOverrides:
        reserved = reserved_environment([e.name for e in self.environment or []])
        if reserved:
            raise ValueError(reserved)
        return self


class ArrayProperties(Strict):
    size: int = Field(ge=2, le=MAX_ARRAY_SIZE)


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

    jobDefinition: str | None = Field(
        default=None,
        min_length=1,
        max_length=ARN_MAX,
        description="A JobDefinition of the stack by name (its current revision), or an "
        "external one as name:revision or ARN. Not with ec2.",
    )
    jobQueue: str | None = Field(
        default=None,
        pattern=BATCH_NAME,
        description="Overrides the pipeline's queue: a JobQueue of the stack, by name.",
    )
    parameters: Annotated[dict[str, str] | None, PARAMETERS] = None
    containerOverrides: ContainerOverrides | None = None
    arrayProperties: ArrayProperties | None = None
    retryStrategy: RetryStrategy | None = None
    timeout: Timeout | None = None
    tags: Tags | None = None
    propagateTags: bool | None = None
    schedulingPriorityOverride: int | None = Field(default=None, ge=0, le=9999)
    shareIdentifier: str | None = Field(
        default=None, max_length=SHARE_IDENTIFIER_MAX, pattern=r"^[A-Za-z0-9]+\*?$"
    )
    sandbox: SandboxBehaviour | None = None
    ec2: Ec2Settings | None = Field(
        default=None,
        description="Run `script` on an EC2 instance of its own instead of a Batch job.",
    )
    script: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024 * 1024,
        description="With ec2: the bash script the instance runs.",
    )
    detached: bool = Field(
        default=False,
        description="With ec2: launch and do not wait; nothing may depend on it. Follow it "
        "later with `reconciler logs`.",
    )
    inputs: list[S3Url] | None = Field(
        default=None,
        max_length=1000,
        description="Files the task reads: it runs after the tasks that write them.",
    )
    outputs: list[S3Url] | None = Field(
        default=None,
        max_length=1000,
        description="Files the task writes: when all exist and are newer than every input, "
        "the task is skipped as up to date.",
    )

    @property
    def external_definition(self) -> bool:
        return ":" in (self.jobDefinition or "")

    @model_validator(mode="after")
    def _batch_or_ec2(self) -> Submission:
        if self.ec2 is None:
            if self.jobDefinition is None:
                raise ValueError("jobDefinition: required (or ec2 and script, to run on EC2)")
            for name in ("script", "detached"):
                if getattr(self, name):
                    raise ValueError(f"{name}: only with ec2")
            return self
        wrong = [f for f in BATCH_ONLY if getattr(self, f) is not None]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: Batch fields, not with ec2")
        if self.script is None:
            raise ValueError("script: required with ec2")
        return self


class PipelineTask(Submission):
    name: str = Field(pattern=TASK_NAME)
    dependsOn: list[TaskDependency] | None = None


def task_request_problems(
    task: PipelineTask, labels: dict[str, str], path: str
) -> list[tuple[str, str]]:
    """What AWS would refuse in the SubmitJob request of one task: too many tags once the
    resource's labels and the run's own are added, or a request over 30 KiB. The estimate is
    from above: the longest job and queue names, the most dependencies a job can have."""
    own = RUN_TAGS + (SANDBOX_TAGS if task.sandbox else 0)
    tags = {**labels, **(task.tags or {})}
    if task.ec2 is not None:  # no SubmitJob: the instance's tags are bounded the same way
        return too_many_tags(tags, own, f"{path}.tags")
    body: dict[str, Any] = task.model_dump(mode="json", exclude_none=True, exclude=NOT_SUBMITTED)
    body["tags"] = tags
    dependencies = min(len(task.dependsOn or []), MAX_DEPENDENCIES)
    size = request_bytes(body) + WIRING_BYTES + dependencies * DEPENDENCY_BYTES + OWN_TAGS_BYTES
    return too_many_tags(tags, own, f"{path}.tags") + too_large(
        "SubmitJob", size, SUBMIT_JOB_MAX_BYTES, path
    )


def file_dependencies(tasks: list[PipelineTask]) -> dict[str, set[str]]:
    """Task -> the tasks whose outputs it reads (bds's file dependencies): it runs after them."""
    writers: dict[str, str] = {}
    for t in tasks:
        for url in t.outputs or []:
            writers.setdefault(url, t.name)
    return {
        t.name: found
        for t in tasks
        if (found := {writers[u] for u in t.inputs or [] if u in writers} - {t.name})
    }
