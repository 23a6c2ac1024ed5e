"""Field semantics, declared next to the fields they describe.

The diff engine never hard-codes a field name: it asks this table whether a change at a path
forces a replacement, is moved by AWS itself, is filled in by AWS when left unset, or is a list
whose order does not matter. Kinds attach these markers with `Annotated[...]`; `semantics_of`
walks a model and returns them keyed by dotted path (list items share their list's path).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel


@dataclass(frozen=True)
class Semantics:
    immutable: bool = False  # a change forces a replacement
    service_managed: bool = False  # AWS moves it (desiredvCpus): not drift
    late_init: bool = False  # AWS fills a default when unset: compared only when the user sets it
    set_key: str | None = None  # list whose order does not matter, items keyed by this field
    set_of_values: bool = False  # list of scalars whose order does not matter
    local: bool = False  # ours, never sent to AWS (revisionHistoryLimit)


IMMUTABLE = Semantics(immutable=True)
SERVICE_MANAGED = Semantics(service_managed=True)
LATE_INIT = Semantics(late_init=True)
LOCAL = Semantics(local=True)


def set_by(key: str, **kw: bool) -> Semantics:
    return Semantics(set_key=key, **kw)


def value_set(**kw: bool) -> Semantics:
    return Semantics(set_of_values=True, **kw)


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
