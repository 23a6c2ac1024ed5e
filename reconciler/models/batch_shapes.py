"""Shapes AWS Batch uses both in job definitions and in job submissions (SubmitJob's
overrides, retry strategy and timeout), so that the two kinds of document agree on them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from reconciler.limits import EVALUATE_ON_EXIT_PATTERN_MAX, INT32_MAX
from reconciler.models.common import BucketReference, Quantity, Strict
from reconciler.models.fields import SENSITIVITY, secret_by_name

# Where a secret belongs instead of a plain value: Batch hands the container the secret's
# value at start, and plans, manifests and DescribeJobDefinitions show only the reference.
SECRETS_INSTEAD = (
    "a secrets entry of the job definition whose valueFrom is the ARN of a Secrets Manager "
    "secret or an SSM Parameter Store parameter"
)
# A job's parameters are substituted into its command, where any process can read them.
PARAMETERS = secret_by_name(f"an environment variable from {SECRETS_INSTEAD}")
SENSITIVE_DOC = (
    "Whether the value is a secret, never shown in plans, get or events: true hides it although "
    "its name does not look secret, false shows one whose name does (and silences the warning); "
    "unset: the name decides. Ours: never sent to AWS."
)


class KeyValue(Strict):
    """An environment variable. Its value is hidden from every output when its name looks like
    a secret's or `sensitive` says so (models/sensitive.py); the diff still compares it."""

    name: str = Field(min_length=1)
    value: Annotated[str, secret_by_name(SECRETS_INSTEAD)] | BucketReference = Field(
        default="", description="The value, or {bucket: NAME, as: name|url|arn} of the stack."
    )
    sensitive: Annotated[bool | None, SENSITIVITY, Field(description=SENSITIVE_DOC)] = None


class ResourceRequirement(Strict):
    type: Literal["GPU", "VCPU", "MEMORY"]
    value: Quantity


class EvaluateOnExit(Strict):
    action: Literal["RETRY", "EXIT", "retry", "exit"]
    onStatusReason: str | None = Field(default=None, max_length=EVALUATE_ON_EXIT_PATTERN_MAX)
    onReason: str | None = Field(default=None, max_length=EVALUATE_ON_EXIT_PATTERN_MAX)
    onExitCode: str | None = Field(default=None, max_length=EVALUATE_ON_EXIT_PATTERN_MAX)


class RetryStrategy(Strict):
    attempts: int | None = Field(default=None, ge=1, le=10)
    evaluateOnExit: list[EvaluateOnExit] | None = Field(default=None, max_length=5)


class Timeout(Strict):
    attemptDurationSeconds: int = Field(ge=60, le=INT32_MAX)
