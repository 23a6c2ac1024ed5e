"""The CRDs: generated from the models, current in the chart, structural, valid for Kubernetes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from reconciler import crds
from reconciler.registry import kinds, models

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "charts" / "reconciler" / "crds"
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
K8S_VERSIONS = ["1.25", "1.30", kubernetes_validate.latest_version()]
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]
NOT_IN_OPENAPI = ("$ref", "$defs", "definitions", "const", "propertyNames", "examples")


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def structural_problems(node: Any, path: str = "") -> list[str]:
    """Kubernetes' rules for a structural schema, and the ones we add (see reconciler.crds)."""
    if not isinstance(node, dict):
        return [f"{path}: a schema node must be an object"]
    problems = [f"{path}: {key} is not allowed" for key in NOT_IN_OPENAPI if key in node]
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    for junctor in ("anyOf", "oneOf", "allOf", "not"):
        if junctor in node and not (
            int_or_string and junctor == "anyOf" and node[junctor] == INT_OR_STRING_ANYOF
        ):
            problems.append(f"{path}: {junctor} outside the int-or-string pattern")
    if preserve is not None and preserve is not True:
        problems.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true or unset")
    kind = node.get("type")
    if not kind and not (int_or_string or preserve):
        problems.append(f"{path}: no type")
    if "additionalProperties" in node:
        if isinstance(node["additionalProperties"], bool):
            problems.append(f"{path}: additionalProperties must be a schema, not a boolean")
        if "properties" in node:
            problems.append(f"{path}: properties and additionalProperties are exclusive")
    if node.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems is forbidden (x-kubernetes-list-type: set)")
    if kind == "object" and not (
        node.get("properties") or node.get("additionalProperties") or preserve
    ):
        problems.append(f"{path}: an object without fields would be pruned empty")
    if kind == "array" and not isinstance(node.get("items"), dict):
        problems.append(f"{path}: an array needs one items schema")
    if node.get("nullable") and "enum" in node:
        problems.append(f"{path}: Kubernetes rejects null for a nullable enum")
    if "default" in node:
        default = node["default"]
        if default is None or (kind == "string" and not isinstance(default, str)):
            problems.append(f"{path}: default {default!r} does not fit")
        if "enum" in node and default not in node["enum"]:
            problems.append(f"{path}: default {default!r} is not in the enum")
    for name, sub in (node.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}.*")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    return problems


def metadata_problems(schema: dict[str, Any]) -> list[str]:
    metadata = schema["properties"].get("metadata", {})
    extra = set(metadata) - {"type", "properties"}
    fields = set(metadata.get("properties", {})) - {"name", "generateName"}
    return [f"metadata: only name and generateName may be restricted: {extra | fields}"] * bool(
        extra or fields
    )


def as_json_schema(node: dict[str, Any], closed: bool = True) -> dict[str, Any]:
    """A CRD node as a JSON Schema that rejects what the API server would prune."""
    if node.get("x-kubernetes-int-or-string"):
        return {"type": ["integer", "string"]}
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        return {}
    keep = ("enum", "pattern", "minLength", "maxLength", "minimum", "maximum")
    out: dict[str, Any] = {k: node[k] for k in keep if k in node}
    out["type"] = [node["type"], "null"] if node.get("nullable") else node["type"]
    if node["type"] == "object":
        if "properties" in node:
            out["properties"] = {k: as_json_schema(v) for k, v in node["properties"].items()}
            if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        if "additionalProperties" in node:
            out["additionalProperties"] = as_json_schema(node["additionalProperties"])
        out["required"] = node.get("required", [])
    if node["type"] == "array":
        out["items"] = as_json_schema(node["items"])
        for k in ("minItems", "maxItems"):
            if k in node:
                out[k] = node[k]
    return out


def spec_validator(kind: str) -> jsonschema.Draft7Validator:
    spec = root_schema(crds.crds()[f"{models()[kind].PLURAL}.reconciler.io.yaml"])
    return jsonschema.Draft7Validator(as_json_schema(spec["properties"]["spec"]))


def example_documents() -> list[dict[str, Any]]:
    return [d for path in EXAMPLES for d in yaml.safe_load_all(path.read_text()) if d]


# -- the files ---------------------------------------------------------------------------------


def test_generated_crds_in_the_chart_are_current() -> None:
    assert crds.stale(CRD_DIR) == [], "run: reconciler schema crds --dir charts/reconciler/crds"


def test_write_then_stale_round_trip(tmp_path: Path) -> None:
    assert sorted(crds.stale(tmp_path)) == sorted(crds.crds())
    written = crds.write(tmp_path / "crds")
    assert [p.name for p in written] == list(crds.crds())
    assert crds.stale(tmp_path / "crds") == []
    written[0].write_text(written[0].read_text() + "# edited\n")
    assert crds.stale(tmp_path / "crds") == [written[0].name]


def test_one_crd_per_kind_with_the_models_names() -> None:
    generated = crds.crds()
    assert list(generated) == [f"{m.PLURAL}.reconciler.io.yaml" for m in models().values()]
    for model in models().values():
        crd = generated[f"{model.PLURAL}.reconciler.io.yaml"]
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["metadata"]["name"] == f"{model.PLURAL}.reconciler.io"
        spec = crd["spec"]
        assert spec["group"] == "reconciler.io"
        assert spec["scope"] == "Namespaced"
        names = spec["names"]
        assert names["kind"] == model.KIND
        assert names["plural"] == model.PLURAL
        assert names["singular"] == model.KIND.lower()
        assert names.get("shortNames", []) == list(model.SHORT_NAMES)
        assert names["categories"] == ["reconciler"]
        [version] = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}
        status = root_schema(crd)["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
        assert root_schema(crd)["required"] == ["spec"]


def test_printer_columns() -> None:
    generated = crds.crds()

    def columns(kind: str) -> dict[str, str]:
        crd = generated[f"{models()[kind].PLURAL}.reconciler.io.yaml"]
        return {
            c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        }

    common = {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Synced": '.status.conditions[?(@.type=="Synced")].status',
        "Status": ".status.awsStatus",
        "Age": ".metadata.creationTimestamp",
    }
    infra = {**common, "AWS Name": ".status.awsName"}
    assert columns("ComputeEnvironment") == {**infra, "State": ".status.state"}
    assert columns("JobQueue") == {**infra, "State": ".status.state"}
    assert columns("JobDefinition") == {**infra, "Revision": ".status.revision"}
    runs = {**common, "Status": ".status.runStatus", "Run": ".status.runId"}
    assert columns("Pipeline") == runs
    assert columns("Task") == runs
    assert list(columns("Pipeline"))[-1] == "Age"
    assert list(columns("Pipeline"))[:2] == ["Ready", "Synced"]


def test_printer_columns_are_the_fields_each_kind_declares() -> None:
    """The CRD shows what the kind declares, and the operator writes those status fields."""
    for kind in kinds().values():
        crd = crds.crds()[f"{kind.model.PLURAL}.reconciler.io.yaml"]
        paths = [c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        assert paths[2:-1] == [f".status.{c.field}" for c in kind.columns], kind.name


def test_deletion_policy_is_the_models_field_with_no_crd_default() -> None:
    """The CRD's deletionPolicy is the model's (one field for CLI and operator), and has no
    default: the API server must not fill in Delete where a kind's default is Retain."""
    for model in models().values():
        spec = crds.spec_schema(model)
        field = spec["properties"]["deletionPolicy"]
        assert field["enum"] == ["Retain", "Delete"]
        assert "default" not in field
        assert "deletionPolicy" in model.model_fields["spec"].annotation.model_fields


# -- structural and valid ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(crds.crds()))
def test_every_crd_is_structural(name: str) -> None:
    schema = root_schema(crds.crds()[name])
    assert structural_problems(schema) == []
    assert metadata_problems(schema) == []


def test_the_checker_catches_what_is_not_structural() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "b": {"type": "object", "additionalProperties": False, "properties": {}},
            "c": {"$ref": "#/$defs/C"},
            "d": {"type": "string", "enum": ["x"], "nullable": True},
            "e": {"type": "array"},
        },
    }
    found = "\n".join(structural_problems(bad))
    for path in (".a", ".b", ".c", ".d", ".e"):
        assert f"{path}:" in found


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_crds_validate_against_the_kubernetes_schema(version: str) -> None:
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validate_is_strict_about_crds() -> None:
    crd = copy.deepcopy(crds.crds()["jobqueues.reconciler.io.yaml"])
    root_schema(crd)["properties"]["spec"]["propertyNames"] = {"minLength": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


# -- faithful to the models --------------------------------------------------------------------


def test_the_examples_pass_the_crd_schemas_and_nothing_is_pruned() -> None:
    docs = example_documents()
    assert {d["kind"] for d in docs} >= {"ComputeEnvironment", "JobQueue", "JobDefinition"}
    for doc in docs:
        models()[doc["kind"]].model_validate(doc)  # the examples are valid manifests
        errors = [e.message for e in spec_validator(doc["kind"]).iter_errors(doc["spec"])]
        assert errors == [], (doc["metadata"]["name"], errors)


def test_every_model_field_is_in_the_crd() -> None:
    def fields(node: dict[str, Any], defs: dict[str, Any], path: str) -> set[str]:
        node = crds._resolve(node, defs)
        for branch in node.get("anyOf", []):
            if branch.get("type") != "null":
                return fields(branch, defs, path)
        out = {f"{path}.{k}" for k in node.get("properties", {})}
        for k, v in node.get("properties", {}).items():
            out |= fields(v, defs, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            out |= fields(node["items"], defs, f"{path}[]")
        return out

    def crd_fields(node: dict[str, Any], path: str) -> set[str]:
        out = {f"{path}.{k}" for k in node.get("properties", {})}
        for k, v in node.get("properties", {}).items():
            out |= crd_fields(v, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            out |= crd_fields(node["items"], f"{path}[]")
        return out

    for model in models().values():
        js = model.model_json_schema()
        want = fields(js["properties"]["spec"], js.get("$defs", {}), "spec")
        have = crd_fields(crds.spec_schema(model), "spec")
        # Fields inside ID-or-lookup unions live under a preserve-unknown-fields node.
        want = {p for p in want if not any(u in p for u in ("subnets[]", "securityGroupIds[]"))}
        assert want <= have, sorted(want - have)
        assert have - want == set(), sorted(have - want)  # nothing the manifests do not take


def test_bad_specs_are_rejected_at_admission() -> None:
    ce = spec_validator("ComputeEnvironment")
    good = {"computeResources": {"type": "FARGATE", "maxvCpus": 4, "subnets": ["subnet-0a"]}}
    assert list(ce.iter_errors(good)) == []
    for bad in (
        {"computeResources": {"type": "BOGUS", "maxvCpus": 4, "subnets": ["subnet-0a"]}},
        {"computeResources": {"type": "EC2", "maxvCpus": -1, "subnets": ["subnet-0a"]}},
        {"computeResources": {"type": "EC2", "maxvCpus": 1, "subnets": []}},
        {"computeResources": {"type": "EC2", "maxvCpus": 1}},
        {"state": "ON", **good},
        {"typo": 1, **good},  # pruned by the API server; the model would reject it
        {"deletionPolicy": "Keep", **good},
    ):
        assert list(ce.iter_errors(bad)), bad


def test_quantities_take_numbers_or_strings_and_optional_fields_take_null() -> None:
    jd = spec_validator("JobDefinition")
    spec = {
        "containerProperties": {
            "image": "busybox",
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.25"},
                {"type": "MEMORY", "value": 512},
            ],
            "command": None,
        }
    }
    assert list(jd.iter_errors(spec)) == []
    spec["containerProperties"]["resourceRequirements"][1]["value"] = [512]
    assert list(jd.iter_errors(spec))


def test_unions_that_cannot_be_structural_keep_what_they_are_given() -> None:
    spec = crds.spec_schema(models()["ComputeEnvironment"])
    subnet = spec["properties"]["computeResources"]["properties"]["subnets"]["items"]
    assert subnet["x-kubernetes-preserve-unknown-fields"] is True
    assert "type" not in subnet
    assert "^subnet-[0-9a-f]+$" in subnet["description"]
    assert "defaultVpc" in subnet["description"]


def test_free_form_objects_are_preserved() -> None:
    spec = crds.spec_schema(models()["JobDefinition"])
    linux = dict(spec["properties"]["containerProperties"]["properties"]["linuxParameters"])
    assert linux.pop("description").startswith("Linux-specific modifications")  # AWS's words
    assert linux == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "nullable": True,
    }


def test_defaults_are_kept_only_when_structural() -> None:
    spec = crds.spec_schema(models()["ComputeEnvironment"])
    assert spec["properties"]["type"]["default"] == "MANAGED"
    assert spec["properties"]["trackDesiredvCpus"]["default"] is False
    assert "default" not in spec["properties"]["computeResources"]  # null
    queue = crds.spec_schema(models()["JobQueue"])
    action = dict(queue["properties"]["jobStateTimeLimitActions"]["items"]["properties"]["state"])
    assert action.pop("description").startswith("The state of the job")  # AWS's words
    assert action == {"type": "string", "enum": ["RUNNABLE"], "default": "RUNNABLE"}


def test_unknown_keywords_fail_loudly() -> None:
    with pytest.raises(crds.SchemaError, match="not"):
        crds.convert({"type": "string", "not": {"enum": ["x"]}}, {})
    with pytest.raises(crds.SchemaError, match="without a type"):
        crds.convert({"description": "anything"}, {})


def test_conversion_details() -> None:
    assert crds.convert({"type": "integer", "exclusiveMinimum": 0}, {}) == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert crds.convert(
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True}, {}
    ) == {
        "type": "array",
        "x-kubernetes-list-type": "set",
        "items": {"type": "string"},
    }
    assert crds.convert({"type": "array"}, {})["items"] == {
        "x-kubernetes-preserve-unknown-fields": True
    }
    nullable_enum = {"anyOf": [{"enum": ["A", "B"], "type": "string"}, {"type": "null"}]}
    assert crds.convert(nullable_enum, {}) == {"type": "string", "enum": ["A", "B"]}
