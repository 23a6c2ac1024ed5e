"""Normalised comparison of desired and actual state.

Both sides are first brought into one canonical form: AWS's extra fields dropped (projection
onto the model), empty values dropped, set-like lists sorted or keyed, service-managed and
local fields dropped, and late-initialised fields the user left unset dropped from the actual
side. Only then does deepdiff compare them, so formatting and AWS defaults never show as drift.
Changes inside a list are reported as a change of the whole list: what users read in a plan;
inside a list keyed by name (an environment), as a change of the one item.

Secrets are compared like any value, so a changed one is detected and applied, but they never
leave this module: a `Change` holds `(sensitive value)` in their place (models/sensitive.py
says which values are secrets), so no renderer, present or future, can print one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from deepdiff import DeepDiff
from pydantic import BaseModel

from reconciler.models.fields import Semantics, _nested_models, semantics_of
from reconciler.models.sensitive import SENSITIVE, Path, hidden, mask, secret_paths


@dataclass(frozen=True)
class Change:
    """One changed path, as every output shows it.

    `sensitive`: the value is a secret. Whatever `old` and `new` were given, only the
    placeholder `(sensitive value)` is kept (or None for absent: absence is no secret), so
    text, JSON, YAML, markdown and events all show the change and none can show the value.
    Secrets nested in a larger value (an added environment entry) are masked by the diff.
    """

    path: str
    old: Any
    new: Any
    sensitive: bool = False

    def __post_init__(self) -> None:
        if self.sensitive:
            object.__setattr__(self, "old", None if self.old is None else SENSITIVE)
            object.__setattr__(self, "new", None if self.new is None else SENSITIVE)

    def __str__(self) -> str:
        if self.sensitive and self.old is not None and self.new is not None:
            return f"{self.path}: (sensitive value changed)"
        return f"{self.path}: {_fmt(self.old)} -> {_fmt(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; `sensitive: true` only on a secret's change, so other changes keep the
        shape scripts already read."""
        out = {"path": self.path, "old": self.old, "new": self.new}
        return {**out, "sensitive": True} if self.sensitive else out


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


@cache
def _field(model: type[BaseModel], key: str) -> tuple[bool, type[BaseModel] | None]:
    """Whether the model knows `key`, and the model its values are, if any: asked for every
    key of every resource a plan compares, and the same few hundred answers each time."""
    info = model.model_fields.get(key)
    if info is None:
        return False, None
    nested = _nested_models(info.annotation)
    return True, nested[-1] if nested else None


def project(model: type[BaseModel], data: Any) -> Any:
    """Keeps only the keys the model knows, recursively: AWS's extra response fields go."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        known, sub = _field(model, key) if isinstance(key, str) else (False, None)
        if not known:
            continue
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
    flags: Mapping[Path, bool] | None = None,
) -> list[Change]:
    """Changes that would turn `actual` into `desired`, as dotted paths with old and new values.

    `flags` are the `sensitive` flags the declared spec sets (models/sensitive.py
    `sensitivity_flags`): local fields, absent from `desired`, that still decide which values
    are secrets, on both sides.
    """
    table = semantics_of(model)
    want = canonical(project(model, desired), table, drop=ignore)
    have = _drop_unset_late_init(canonical(project(model, actual), table, drop=ignore), want, table)
    if _identical(have, want):  # most of a plan: deepdiff would find nothing, at length
        return []
    secret = secret_paths(want, model, flags or {}) | secret_paths(have, model, flags or {})
    tree = DeepDiff(have, want, view="tree")
    paths: dict[str, list[Any]] = {}
    for items in tree.values():
        for item in items:
            parts = item.path(output_format="list")
            cut = next((i for i, p in enumerate(parts) if isinstance(p, int)), len(parts))
            for sub in _per_item(tuple(parts[:cut]), have, want, table):
                paths.setdefault(".".join(str(p) for p in sub), sub)
    changes = [_change(path, parts, have, want, secret) for path, parts in paths.items()]
    return sorted(changes, key=lambda c: c.path)


def _identical(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down: what deepdiff reports no change for
    (it tells 1 from 1.0 and True from 1, which `==` does not). Anything else, deepdiff
    decides."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _per_item(parts: Path, have: Any, want: Any, table: dict[str, Semantics]) -> list[Path]:
    """A change of a whole keyed list (or of a map of named values) as one change per item
    that differs: each named by its key, and each shown or hidden on its own, so a secret
    entry never takes its neighbours down with it, nor they it."""
    schema: list[str] = []
    keyed = False
    for part in parts:
        if keyed:  # an item's key, not a field: items share their list's semantics
            keyed = False
            continue
        schema.append(str(part))
        s = table.get(".".join(schema))
        keyed = s is not None and s.set_key is not None
    s = table.get(".".join(schema))
    old, new = _get(have, list(parts)), _get(want, list(parts))
    splits = s is not None and (keyed or (s.secret_by_name is not None and not s.set_key))
    if not splits or not isinstance(old or {}, dict) or not isinstance(new or {}, dict):
        return [parts]
    old, new = old or {}, new or {}
    return [(*parts, k) for k in sorted({*old, *new}) if old.get(k) != new.get(k)] or [parts]


def _change(path: str, parts: Path, have: Any, want: Any, secret: set[Path]) -> Change:
    """The change at `parts`: all of it sensitive if it lies in a secret, else with the
    secrets inside its values masked. Masked values that look alike differ in secrets only:
    the change is then a sensitive one, not an unreadable "x -> x"."""
    old, new = _get(have, list(parts)), _get(want, list(parts))
    if hidden(parts, secret):
        return Change(path, old, new, sensitive=True)
    shown_old, shown_new = mask(old, parts, secret), mask(new, parts, secret)
    if shown_old == shown_new:
        return Change(path, old, new, sensitive=True)
    return Change(path, shown_old, shown_new)


def canonical_of(data: dict[str, Any], model: type[BaseModel]) -> Any:
    """The canonical form of a spec: what `diff` compares; stable enough to hash."""
    return canonical(data, semantics_of(model))
