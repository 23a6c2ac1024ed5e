"""CustomResourceDefinitions generated from the models: one YAML file per kind in the chart.

The spec schema is the model's JSON Schema made *structural*, as apiextensions.k8s.io/v1
requires: every `$ref` inlined, `anyOf [X, null]` turned into `nullable`, `const` into a
one-value `enum`, `additionalProperties: false` dropped (the API server prunes unknown fields
instead), free-form objects marked `x-kubernetes-preserve-unknown-fields`. Unions that no
structural schema can express (a subnet given by ID *or* by lookup) become a node that keeps
what it is given; the operator validates the whole spec against the model anyway. Keys this
module does not know raise an error, so a model change cannot silently produce a wrong CRD.
"""

from __future__ import annotations

import io
import typing
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from ruamel.yaml import YAML

from reconciler import generated
from reconciler.models.common import Metadata, Quantity, Resource
from reconciler.registry import kinds

GROUP = "reconciler.io"
VERSION = "v1alpha1"
CATEGORY = "reconciler"
HEADER = "# Generated from the pydantic models by `reconciler schema crds`: do not edit by hand.\n"


# Schema keywords copied as they are (OpenAPI v3 and JSON Schema agree on them).
_COPY = frozenset(
    {
        "description",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
    }
)
# Keywords dropped: not in Kubernetes' JSONSchemaProps, or not allowed in structural schemas.
_DROP = frozenset({"title", "propertyNames", "examples", "$defs", "$schema"})
# Formats Kubernetes knows; any other format is dropped rather than rejected.
_FORMATS = frozenset(
    {"int32", "int64", "float", "double", "byte", "date", "date-time", "duration", "uuid"}
)
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_QUANTITY_FUNC = typing.get_args(Quantity)[1].func
# Key order in the output, for people reading the YAML; unlisted keys keep their place after.
_ORDER = (
    "type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "nullable",
    "description",
    "format",
    "enum",
    "default",
)


def _ordered(out: dict[str, Any]) -> dict[str, Any]:
    first = {k: out[k] for k in _ORDER if k in out}
    return {**first, **{k: v for k, v in out.items() if k not in first}}


class _CrdJsonSchema(GenerateJsonSchema):
    """Quantities are strings in AWS but numbers in manifests: say so in the schema."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        if schema["function"].get("function") is _QUANTITY_FUNC:
            return {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        return super().function_before_schema(schema)


class SchemaError(ValueError):
    pass


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The node with `$ref` (or a one-element `allOf`) inlined; the node's own keys win."""
    node = dict(node)
    while True:
        if "$ref" in node:
            ref = node.pop("$ref")
            target = defs[ref.rsplit("/", 1)[-1]]
        elif "allOf" in node and len(node["allOf"]) == 1:
            target = node.pop("allOf")[0]
        else:
            return node
        node = {**_resolve(target, defs), **node}


def _valid_default(value: Any, out: dict[str, Any]) -> bool:
    """Only scalar defaults that the node itself accepts: null and containers are dropped."""
    kind = out.get("type")
    if value is None or kind not in _PY_TYPES:
        return False
    if isinstance(value, bool) != (kind == "boolean"):
        return False
    if not isinstance(value, _PY_TYPES[kind]):
        return False
    if "enum" in out and value not in out["enum"]:
        return False
    if "minimum" in out and value < out["minimum"]:
        return False
    return not ("maximum" in out and value > out["maximum"])


def _describe_branch(branch: dict[str, Any]) -> str:
    if branch.get("type") == "object":
        fields = ", ".join(branch.get("properties", {}))
        name = branch.get("title", "object")
        return f"a {name} object ({fields})" if fields else f"a {name} object"
    if "pattern" in branch:
        return f"a {branch.get('type', 'value')} matching {branch['pattern']}"
    return f"a {branch.get('type', 'value')}"


def _union(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    key = "anyOf" if "anyOf" in node else "oneOf"
    branches = [_resolve(b, defs) for b in node[key]]
    rest = {k: v for k, v in node.items() if k != key}
    nulls = [b for b in branches if b.get("type") == "null"]
    values = [b for b in branches if b.get("type") != "null"]
    if len(values) == 1:
        # Optional[X]: X, nullable. Not for enums: Kubernetes checks null against the enum
        # and rejects it; a non-nullable null is pruned instead, which the model reads as unset.
        out = convert({**values[0], **rest}, defs, path)
        if nulls and "enum" not in out:
            out["nullable"] = True
        return _ordered(out)
    types = {b.get("type") for b in values}
    description = rest.get("description")
    if types == {"integer", "string"}:
        out = {"x-kubernetes-int-or-string": True}
        note = 'A number or a string; write fractions as strings ("0.25").'
    else:
        out = {"x-kubernetes-preserve-unknown-fields": True}
        note = "One of: " + "; or ".join(_describe_branch(b) for b in values) + "."
    out["description"] = f"{description} {note}" if description else note
    if nulls:
        out["nullable"] = True
    return _ordered(out)


def convert(node: dict[str, Any], defs: dict[str, Any], path: str = "spec") -> dict[str, Any]:
    """One JSON Schema node as a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node or "oneOf" in node:
        return _union(node, defs, path)
    out: dict[str, Any] = {}
    if "type" in node:
        if not isinstance(node["type"], str):
            raise SchemaError(f"{path}: a list of types is not structural: {node['type']}")
        out["type"] = node["type"]
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", next(k for k, t in _PY_TYPES.items() if type(node["const"]) in t))
    for key, value in node.items():
        if key in _COPY:
            out[key] = list(value) if isinstance(value, list) else value
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "format":
            if value in _FORMATS:
                out["format"] = value
        elif key == "uniqueItems":
            if value:
                out["x-kubernetes-list-type"] = "set"
        elif key not in _DROP and key not in (
            "type",
            "const",
            "default",
            "properties",
            "items",
            "additionalProperties",
        ):
            raise SchemaError(f"{path}: keyword {key!r} has no structural equivalent here")
    kind = out.get("type")
    if kind is None:
        raise SchemaError(f"{path}: a node without a type is not structural")
    if kind == "object":
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        if props:
            out["properties"] = {k: convert(v, defs, f"{path}.{k}") for k, v in props.items()}
        if isinstance(extra, dict) and extra:
            if props:
                raise SchemaError(f"{path}: properties and additionalProperties together")
            out["additionalProperties"] = convert(extra, defs, f"{path}.*")
        elif not props:
            # A free-form object (dict[str, Any]): without this, the API server prunes it empty.
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        items = node.get("items")
        out["items"] = (
            convert(items, defs, f"{path}[]")
            if isinstance(items, dict) and items
            else {"x-kubernetes-preserve-unknown-fields": True}
        )
    if "default" in node and _valid_default(node["default"], out):
        out["default"] = node["default"]
    return _ordered(out)


def spec_schema(model: type[Resource]) -> dict[str, Any]:
    from reconciler.schema import describe  # AWS's descriptions, as the JSON Schemas have them

    root = describe(model.model_json_schema(schema_generator=_CrdJsonSchema))
    spec = convert(root["properties"]["spec"], root.get("$defs", {}))
    return spec


def _metadata_schema() -> dict[str, Any]:
    """Only metadata.name may be restricted: to a name AWS Batch accepts too."""
    name = Metadata.model_json_schema()["properties"]["name"]
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": name["maxLength"], "pattern": name["pattern"]}
        },
    }


def printer_columns(model: type[Resource]) -> list[dict[str, Any]]:
    """Ready and Synced, the columns the kind declares (the same `reconciler get` shows), Age."""

    def condition(kind: str) -> dict[str, Any]:
        return {
            "name": kind,
            "type": "string",
            "jsonPath": f'.status.conditions[?(@.type=="{kind}")].status',
        }

    columns = [condition("Ready"), condition("Synced")]
    for col in kinds()[model.KIND].columns:
        out: dict[str, Any] = {
            "name": col.name,
            "type": col.type,
            "jsonPath": f".status.{col.field}",
        }
        if col.description:
            out["description"] = col.description
        if col.priority:
            out["priority"] = col.priority
        columns.append(out)
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns


def crd(model: type[Resource]) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": model.KIND,
        "listKind": f"{model.KIND}List",
        "plural": model.PLURAL,
        "singular": model.KIND.lower(),
        "categories": [CATEGORY],
    }
    if model.SHORT_NAMES:
        names["shortNames"] = list(model.SHORT_NAMES)
    description = " ".join((model.__doc__ or model.KIND).split())
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{model.PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "reconciler"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(model),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": _metadata_schema(),
                                "spec": spec_schema(model),
                                "status": {
                                    "type": "object",
                                    "description": "Written by the operator.",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def crds() -> dict[str, dict[str, Any]]:
    """File name -> CustomResourceDefinition, one per kind, in dependency order."""
    return {f"{k.model.PLURAL}.{GROUP}.yaml": crd(k.model) for k in kinds().values()}


def render(obj: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(obj, buf)
    return HEADER + buf.getvalue()


def write(directory: Path) -> list[Path]:
    return generated.write(files(), directory)


def stale(directory: Path) -> list[str]:
    """Files in `directory` that differ from what the models generate now."""
    return generated.stale(files(), directory)


def files() -> dict[str, str]:
    return {name: render(obj) for name, obj in crds().items()}
