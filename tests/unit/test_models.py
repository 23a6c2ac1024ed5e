"""Models: examples validate, quantities become strings, JSON Schemas are current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler import schema
from reconciler.errors import ManifestError
from reconciler.manifests import load_paths, validate_documents
from reconciler.manifests.loader import load_text
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.job_definition import JobDefinition
from reconciler.models.job_queue import JobQueue
from reconciler.registry import kind_for, models

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
STORAGE = "00-storage-and-roles.yaml"


def test_example_manifests_validate() -> None:
    stack = validate_documents(load_paths([str(EXAMPLES)]))
    assert sorted(r.key for r in stack.resources) == [
        ("Bucket", "stress-results"),
        ("ComputeEnvironment", "stress-ondemand"),
        ("ComputeEnvironment", "stress-spot"),
        ("JobDefinition", "poller"),
        ("JobDefinition", "stress-ng-follower"),
        ("JobDefinition", "stress-ng-leader"),
        ("JobQueue", "stress-ng-queue"),
        ("MachineImage", "stress-worker"),
        ("Notification", "batch-alerts"),
        ("Pipeline", "stress"),
        ("Role", "ec2-agent"),
        ("Role", "stress-execution"),
        ("Role", "stress-instance"),
        ("Role", "stress-job"),
        ("Schedule", "poller-hourly"),
        ("Task", "count"),
        ("Task", "poller"),
    ]
    files = {
        "Pipeline": "stress-pipeline.yaml",
        "Bucket": STORAGE,
        "Role": STORAGE,
        "Schedule": "poller.yaml",
        "Task": "poller.yaml",
        ("JobDefinition", "poller"): "poller.yaml",
        "Notification": "notifications.yaml",
        ("Task", "count"): "ec2-count.yaml",
    }
    for key, (file, line) in stack.sources.items():
        expected = files.get(key, files.get(key[0], "batch-stack.yaml"))
        assert file.endswith(expected), key
        assert line >= 1


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.y*ml")), ids=lambda p: p.name)
def test_each_example_file_validates_with_the_infrastructure_stack(path: Path) -> None:
    """Pipelines refer to the queue and definitions of batch-stack.yaml, which refers to the
    roles and bucket of the storage file; nothing else is needed."""
    paths = sorted({str(path), str(EXAMPLES / "batch-stack.yaml"), str(EXAMPLES / STORAGE)})
    assert validate_documents(load_paths(paths)).resources


def test_example_resource_requirements_are_strings() -> None:
    stack = validate_documents(load_paths([str(EXAMPLES)]))
    follower = stack.get("JobDefinition", "stress-ng-follower")
    assert isinstance(follower, JobDefinition)
    cp = follower.spec.containerProperties
    assert cp is not None and cp.resourceRequirements is not None
    assert [(r.type, r.value) for r in cp.resourceRequirements] == [
        ("VCPU", "1"),
        ("MEMORY", "1024"),
    ]


def _job(requirements: list[dict[str, Any]]) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "kind": "JobDefinition",
            "metadata": {"name": "jd"},
            "spec": {
                "containerProperties": {"image": "busybox", "resourceRequirements": requirements}
            },
        }
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1, "1"), (0.25, "0.25"), (2048, "2048"), ("4", "4"), ("0.5", "0.5")],
)
def test_resource_requirement_numbers_are_coerced_to_strings(given: Any, expected: str) -> None:
    jd = _job([{"type": "VCPU", "value": given}, {"type": "MEMORY", "value": 512}])
    cp = jd.spec.containerProperties
    assert cp is not None and cp.resourceRequirements is not None
    values = {r.type: r.value for r in cp.resourceRequirements}
    assert values == {"VCPU": expected, "MEMORY": "512"}
    dumped = jd.spec.model_dump(mode="json", exclude_none=True)
    assert dumped["containerProperties"]["resourceRequirements"][0]["value"] == expected


@pytest.mark.parametrize("value", [True, 0, -1, "lots"])
def test_resource_requirement_bad_values_are_rejected(value: Any) -> None:
    with pytest.raises(ValidationError):
        _job([{"type": "VCPU", "value": value}, {"type": "MEMORY", "value": 512}])


def test_unknown_field_is_an_error_with_a_suggestion() -> None:
    text = """\
apiVersion: reconciler.io/v1alpha1
kind: JobQueue
metadata: {name: q1}
spec:
  priority: 1
  computeEnvironmentOrdr: []
"""
    with pytest.raises(ManifestError) as info:
        validate_documents(load_text(text, "q.yaml"))
    messages = [str(p) for p in info.value.problems]
    assert any(
        "q.yaml:6" in m and "did you mean 'computeEnvironmentOrder'" in m for m in messages
    ), messages


def test_queue_referring_to_unknown_environment_is_an_error() -> None:
    text = """\
apiVersion: reconciler.io/v1alpha1
kind: JobQueue
metadata: {name: q1}
spec:
  priority: 1
  computeEnvironmentOrder:
    - {order: 1, computeEnvironment: nowhere}
"""
    with pytest.raises(ManifestError, match="refers to unknown ComputeEnvironment 'nowhere'"):
        validate_documents(load_text(text, "q.yaml"))


def test_kind_for_accepts_kind_plural_and_short_names() -> None:
    for word in ("ComputeEnvironment", "computeenvironments", "computeenvironment", "ce"):
        assert kind_for(word) is ComputeEnvironment
    assert kind_for("jq") is JobQueue
    assert kind_for("JobDefinitions") is JobDefinition
    assert kind_for("nope") is None


def test_json_schemas_are_current() -> None:
    directory = ROOT / "schemas"
    assert schema.stale(directory) == [], "run `reconciler schema --dir schemas`"
    assert sorted(p.name for p in directory.glob("*.json")) == sorted(f"{k}.json" for k in models())


def test_stale_reports_missing_and_changed_files(tmp_path: Path) -> None:
    assert sorted(schema.stale(tmp_path)) == sorted(f"{k}.json" for k in models())
    schema.write(tmp_path)
    assert schema.stale(tmp_path) == []
    (tmp_path / "JobQueue.json").write_text("{}\n")
    assert schema.stale(tmp_path) == ["JobQueue.json"]
