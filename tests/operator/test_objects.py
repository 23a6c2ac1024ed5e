"""The operator's pure parts: custom resources to manifests, closures, conditions."""

from __future__ import annotations

import pytest

from reconciler.engine import conditions as c
from reconciler.operator.draft import Draft, merge_delta
from reconciler.operator.objects import (
    InvalidSpec,
    adopting,
    check,
    closure,
    deleting_jobs,
    deletion_policy,
    manifest_of,
    nudge_value,
    stack_of,
    summarize,
)
from tests import stacks
from tests.operator.conftest import manifest


def _body(text: str, namespace: str = "team-a", **extra: object) -> dict:
    body = manifest(text)
    body["metadata"].update(namespace=namespace, uid=f"uid-{body['metadata']['name']}", **extra)
    return body


def _ready(body: dict, since: str = "2030-01-01T00:00:00Z") -> dict:
    body["status"] = {
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}]
    }
    return body


def test_manifest_keeps_the_deletion_policy_and_strips_reserved_labels():
    body = _body(stacks.ce(), labels={"team": "x", "reconciler.io/stack": "shared"})
    body["spec"]["deletionPolicy"] = "Retain"
    body["metadata"]["annotations"] = {"reconciler.io/adopt": "true", "note": "kept out"}
    out = manifest_of("ComputeEnvironment", body)
    # The engine honours it as the CLI's delete does: one field, read in one place.
    assert out["spec"]["deletionPolicy"] == "Retain"
    assert out["metadata"] == {"name": "spot-ce", "namespace": "team-a", "labels": {"team": "x"}}
    assert (deletion_policy("ComputeEnvironment", body), stack_of(body), adopting(body)) == (
        "Retain",
        "shared",
        True,
    )
    check(out)  # valid as the CLI would read it


def test_stack_defaults_to_the_namespace_and_policy_to_the_kinds_default():
    body = _body(stacks.ce())
    assert (stack_of(body), deletion_policy("ComputeEnvironment", body), adopting(body)) == (
        "team-a",
        "Delete",
        False,
    )
    # A kind holding data keeps it unless told otherwise.
    bucket = {"metadata": {"name": "results"}, "spec": {}}
    assert deletion_policy("Bucket", bucket) == "Retain"
    assert deletion_policy("Bucket", {**bucket, "spec": {"deletionPolicy": "Delete"}}) == "Delete"


def test_invalid_spec_names_the_field():
    body = _body(stacks.ce())
    body["spec"]["computeResources"]["maxvCpus"] = -1
    with pytest.raises(InvalidSpec, match=r"spec\.computeResources\.maxvCpus"):
        check(manifest_of("ComputeEnvironment", body))


def test_a_missing_reference_is_not_an_invalid_spec():
    check(manifest_of("JobQueue", _body(stacks.jq())))


def test_closure_reports_missing_and_unready_references_then_builds_the_stack():
    queue = manifest_of("JobQueue", _body(stacks.jq()))
    assert closure(queue, lambda k, n: None).missing == [
        "ComputeEnvironment/spot-ce does not exist in this namespace"
    ]
    env = summarize("ComputeEnvironment", _body(stacks.ce()))
    assert "is not ready" in closure(queue, lambda k, n: env).missing[0]
    env = summarize("ComputeEnvironment", _ready(_body(stacks.ce())))
    found = closure(queue, lambda k, n: env)
    assert not found.missing
    assert [r.key for r in found.declared.resources] == [
        ("JobQueue", "main-queue"),
        ("ComputeEnvironment", "spot-ce"),
    ]


def test_nudge_value_changes_with_every_new_readiness():
    first = summarize("ComputeEnvironment", _ready(_body(stacks.ce())))
    again = summarize("ComputeEnvironment", _ready(_body(stacks.ce())))
    later = summarize("ComputeEnvironment", _ready(_body(stacks.ce()), "2030-01-02T00:00:00Z"))
    assert nudge_value([first]) == nudge_value([again]) != nudge_value([later])


def test_last_transition_time_moves_only_when_the_status_flips():
    conds = c.put([], "Ready", False, "DependencyNotReady", "waiting", 1, at="T1")
    conds = c.put(conds, "Ready", False, "ReconcileError", "boom", 2, at="T2")
    assert c.find(conds, "Ready")["lastTransitionTime"] == "T1"
    assert c.find(conds, "Ready")["observedGeneration"] == 2
    conds = c.put(conds, "Ready", True, "Available", "ok", 2, at="T3")
    assert c.find(conds, "Ready")["lastTransitionTime"] == "T3"


def test_a_status_is_written_only_when_it_changes():
    draft = Draft({}, {}, 3)
    assert draft.put("Synced", True, "ReconcileSuccess", "ok")
    draft.observed()
    delta = draft.delta()
    assert delta["observedGeneration"] == 3 and delta["conditions"][0]["type"] == "Synced"
    same = Draft(draft.after, dict(draft.after), 3)
    assert not same.put("Synced", True, "ReconcileSuccess", "ok")
    assert same.delta() == {}


def test_merge_delta_removes_keys_that_are_gone():
    old = {"tasks": {"a": {"RUNNING": 1}, "b": {"SUCCEEDED": 1}}, "runId": "x"}
    new = {"tasks": {"a": {"SUCCEEDED": 1}}, "runId": "x"}
    assert merge_delta(old, new) == {"tasks": {"a": {"RUNNING": None, "SUCCEEDED": 1}, "b": None}}


def test_merge_delta_also_removes_what_an_unseen_patch_wrote():
    served = {"jobs": {"SUBMITTED": 1}}
    sent = {"jobs": {"RUNNING": 1}}
    new = {"jobs": {"SUCCEEDED": 1}}
    assert merge_delta(served, new, sent) == {
        "jobs": {"SUBMITTED": None, "RUNNING": None, "SUCCEEDED": 1}
    }


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, {"drain": False, "force": False}),
        ("drain", {"drain": True, "force": False}),
        ("Force", {"drain": False, "force": True}),
        ("nonsense", {"drain": False, "force": False}),
    ],
)
def test_queue_deletion_with_unfinished_jobs_follows_the_annotation(annotation, expected):
    annotations = {"reconciler.io/delete-unfinished-jobs": annotation} if annotation else {}
    body = _body(stacks.jq(), annotations=annotations)
    assert deleting_jobs(body) == expected
