"""Schedule: run a Task or a Pipeline of the stack on a cron, rate or one-time schedule.

Serverless, as the poller of the seed wants: nothing of ours runs for a schedule to fire. AWS
EventBridge Scheduler holds the schedule; a Task target is a Batch SubmitJob (a universal
target), a Pipeline target a Step Functions state machine generated from the DAG (kinds/
schedule.py says why). The expression and the timezone are checked here, with no AWS call
(`reconciler/cron.py`): AWS accepts a cron that never fires, and says nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from reconciler.cron import ExpressionError, never_fires_problem, parse, zone
from reconciler.models.common import (
    BATCH_NAME,
    Metadata,
    Resource,
    RoleOrReference,
    RoleReference,
    Spec,
    Strict,
)

# EventBridge Scheduler's limits [scheduler API reference]: schedule names 1-64 of
# [0-9a-zA-Z-_.]; the tool also uses the name in job and role names, so it keeps Batch's rule.
SCHEDULE_NAME_MAX = 64
DESCRIPTION_MAX = 512
SQS_ARN = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$"
TASK_KIND, PIPELINE_KIND = "Task", "Pipeline"


class ScheduleMetadata(Metadata):
    name: str = Field(
        pattern=BATCH_NAME, max_length=SCHEDULE_NAME_MAX, description="The schedule's name."
    )


class FlexibleTimeWindow(Strict):
    mode: Literal["OFF", "FLEXIBLE"] = "OFF"
    maximumWindowInMinutes: int | None = Field(
        default=None, ge=1, le=1440, description="FLEXIBLE: fire within this many minutes."
    )

    @model_validator(mode="after")
    def _window(self) -> FlexibleTimeWindow:
        if self.mode == "FLEXIBLE" and self.maximumWindowInMinutes is None:
            raise ValueError("maximumWindowInMinutes: mode FLEXIBLE needs a window")
        if self.mode == "OFF" and self.maximumWindowInMinutes is not None:
            raise ValueError("maximumWindowInMinutes: only with mode FLEXIBLE")
        return self


class RetryPolicy(Strict):
    """How long and how often Scheduler retries a target it could not invoke."""

    maximumEventAgeInSeconds: int = Field(default=86400, ge=60, le=86400)
    maximumRetryAttempts: int = Field(default=185, ge=0, le=185)


class DeadLetterQueue(Strict):
    """Where Scheduler sends a firing it could not deliver: an SQS queue's ARN, or one the
    tool creates (and deletes with the schedule)."""

    arn: str | None = Field(default=None, pattern=SQS_ARN)
    create: bool = False

    @model_validator(mode="after")
    def _one(self) -> DeadLetterQueue:
        if (self.arn is None) == (not self.create):
            raise ValueError("give exactly one of arn and create: true")
        return self


class ScheduleTarget(Strict):
    """What each firing runs: a Task (one job or array job) or a Pipeline (the whole DAG), by
    `metadata.name`. Mark it `submitOnApply: false` so that applying does not also run it."""

    task: str | None = Field(default=None, pattern=BATCH_NAME)
    pipeline: str | None = Field(default=None, pattern=BATCH_NAME)

    @model_validator(mode="after")
    def _one(self) -> ScheduleTarget:
        if (self.task is None) == (self.pipeline is None):
            raise ValueError("give exactly one of task and pipeline")
        return self

    @property
    def kind(self) -> str:
        return TASK_KIND if self.task else PIPELINE_KIND

    @property
    def name(self) -> str:
        return str(self.task or self.pipeline)


class ScheduleSpec(Spec):
    schedule: str = Field(
        max_length=256,
        description="cron(min hour day-of-month month day-of-week year), rate(1 hour) or "
        "at(yyyy-mm-ddThh:mm:ss).",
    )
    timezone: str = Field(default="UTC", max_length=50, description="IANA timezone name.")
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    startDate: dt.datetime | None = Field(
        default=None,
        description="No firing before this date (UTC unless it says otherwise); a rate counts "
        "from it. Ignored for at().",
    )
    endDate: dt.datetime | None = Field(
        default=None,
        description="No firing from this date on (UTC unless it says otherwise). Ignored for at().",
    )
    flexibleTimeWindow: FlexibleTimeWindow = Field(default_factory=FlexibleTimeWindow)
    retryPolicy: RetryPolicy | None = None
    deadLetterQueue: DeadLetterQueue | None = None
    role: RoleOrReference | None = Field(
        default=None,
        description="The role Scheduler assumes (name or ARN); omitted: the tool creates one "
        "that may only submit this target.",
    )
    target: ScheduleTarget

    @field_validator("schedule")
    @classmethod
    def _expression(cls, value: str) -> str:
        try:
            parse(value)
            problem = never_fires_problem(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from exc
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("startDate", "endDate")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        """Scheduler's dates are instants in UTC: a date without an offset is taken as UTC."""
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)

    @model_validator(mode="after")
    def _window(self) -> ScheduleSpec:
        if self.startDate and self.endDate and self.endDate <= self.startDate:
            raise ValueError("endDate: must be after startDate")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from exc
        return value


class Schedule(Resource):
    """An EventBridge Scheduler schedule that runs a Task or a Pipeline of the stack."""

    KIND: ClassVar[str] = "Schedule"
    PLURAL: ClassVar[str] = "schedules"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sched",)

    kind: Literal["Schedule"]
    metadata: ScheduleMetadata
    spec: ScheduleSpec

    def references(self) -> list[tuple[str, str, str]]:
        target = self.spec.target
        path = "spec.target.task" if target.task else "spec.target.pipeline"
        out = [(target.kind, target.name, path)]
        if isinstance(self.spec.role, RoleReference):
            out.append(("Role", self.spec.role.role, "spec.role"))
        return out

    def cross_problems(
        self, lookup: Callable[[str, str], Resource | None]
    ) -> list[tuple[str, str]]:
        """A firing submits Batch jobs and nothing else runs (serverless): work that needs a
        driver (EC2 tasks, tasks ordered by files) cannot be a schedule's target."""
        target = lookup(self.spec.target.kind, self.spec.target.name)
        tasks = target.task_list() if target is not None and hasattr(target, "task_list") else []
        driven = [t.name for t in tasks if t.ec2 is not None or t.inputs or t.outputs]
        path = "spec.target.task" if self.spec.target.task else "spec.target.pipeline"
        if driven:
            return [
                (
                    path,
                    f"{', '.join(driven)}: EC2 tasks and tasks with inputs/outputs need a driver "
                    "(apply or the operator); a schedule fires Batch tasks only",
                )
            ]
        return []
