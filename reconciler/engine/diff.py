"""Normalised comparison of desired and actual state.

Both sides are first brought into one canonical form: AWS's extra fields dropped (projection
onto the model), empty values dropped, set-like lists sorted or keyed, service-managed and
local fields dropped, and late-initialised fields the user left unset dropped from the actual
side. Only then does deepdiff compare them, so formatting and AWS defaults never show as drift.
Changes inside a list are reported as a change of the whole list: what users read in a plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff
from pydantic import BaseModel

from reconciler.models.fields import Semantics, _nested_models, semantics_of


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {_fmt(self.old)} -> {_fmt(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


_ABSENT = "(unset)"


def _fmt(value: Any) -> str:
    if value is None:
        return _ABSENT
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def semantics_at(table: dict[str, Semantics], path: str) -> Semantics:
    """A path's own markers merged with its ancestors' (a field inside an immutable one is too)."""
    parts = path.split(".")
    merged: dict[str, Any] = {}
    for i in range(1, len(parts) + 1):
        s = table.get(".".join(parts[:i]))
        if s is None:
            continue
        for name in Semantics.__dataclass_fields__:
            v = getattr(s, name)
            if v not in (False, None) and (name == "immutable" or i == len(parts)):
                merged[name] = v
    return Semantics(**merged)


def project(model: type[BaseModel], data: Any) -> Any:
    """Keeps only the keys the model knows, recursively: AWS's extra response fields go."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            continue
        nested = _nested_models(info.annotation)
        sub = nested[-1] if nested else None
        if sub is not None and isinstance(value, list):
            out[key] = [project(sub, v) for v in value]
        elif sub is not None and isinstance(value, dict):
            out[key] = project(sub, value)
        else:
            out[key] = value
    return out


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def canonical(
    data: Any, table: dict[str, Semantics], path: str = "", drop: frozenset[str] = frozenset()
) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            if sub in drop:
                continue
            s = table.get(sub)
            if s is not None and s.local:
                continue
            value = canonical(value, table, sub, drop)
            if not _empty(value):
                out[key] = value
        return out
    if isinstance(data, list):
        s = table.get(path) or Semantics()
        items = [canonical(v, table, path, drop) for v in data]
        if s.set_key:
            return {str(i.get(s.set_key)) if isinstance(i, dict) else str(i): i for i in items}
        if s.set_of_values:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return items
    return data


def _drop_unset_late_init(
    actual: Any, desired: Any, table: dict[str, Semantics], path: str = "", inside: bool = False
) -> Any:
    """Drops what AWS filled in: unset late-init fields, and unset keys inside a late-init one."""
    if not isinstance(actual, dict) or not isinstance(desired, dict):
        return actual
    out = {}
    for key, value in actual.items():
        sub = f"{path}.{key}" if path else key
        s = table.get(sub)
        late = inside or (s is not None and s.late_init)
        if key not in desired:
            if late or (s is not None and s.service_managed):
                continue
            out[key] = value
        else:
            out[key] = _drop_unset_late_init(value, desired[key], table, sub, late)
    return out


def _get(data: Any, parts: list[Any]) -> Any:
    for p in parts:
        if isinstance(data, dict):
            data = data.get(p)
        elif isinstance(data, list) and isinstance(p, int) and p < len(data):
            data = data[p]
        else:
            return None
    return data


def diff(
    desired: dict[str, Any],
    actual: dict[str, Any],
    model: type[BaseModel],
    ignore: frozenset[str] = frozenset(),
) -> list[Change]:
    """Changes that would turn `actual` into `desired`, as dotted paths with old and new values."""
    table = semantics_of(model)
    want = canonical(project(model, desired), table, drop=ignore)
    have = _drop_unset_late_init(canonical(project(model, actual), table, drop=ignore), want, table)
    tree = DeepDiff(have, want, view="tree")
    paths: dict[str, list[Any]] = {}
    for items in tree.values():
        for item in items:
            parts = item.path(output_format="list")
            cut = next((i for i, p in enumerate(parts) if isinstance(p, int)), len(parts))
            parts = parts[:cut]
            paths.setdefault(".".join(str(p) for p in parts), parts)
    changes = [Change(path, _get(have, parts), _get(want, parts)) for path, parts in paths.items()]
    return sorted(changes, key=lambda c: c.path)


def canonical_of(data: dict[str, Any], model: type[BaseModel]) -> Any:
    """The canonical form of a spec: what `diff` compares; stable enough to hash."""
    return canonical(data, semantics_of(model))
