"""A role just created is not yet visible to the service asked to use it: the step is asked
again a bounded number of times, without sleeping in a thread; other errors are raised."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.aws.errors import iam_propagating
from reconciler.engine.types import Pending
from reconciler.errors import TerminalError
from reconciler.kinds.polling import IAM_DELAYS, after_iam

NOT_YET = TerminalError(
    "CreateComputeEnvironment: ClientException: Unable to assume role and validate the "
    "specified serviceRole"
)


def _flaky(failures: int, error: Exception = NOT_YET) -> Any:
    calls = {"n": 0}

    def step(_c: Any) -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error
        return "created"

    return step, calls


def _drive(run: Any) -> tuple[str, list[float]]:
    delays = []
    out = run(None)
    while isinstance(out, Pending):
        delays.append(out.delay)
        out = out.check(None)
    return out, delays


@pytest.mark.parametrize(
    "message",
    [
        "ClientException: Unable to assume role and validate the specified serviceRole",
        "InvalidParameterValue: Invalid IAM Instance Profile name",
        "ClientException: instance profile arn:aws:iam::1:instance-profile/x does not exist",
        "AccessDenied: ... is not authorized to perform: sts:AssumeRole on resource ...",
        "CreateSchedule: ValidationException: The execution role you provide must allow AWS "
        "EventBridge Scheduler to assume the role.",
    ],
)
def test_what_iam_says_while_propagating_is_recognised(message: str) -> None:
    assert iam_propagating(TerminalError(message))


def test_unrelated_errors_are_not_taken_for_propagation() -> None:
    assert not iam_propagating(TerminalError("ClientException: maxvCpus must be positive"))
    assert not iam_propagating(ValueError("Unable to assume role"))  # not from AWS


def test_asked_again_with_growing_delays_until_it_succeeds() -> None:
    step, calls = _flaky(3)
    out, delays = _drive(after_iam(step, "creating ce"))
    assert out == "created" and calls["n"] == 4
    assert delays == list(IAM_DELAYS[:3])


def test_bounded_then_the_error_is_raised() -> None:
    step, calls = _flaky(100)
    with pytest.raises(TerminalError, match="Unable to assume role"):
        _drive(after_iam(step, "creating ce"))
    assert calls["n"] == len(IAM_DELAYS) + 1
    assert sum(IAM_DELAYS) < 60


def test_any_other_error_is_raised_at_once() -> None:
    step, calls = _flaky(1, TerminalError("ClientException: bad subnet"))
    with pytest.raises(TerminalError, match="bad subnet"):
        after_iam(step, "creating ce")(None)
    assert calls["n"] == 1
