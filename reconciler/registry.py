"""The one place that lists the kinds. Everything else asks the registry, never a kind's name.

Each name below is a kind's pair of modules: `reconciler/models/<name>.py` (the manifest
models, with their field semantics and references; no AWS) and `reconciler/kinds/<name>.py`
(a `Kind`: its AWS calls, waits and status). Adding a kind is adding its name here, next to
its two modules (docs/adding-a-kind.md). The modules are imported by name so that what needs
only the models (validation, JSON Schemas, CRDs) never imports AWS code.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from reconciler.models.common import Resource

if TYPE_CHECKING:
    from reconciler.kinds.base import Kind

KIND_MODULES = ("compute_environment", "job_queue", "job_definition", "pipeline")


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
