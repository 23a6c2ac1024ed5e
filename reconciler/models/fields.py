"""Field semantics, declared next to the fields they describe.

The diff engine never hard-codes a field name: it asks this table whether a change at a path
forces a replacement, is moved by AWS itself, is filled in by AWS when left unset, is a list
whose order does not matter, or may hold a secret that no output may show. Kinds attach these
markers with `Annotated[...]`; `semantics_of` walks a model and returns them keyed by dotted
path (list items share their list's path).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Semantics:
    immutable: bool = False  # a change forces a replacement
    service_managed: bool = False  # AWS moves it (desiredvCpus): not drift
    late_init: bool = False  # AWS fills a default when unset: compared only when the user sets it
    set_key: str | None = None  # list whose order does not matter, items keyed by this field
    set_of_values: bool = False  # list of scalars whose order does not matter
    local: bool = False  # ours, never sent to AWS (revisionHistoryLimit)
    # A value stored under a name the user chose (a map's key, an item's `name`): secret when
    # the name looks like a secret's (models/sensitive.py). The text says where such a value
    # belongs instead, for the warning about a secret written in clear.
    secret_by_name: str | None = None
    sensitivity: bool = False  # an item's own say on whether its values are secret (local)


IMMUTABLE = Semantics(immutable=True)
SERVICE_MANAGED = Semantics(service_managed=True)
LATE_INIT = Semantics(late_init=True)
LOCAL = Semantics(local=True)
# The local flag an item carries to declare its values secret (true) or not (false), whatever
# its name suggests; never sent to AWS, never compared.
SENSITIVITY = Semantics(local=True, sensitivity=True)


def set_by(key: str, **kw: bool) -> Semantics:
    return Semantics(set_key=key, **kw)


def secret_by_name(instead: str) -> Semantics:
    """Values kept under names the user chooses: hidden from every output when the name looks
    like a secret's; `instead` is where a secret belongs (for the warning)."""
    return Semantics(secret_by_name=instead)


def value_set(**kw: bool) -> Semantics:
    return Semantics(set_of_values=True, **kw)


def markers_of(metadata: list[Any]) -> Semantics:
    """One field's markers, merged (a field may carry several)."""
    return _merge([m for m in metadata if isinstance(m, Semantics)])


def _merge(markers: list[Semantics]) -> Semantics:
    merged: dict[str, object] = {}
    for m in markers:
        for name in Semantics.__dataclass_fields__:
            value = getattr(m, name)
            if value not in (False, None):
                merged[name] = value
    return Semantics(**merged)  # type: ignore[arg-type]


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    """The BaseModel classes reachable through Optional / list / Union wrappers."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType) or origin is typing.Annotated:
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_nested_models(arg))
        return found
    return []


@cache
def semantics_of(model: type[BaseModel], prefix: str = "") -> dict[str, Semantics]:
    table: dict[str, Semantics] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        markers = [m for m in info.metadata if isinstance(m, Semantics)]
        if markers:
            table[path] = _merge(markers)
        for sub in _nested_models(info.annotation):
            table.update(semantics_of(sub, f"{path}."))
    return table


def local_fields(model: type[BaseModel]) -> set[str]:
    return {path for path, s in semantics_of(model).items() if s.local}


def drop_local(data: Any, model: type[BaseModel], path: str = "") -> Any:
    """JSON data of `model` without its local fields, at any depth: what AWS may be sent. A
    local field inside a list item (an environment entry's `sensitive`) goes too, not only the
    top-level ones such as revisionHistoryLimit."""
    table = semantics_of(model)
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            s = table.get(sub)
            if s is None or not s.local:
                out[key] = drop_local(value, model, sub)
        return out
    if isinstance(data, list):
        return [drop_local(v, model, path) for v in data]
    return data


@cache
def paths_marked(model: type[BaseModel], marker: type, prefix: str = "") -> frozenset[str]:
    """Dotted paths of the fields annotated with an instance of `marker`: how a kind declares
    semantics of its own (a compute environment's infrastructure fields) next to its fields,
    for its own hooks, without adding them to the vocabulary every kind shares."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if any(isinstance(m, marker) for m in info.metadata):
            found.add(path)
        for sub in _nested_models(info.annotation):
            found |= paths_marked(sub, marker, f"{path}.")
    return frozenset(found)
