"""JSON Schemas generated from the models: one file per kind in `schemas/`, checked by a test.

The models are the source of truth; two things are added on the way out. What a model coerces
is accepted as the model accepts it: a resource quantity is a string in AWS, but a number in a
manifest (`value: 1`) is fine. Fields that mirror an AWS request are described in the API
reference's own words (aws/api_docs.py, from botocore's service models), which editors show on
hover; a field's own `Field(description=...)` wins. The CRDs get the same descriptions.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler import API_VERSION, generated
from reconciler.models.common import Quantity
from reconciler.registry import kinds

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


def describe(root: dict[str, Any], api_shapes: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Adds AWS's description to each field of `root` (a model's JSON Schema) that mirrors a
    member of the request shapes in `api_shapes` (a kind's), in place; returns `root`."""
    from reconciler.aws import api_docs

    defs = root.get("$defs", {})
    seen: set[tuple[str, str, str]] = set()

    def walk(node: Any, service: str, shape: str) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if (name, service, shape) not in seen:
                seen.add((name, service, shape))
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

    spec = root.get("properties", {}).get("spec")
    for path, (service, shape) in api_shapes.items():
        node = spec
        for part in path.split(".") if path else []:
            node = _resolved(node, defs).get("properties", {}).get(part)
        walk(node, service, shape)
    return root


def _resolved(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The node behind `$ref`s and an Optional's anyOf, to step into its properties."""
    while isinstance(node, dict):
        if "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1])
        elif "anyOf" in node:
            node = next((b for b in node["anyOf"] if b.get("type") != "null"), {})
        else:
            return node
    return {}


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for kind in kinds().values():
        model = kind.model
        schema = describe(
            model.model_json_schema(schema_generator=ManifestJsonSchema), kind.api_shapes
        )
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://reconciler.io/schemas/{API_VERSION}/{model.KIND}.json"
        out[f"{model.KIND}.json"] = schema
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
