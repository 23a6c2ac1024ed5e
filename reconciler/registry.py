"""Where the kinds are found. Everything else asks the registry, never a kind's name.

A kind is a pair of modules with one name: `reconciler/models/<name>.py` (the manifest models,
with their field semantics and references; no AWS) and `reconciler/kinds/<name>.py` (its
`KINDS`: the AWS side, waits and status). The registry discovers the pairs, so adding a kind
is adding its two modules and nothing else (docs/adding-a-kind.md). Models are imported
without their AWS modules, so that what needs only the models (validation, JSON Schemas)
never imports AWS code.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.models.common import Resource

if TYPE_CHECKING:
    from reconciler.kinds.base import Kind

SUPPORT = frozenset({"base", "polling"})  # modules of kinds/ that are not kinds


def _kind_modules() -> tuple[str, ...]:
    """The names that have an AWS module in kinds/ (and so a model module in models/)."""
    # Found by path, not by importing the package: nothing here may import AWS code.
    found = (m.name for m in pkgutil.iter_modules([str(Path(__file__).parent / "kinds")]))
    return tuple(sorted(n for n in found if n not in SUPPORT and not n.startswith("_")))


KIND_MODULES = _kind_modules()


@cache
def models() -> dict[str, type[Resource]]:
    """Kind name -> manifest model, in the order of KIND_MODULES."""
    out: dict[str, type[Resource]] = {}
    for name in KIND_MODULES:
        module = importlib.import_module(f"reconciler.models.{name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Resource)
                and value.KIND
                and value.__module__ == module.__name__
            ):
                out[value.KIND] = value
    return out


@cache
def kinds() -> dict[str, Kind]:
    """Kind name -> its AWS side, in the order of KIND_MODULES."""
    out: dict[str, Kind] = {}
    for name in KIND_MODULES:
        module = importlib.import_module(f"reconciler.kinds.{name}")
        for kind in module.KINDS:
            out[kind.name] = kind
    missing = set(models()) - set(out)
    if missing:
        raise RuntimeError(f"kinds without an AWS module: {sorted(missing)}")
    return out


def kind_for(text: str) -> type[Resource] | None:
    """A kind as users type it on the command line: Kind, plural, singular or short name."""
    low = text.lower()
    for model in models().values():
        names = (model.KIND.lower(), model.PLURAL, model.PLURAL.rstrip("s"), *model.SHORT_NAMES)
        if low in names:
            return model
    return None
