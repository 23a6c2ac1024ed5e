"""Notification: Batch job state changes of the stack's queues, to SNS subscribers and Slack.

A kind of its own rather than a `notifications:` block on JobQueue, Pipeline or Task: one
alert usually covers several queues and pipelines (the seed's team channel gets every job of
the environment), and its parts (an EventBridge rule, an SNS topic and its policy, the
subscriptions, the Slack function and its role, a dead-letter queue) have their own lifecycle:
deleting an alert must not touch a queue, and a queue's plan must not grow a rule and a topic.

Wiring, as the seed draws it: EventBridge rule (`source: aws.batch`, `detail-type: Batch Job
State Change`, the statuses and queues asked for) -> SNS topic -> subscribers (email, HTTPS,
SQS) and the Slack function shipped in this package (reconciler/notify/slack.py), which reads
the webhook URL from Secrets Manager or SSM at run time: the URL is never in a manifest.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from reconciler.models.common import BATCH_NAME, Metadata, Resource, Spec, Strict

JobState = Literal["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
SNS_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
SQS_ARN = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}$"
SECRET_ARN = (
    r"^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]{1,1011})$"
)
QUEUE_KIND = "JobQueue"


class Topic(Strict):
    """The SNS topic: one the tool creates (with a policy letting EventBridge publish), or an
    existing one by ARN (its policy is yours: it must let events.amazonaws.com publish)."""

    create: bool = False
    arn: str | None = Field(default=None, pattern=SNS_ARN)

    @model_validator(mode="after")
    def _one(self) -> Topic:
        if (self.arn is None) == (not self.create):
            raise ValueError("give exactly one of arn and create: true")
        return self


class Subscription(Strict):
    protocol: Literal["email", "https", "http", "sqs"]
    endpoint: str = Field(min_length=1, max_length=2048, description="Address, URL or queue ARN.")

    @model_validator(mode="after")
    def _endpoint(self) -> Subscription:
        ok = {
            "email": "@" in self.endpoint,
            "https": self.endpoint.startswith("https://"),
            "http": self.endpoint.startswith("http://"),
            "sqs": self.endpoint.startswith("arn:") and ":sqs:" in self.endpoint,
        }[self.protocol]
        if not ok:
            raise ValueError(f"endpoint: not an endpoint for protocol {self.protocol}")
        return self


class Slack(Strict):
    webhookUrlSecret: str = Field(
        max_length=2048,
        description="ARN of the Secrets Manager secret or SSM parameter holding the webhook URL.",
    )

    @field_validator("webhookUrlSecret")
    @classmethod
    def _an_arn(cls, value: str) -> str:
        # Never quote the value: it may be the webhook URL itself, which is a secret.
        if not re.match(SECRET_ARN, value):
            raise ValueError(
                "must be the ARN of a Secrets Manager secret or an SSM parameter that holds "
                "the webhook URL (the URL itself is a secret: never put it in a manifest)"
            )
        return value


class DeadLetterQueue(Strict):
    create: bool = False
    arn: str | None = Field(default=None, pattern=SQS_ARN)

    @model_validator(mode="after")
    def _one(self) -> DeadLetterQueue:
        if (self.arn is None) == (not self.create):
            raise ValueError("give exactly one of arn and create: true")
        return self


class NotificationSpec(Spec):
    statuses: list[JobState] = Field(
        default_factory=lambda: ["FAILED"], min_length=1, description="Job states to notify."
    )
    jobQueues: list[str] | None = Field(
        default=None, description="JobQueues of the stack, by name; omitted: every queue."
    )
    pipelines: list[str] | None = Field(
        default=None, description="Only jobs of these Pipelines and Tasks, by name."
    )
    topic: Topic = Field(default_factory=lambda: Topic(create=True))
    subscriptions: list[Subscription] = Field(default_factory=list, max_length=100)
    slack: Slack | None = None
    deadLetterQueue: DeadLetterQueue | None = Field(
        default=None, description="Where events EventBridge could not deliver go."
    )
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"

    @model_validator(mode="after")
    def _distinct(self) -> NotificationSpec:
        for name, values in (("statuses", self.statuses), ("jobQueues", self.jobQueues)):
            if values and len(set(values)) != len(values):
                raise ValueError(f"{name}: a value appears twice")
        for queue in self.jobQueues or []:
            if not _batch_name(queue):
                raise ValueError(f"jobQueues: {queue!r} is not a queue name")
        return self


def _batch_name(text: str) -> bool:
    return re.match(BATCH_NAME, text) is not None


class NotificationMetadata(Metadata):
    name: str = Field(pattern=BATCH_NAME, max_length=48, description="The notification's name.")


class Notification(Resource):
    """Batch job state changes of the stack, to an SNS topic's subscribers and to Slack."""

    KIND: ClassVar[str] = "Notification"
    PLURAL: ClassVar[str] = "notifications"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("notif",)

    kind: Literal["Notification"]
    metadata: NotificationMetadata
    spec: NotificationSpec

    def references(self) -> list[tuple[str, str, str]]:
        queues = self.spec.jobQueues or []
        return [(QUEUE_KIND, q, f"spec.jobQueues.{i}") for i, q in enumerate(queues)]
