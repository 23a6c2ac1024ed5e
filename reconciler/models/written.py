"""A live resource written back as a manifest: what `get -o yaml` and `export` print.

Pure functions on plain data and the models, so that every kind gets the same treatment from
the spec-shaped data its `observe` reports (kinds/base.py `Kind.manifest`):

- only what the model knows is kept (AWS's extra response fields go), and nothing a user
  would not write: unset and empty values, values equal to the model's default, fields AWS
  moves itself (`SERVICE_MANAGED`) and the tool's own (`LOCAL`);
- what AWS filled in (`LATE_INIT`) stays: applying the manifest then compares it as it is;
- secret values are replaced by `(sensitive value)` (models/sensitive.py decides which), so no
  output shows one; the caller says which were hidden, since applying the placeholder would
  replace the real value.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from reconciler.models.fields import _nested_models, semantics_of
from reconciler.models.sensitive import SENSITIVE, plain_secrets


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def written(data: Any, model: type[BaseModel]) -> Any:
    """`data` (in the shape of `model`) as a user would write it."""
    if not isinstance(data, dict):
        return data
    table = semantics_of(model)
    out: dict[str, Any] = {}
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None or _empty(value):
            continue
        marks = table.get(key)
        if marks is not None and (marks.service_managed or marks.local):
            continue
        if info.default is not PydanticUndefined and value == info.default:
            continue
        nested = _nested_models(info.annotation)
        inner = nested[-1] if nested else None
        if inner is not None and isinstance(value, dict):
            value = written(value, inner)
        elif inner is not None and isinstance(value, list):
            value = [written(v, inner) for v in value]
        if not _empty(value):
            out[key] = value
    return out


def defaulted(data: dict[str, Any], model: type[BaseModel]) -> list[str]:
    """Top-level fields AWS reports as unset for which the model has a default of its own
    (a bucket's encryption): a manifest cannot say "unset", so applying it sets the default."""
    out = []
    table = semantics_of(model)
    for key, info in model.model_fields.items():
        marks = table.get(key)
        if not _empty(data.get(key)) or key == "tags" or (marks is not None and marks.local):
            continue
        default = info.get_default(call_default_factory=True)
        if not _empty(default) and not isinstance(default, bool):
            out.append(key)
    return out


def set_at(doc: dict[str, Any], path: str, value: Any) -> None:
    """Sets the value at a dotted path (list indices as numbers) that exists in `doc`."""
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def hide_secrets(spec_data: dict[str, Any], spec: BaseModel) -> list[str]:
    """Replaces in `spec_data` (the plain form of the validated `spec`) every value that looks
    secret by the placeholder; returns the dotted paths hidden, under `spec.`."""
    hidden = []
    for found in plain_secrets(spec):
        node: Any = spec_data
        for part in found.loc[:-1]:
            node = node[part]
        last = found.loc[-1]
        target = node[last]
        if isinstance(target, dict) and "value" in target:  # an item: {name, value}
            target["value"] = SENSITIVE
            where = [*found.loc, "value"]
        else:  # a map's value under its own name
            node[last] = SENSITIVE
            where = list(found.loc)
        hidden.append(".".join(["spec", *(str(p) for p in where)]))
    return hidden
