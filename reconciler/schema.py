"""JSON Schemas generated from the models: one file per kind in `schemas/`, checked by a test.

The models are the source of truth; two things are added on the way out. What a model coerces
is accepted as the model accepts it: a resource quantity is a string in AWS, but a number in a
manifest (`value: 1`) is fine. Fields that mirror an AWS request are described in the API
reference's own words (aws/api_docs.py, from botocore's service models, matched to the models
by their fields' names), which editors show on hover; a field's own `Field(description=...)`
wins. The CRDs get the same descriptions.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler import API_VERSION, generated
from reconciler.models.common import Quantity, Spec
from reconciler.registry import models

COMMON_FIELDS = frozenset(Spec.model_fields)  # in every kind's spec

_QUANTITY_FUNC = typing.get_args(Quantity)[1].func


class ManifestJsonSchema(GenerateJsonSchema):
    """A quantity (vCPUs, MiB, GPUs) is a string to AWS; manifests may write it as a number,
    which the model turns into that string: the schema accepts both, as the model does."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        if schema["function"].get("function") is _QUANTITY_FUNC:
            inner = self.generate_inner(schema["schema"])
            return {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, inner]}
        return super().function_before_schema(schema)


def describe(root: dict[str, Any]) -> dict[str, Any]:
    """Adds AWS's description to each field of the spec in `root` (a model's JSON Schema) that
    mirrors a member of an AWS shape, in place; returns `root`. The spec is matched to its
    shape first and walked with it (nested models follow the members' shapes); models the walk
    does not reach (a pipeline's tasks, which SubmitJob's request mirrors while the pipeline
    itself mirrors nothing) are matched on their own."""
    from reconciler.aws import api_docs

    defs = root.get("$defs", {})
    walked: set[str] = set()

    def walk(node: Any, service: str, shape: str) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in walked:
                walked.add(name)
                walk(defs.get(name), service, shape)
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key) or []:
                walk(branch, service, shape)
        walk(node.get("items"), service, shape)
        walk(node.get("additionalProperties"), service, shape)
        for field, prop in (node.get("properties") or {}).items():
            member = api_docs.member(service, shape, field)
            if member is None:
                continue
            if member.doc and isinstance(prop, dict) and "description" not in prop:
                prop["description"] = member.doc
            walk(prop, service, member.shape)

    for name in _reachable(root.get("properties", {}).get("spec"), defs):
        if name in walked:
            continue
        # Fields every spec has (deletionPolicy) are ours: they say nothing of the AWS shape.
        found = api_docs.best_shape(set(defs[name].get("properties") or {}) - COMMON_FIELDS)
        if found is not None:
            walk({"$ref": f"#/$defs/{name}"}, *found)
    return root


def _reachable(node: Any, defs: dict[str, Any]) -> list[str]:
    """The names of the definitions `node` refers to, directly or not, nearest first."""
    order: list[str] = []
    todo = [node]
    while todo:
        current = todo.pop(0)
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in order and name in defs:
                    order.append(name)
                    todo.append(defs[name])
            todo.extend(v for k, v in current.items() if k != "$ref")
        elif isinstance(current, list):
            todo.extend(current)
    return order


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for kind, model in models().items():
        schema = describe(model.model_json_schema(schema_generator=ManifestJsonSchema))
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://reconciler.io/schemas/{API_VERSION}/{kind}.json"
        out[f"{kind}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    return generated.write(files(), directory)


def stale(directory: Path) -> list[str]:
    """Files in `directory` that differ from what the models generate now."""
    return generated.stale(files(), directory)


def files() -> dict[str, str]:
    return {name: render(schema) for name, schema in json_schemas().items()}
