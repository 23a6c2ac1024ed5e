"""Resources and label selectors as kubectl takes them (reconciler/selectors.py), kubectl's
List as apply reads it, and the manifest a live resource is written as (models/written.py):
pure, no AWS."""

from __future__ import annotations

import pytest

from reconciler.models.job_definition import JobDefinitionSpec
from reconciler.models.written import defaulted, hide_secrets, set_at, written
from reconciler.registry import models
from reconciler.selectors import LabelSelector, Target, parse_labels, parse_targets

KINDS = {m.PLURAL: m.KIND for m in models().values()}
JQ, CE = KINDS["jobqueues"], KINDS["computeenvironments"]


@pytest.mark.parametrize(
    "words, expected",
    [
        ([], []),
        (["jobqueues"], [Target(JQ)]),
        (["jobqueue"], [Target(JQ)]),
        (["JobQueue"], [Target(JQ)]),
        (["jq"], [Target(JQ)]),
        (["jq,ce"], [Target(JQ), Target(CE)]),
        (["jq", "a", "b", "a"], [Target(JQ, "a"), Target(JQ, "b")]),
        (["jq/a", "ce/b"], [Target(JQ, "a"), Target(CE, "b")]),
        (["jq", "ce/b"], [Target(JQ), Target(CE, "b")]),  # get -f's old form still works
    ],
)
def test_targets(words: list[str], expected: list[Target]) -> None:
    assert parse_targets(words) == expected


@pytest.mark.parametrize(
    "words, message",
    [
        (
            ["gadgets/x"],
            "unknown kind 'gadgets' in 'gadgets/x'; known kinds: .*computeenvironments",
        ),
        (["gadgets", "x"], "unknown kind 'gadgets'"),
        (["jq,ce", "x"], "names can follow one kind only"),
        (["jq/"], "is not KIND/NAME"),
        (["jq/a/b"], "is not KIND/NAME"),
        ([","], "unknown kind"),
    ],
)
def test_bad_targets(words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_targets(words)


def test_label_selectors() -> None:
    labels = {"team": "genomics", "tier": "batch"}
    assert parse_labels(()).matches(labels) and not parse_labels(())
    assert parse_labels("team=genomics").matches(labels)
    assert parse_labels("team==genomics").matches(labels)
    assert not parse_labels("team=infra").matches(labels)
    assert parse_labels("team!=infra").matches(labels)
    assert parse_labels("owner!=x").matches(labels)  # absent is not equal
    assert parse_labels("tier").matches(labels) and not parse_labels("owner").matches(labels)
    assert parse_labels("!owner").matches(labels) and not parse_labels("!tier").matches(labels)
    assert parse_labels("team=genomics, tier=batch").matches(labels)
    assert not parse_labels(["team=genomics", "tier=web"]).matches(labels)
    assert parse_labels("empty=").matches({"empty": ""})
    assert isinstance(parse_labels(None), LabelSelector)


@pytest.mark.parametrize("text", ["a=b=c", "=x", "a,,b", "a b", "!", "a!b"])
def test_bad_label_selectors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_labels(text)


def test_written_drops_what_users_do_not_write() -> None:
    live = {
        "type": "container",  # the default
        "parameters": {},
        "containerProperties": {
            "image": "busybox",
            "vcpus": 1,
            "memory": 256,
            "environment": [],
            "volumes": [],
            "mountPoints": [],
            "executionRoleArn": None,
            "privileged": False,
            "logConfiguration": {"logDriver": "awslogs", "options": {}, "secretOptions": []},
            "somethingNew": "from a newer API",
        },
        "revisionHistoryLimit": 5,
        "propagateTags": False,
        "platformCapabilities": ["EC2"],
    }
    assert written(live, JobDefinitionSpec) == {
        "containerProperties": {
            "image": "busybox",
            "vcpus": 1,
            "memory": 256,
            "privileged": False,
            "logConfiguration": {"logDriver": "awslogs"},
        },
        "propagateTags": False,  # filled in by AWS (late-init): kept as AWS has it
        "platformCapabilities": ["EC2"],
    }


def test_secrets_are_hidden_where_they_are() -> None:
    spec_data = {
        "containerProperties": {
            "image": "busybox",
            "vcpus": 1,
            "memory": 256,
            "environment": [
                {"name": "MODE", "value": "fast"},
                {"name": "DB_PASSWORD", "value": "hunter2"},
            ],
        },
        "parameters": {"apiToken": "t0k3n", "size": "3"},
    }
    spec = JobDefinitionSpec.model_validate(spec_data)
    hidden = hide_secrets(spec_data, spec)
    assert sorted(hidden) == [
        "spec.containerProperties.environment.1.value",
        "spec.parameters.apiToken",
    ]
    assert "hunter2" not in str(spec_data) and "t0k3n" not in str(spec_data)
    assert spec_data["containerProperties"]["environment"][0]["value"] == "fast"
    assert spec_data["parameters"]["size"] == "3"


def test_set_at() -> None:
    doc = {"spec": {"order": [{"ce": "a"}, {"ce": "b"}]}}
    set_at(doc, "spec.order.1.ce", "c")
    assert doc == {"spec": {"order": [{"ce": "a"}, {"ce": "c"}]}}


def test_a_kubectl_list_is_one_document_per_item_at_its_line() -> None:
    """`get -o json` prints several resources as a kubectl List: `apply -f` reads each item,
    and a problem is reported at the item's own line."""
    from reconciler.errors import ManifestError
    from reconciler.manifests.loader import load_text
    from reconciler.manifests.validate import validate_documents

    text = """{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "reconciler.io/v1alpha1", "kind": "JobQueue", "metadata": {"name": "a"},
   "spec": {"priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "c"}]}},
  {"apiVersion": "reconciler.io/v1alpha1", "kind": "JobQueue", "metadata": {"name": "b"},
   "spec": {"priority": 5000, "computeEnvironmentOrder": []}}
]}"""
    docs = load_text(text, "list.json")
    assert [(d.line, d.data["metadata"]["name"]) for d in docs] == [(2, "a"), (4, "b")]
    with pytest.raises(ManifestError) as caught:
        validate_documents(docs)
    assert any(
        str(p).startswith("list.json:5: JobQueue/b: spec.priority") for p in caught.value.problems
    )


def test_defaulted_names_what_a_manifest_cannot_leave_unset() -> None:
    """A field AWS has unset but the model defaults to something (a bucket's encryption):
    the manifest cannot say "unset". The tool's own (local) fields never count."""
    bucket_spec = next(m for m in models().values() if m.PLURAL == "buckets").model_fields["spec"]
    spec_model = bucket_spec.annotation
    assert defaulted(
        {"encryption": None, "publicAccessBlock": {"blockPublicAcls": True}}, spec_model
    ) == ["encryption"]
    live = {"type": "container", "containerProperties": {"image": "x"}}  # no history limit
    assert defaulted(live, JobDefinitionSpec) == []
