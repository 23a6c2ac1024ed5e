"""Shapes AWS Batch uses both in job definitions and in job submissions (SubmitJob's
overrides, retry strategy and timeout), so that the two kinds of document agree on them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.limits import EVALUATE_ON_EXIT_PATTERN_MAX, INT32_MAX
from reconciler.models.common import Quantity, Strict


class KeyValue(Strict):
    name: str = Field(min_length=1)
    value: str = ""


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
