"""A spec identical to what AWS has is told without deepdiff (most of a plan at 300
resources); anything deepdiff would call a change still is one, types included."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import reconciler.engine.diff as diff_module
from reconciler.engine.diff import diff
from reconciler.models.compute_environment import ComputeEnvironmentSpec
from reconciler.models.job_definition import JobDefinitionSpec
from tests.unit.test_diff import CE, JD


def test_an_identical_spec_has_no_changes_and_is_not_handed_to_deepdiff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("deepdiff called for identical specs")

    monkeypatch.setattr(diff_module, "DeepDiff", refuse)
    assert diff(copy.deepcopy(JD), copy.deepcopy(JD), JobDefinitionSpec) == []
    actual = copy.deepcopy(CE)  # AWS's extra fields and other list order change nothing
    actual["computeResources"]["ec2KeyPair"] = None
    actual["computeEnvironmentArn"] = "arn:aws:batch:us-east-1:1:compute-environment/x"
    assert diff(copy.deepcopy(CE), actual, ComputeEnvironmentSpec) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [(16, 16.0), (1, True), (0, False), ("16", 16)],
    ids=["int-float", "int-bool", "zero-false", "str-int"],
)
def test_values_equal_in_python_but_of_another_type_are_still_changes(old: Any, new: Any) -> None:
    actual, desired = copy.deepcopy(CE), copy.deepcopy(CE)
    actual["computeResources"]["maxvCpus"] = old
    desired["computeResources"]["maxvCpus"] = new
    changes = diff(desired, actual, ComputeEnvironmentSpec)
    assert [c.path for c in changes] == ["computeResources.maxvCpus"]
