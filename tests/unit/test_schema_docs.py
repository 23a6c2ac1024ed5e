"""The JSON Schemas accept what the models accept, and describe fields in AWS's own words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from reconciler import crds, schema
from reconciler.aws import api_docs
from reconciler.registry import models

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def shipped(kind: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "schemas" / f"{kind}.json").read_text()))


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in EXAMPLES
        for doc in YAML(typ="safe").load_all(path.read_text())
        if doc
    ]


@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
def test_every_example_validates_against_its_shipped_schema(where: str, doc: dict[str, Any]):
    """The follower definition writes `value: 1` for a quantity: the model takes it, so must
    the schema an editor checks it with."""
    models()[doc["kind"]].model_validate(doc)  # the model accepts it...
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft202012Validator(shipped(doc["kind"])).iter_errors(doc)
    ]
    assert errors == [], where  # ...and so does the schema


def job_definition(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler.io/v1alpha1",
        "kind": "JobDefinition",
        "metadata": {"name": "jd"},
        "spec": {
            "containerProperties": {
                "image": "busybox",
                "resourceRequirements": [
                    {"type": "VCPU", "value": value},
                    {"type": "MEMORY", "value": 512},
                ],
            }
        },
    }


@pytest.mark.parametrize("value", [1, 0.25, "1", "0.25"])
def test_quantities_are_numbers_or_strings_as_the_model_takes_them(value: Any) -> None:
    doc = job_definition(value)
    models()["JobDefinition"].model_validate(doc)
    jsonschema.validate(doc, shipped("JobDefinition"), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("value", [True, [1], {"n": 1}, 0, -2])
def test_what_the_model_refuses_the_schema_refuses_too(value: Any) -> None:
    doc = job_definition(value)
    with pytest.raises(ValueError):
        models()["JobDefinition"].model_validate(doc)
    if value in (0, -2):  # a string "0" passes the schema: only the model knows it is no count
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, shipped("JobDefinition"), cls=jsonschema.Draft202012Validator)
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, shipped("JobDefinition"), cls=jsonschema.Draft202012Validator)


def prop(kind: str, definition: str, field: str) -> dict[str, Any]:
    return dict(shipped(kind)["$defs"][definition]["properties"][field])


def test_fields_that_mirror_aws_carry_the_api_reference_description() -> None:
    image = prop("JobDefinition", "ContainerProperties", "image")["description"]
    assert image.startswith("Required. The image used to start a container.")
    assert "<" not in image.split("(for example")[0], "plain text, not the HTML botocore ships"
    assert "\n- Images in Amazon ECR" in image, "list items stay list items"
    max_vcpus = prop("ComputeEnvironment", "ComputeResources", "maxvCpus")["description"]
    assert max_vcpus.startswith("The maximum number of vCPUs")
    priority = shipped("JobQueue")["$defs"]["JobQueueSpec"]["properties"]["priority"]
    assert "priority" in priority["description"].lower()
    role = shipped("Role")["$defs"]["RoleSpec"]["properties"]
    duration = role["maxSessionDuration"]["description"]  # IAM spells it MaxSessionDuration
    assert duration.startswith("The maximum session duration (in seconds)")
    size = prop("Task", "ArrayProperties", "size")["description"]  # SubmitJob's shapes
    assert "array" in size.lower()


def test_our_own_descriptions_win_and_our_own_fields_keep_theirs() -> None:
    role = shipped("Role")["$defs"]["RoleSpec"]["properties"]
    assert role["path"]["description"] == "The role's path; a change replaces the role."
    sensitive = prop("JobDefinition", "KeyValue", "sensitive")["description"]
    assert sensitive.startswith("Whether the value is a secret")
    limit = shipped("JobDefinition")["$defs"]["JobDefinitionSpec"]["properties"]
    assert "revisionHistoryLimit" in limit
    assert "AWS" not in limit["revisionHistoryLimit"].get("description", "")[:3]


def test_every_description_is_plain_text_and_bounded() -> None:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("description"), str):
                yield node["description"]
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    texts = [d for kind in models() for d in walk(shipped(kind))]
    assert len(texts) > 200
    assert not [t for t in texts if "<p>" in t or "<code>" in t or "&lt;" in t]
    assert max(len(t) for t in texts) <= api_docs.MAX_CHARS + 1


def test_the_crds_carry_the_same_descriptions() -> None:
    crd = crds.crds()["jobdefinitions.reconciler.io.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    image = spec["properties"]["containerProperties"]["properties"]["image"]["description"]
    assert image == prop("JobDefinition", "ContainerProperties", "image")["description"]


def test_html_to_text() -> None:
    html = (
        "<p>Use <code>ENABLED</code> &amp; <i>more</i>.</p> <ul> <li> <p>one</p> </li>"
        "<li>two</li> </ul> <note> <p>A note.</p> </note>"
    )
    assert api_docs.plain_text(html) == "Use ENABLED & more.\n- one\n- two\nA note."
    long = "<p>" + "A sentence here. " * 200 + "</p>"
    cut = api_docs.plain_text(long, limit=100)
    assert len(cut) <= 100 and cut.endswith("here.")


def test_the_schemas_in_the_repository_are_what_the_code_generates() -> None:
    assert schema.stale(ROOT / "schemas") == []
    assert crds.stale(ROOT / "charts" / "reconciler" / "crds") == []


def test_the_readme_shows_the_editor_modeline() -> None:
    text = (ROOT / "README.md").read_text()
    assert "# yaml-language-server: $schema=" in text


def test_models_are_matched_to_the_shapes_they_mirror_by_their_fields() -> None:
    spec = models()["JobDefinition"].model_json_schema()["$defs"]["JobDefinitionSpec"]
    assert api_docs.best_shape(spec["properties"]) == ("batch", "RegisterJobDefinitionRequest")
    task = models()["Pipeline"].model_json_schema()["$defs"]["PipelineTask"]
    assert api_docs.best_shape(task["properties"]) == ("batch", "SubmitJobRequest")
    assert api_docs.best_shape({"image", "somethingOfOurs", "anotherOfOurs"}) is None


def test_a_pipeline_task_is_described_as_submit_job_describes_it() -> None:
    task = shipped("Pipeline")["$defs"]["PipelineTask"]["properties"]
    assert task["arrayProperties"]["description"].startswith("The array properties for the")
    labels = shipped("Pipeline")["$defs"]["Metadata"]["properties"]["labels"]
    assert labels["description"] == "Become AWS tags on the resource."  # ours, not EKS pods'
