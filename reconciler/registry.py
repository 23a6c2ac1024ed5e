"""Where the kinds are found. Everything else asks the registry, never a kind's name.

A kind is a pair of modules with one name: `reconciler/models/<name>.py` (the manifest models,
with their field semantics and references; no AWS) and `reconciler/kinds/<name>.py` (its
`KINDS`: the AWS side, waits and status). The registry discovers the pairs, so adding a kind
is adding its two modules and nothing else (docs/adding-a-kind.md). Models are imported
without their AWS modules, so that what needs only the models (validation, JSON Schemas)
never imports AWS code.

Validation does not even import every model: the kind names are read from the model modules'
source (`kind_index`), so `validate` imports the models of the kinds a file names and nothing
else (issue #9 asks `validate` to start in under 0.25 s; defining every kind's classes took a
good part of that).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path
from types import ModuleType
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
# How a model declares its kind, one line of its class body (docs/adding-a-kind.md). A kind
# declared otherwise is missing from `kind_index`, and tests/unit/test_registry.py says so.
KIND_DECLARATION = re.compile(
    r'^    KIND: ClassVar\[str\] = "([A-Za-z]\w*)"(?:  #.*)?$', re.MULTILINE
)


def _models_in(module: ModuleType) -> dict[str, type[Resource]]:
    """The manifest models a model module defines (not those it imports), by kind name."""
    out: dict[str, type[Resource]] = {}
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
def models() -> dict[str, type[Resource]]:
    """Kind name -> manifest model, in the order of KIND_MODULES."""
    out: dict[str, type[Resource]] = {}
    for name in KIND_MODULES:
        out.update(_models_in(importlib.import_module(f"reconciler.models.{name}")))
    return out


@cache
def kind_index() -> dict[str, str]:
    """Kind name -> the name of its modules, in the order of `models()`, without importing them.

    Read from each model module's source: its `KIND` declarations in the order they are
    written, which is the order its classes are defined in. The kind check of `validate` and
    its suggestions need the names only; importing every model module to learn them cost more
    than the rest of a one-kind validation. Where the source cannot be read (a build that ships
    byte-code only) the modules are imported instead.
    """
    folder = Path(__file__).parent / "models"
    out: dict[str, str] = {}
    try:
        for name in KIND_MODULES:
            text = (folder / f"{name}.py").read_text(encoding="utf-8")
            out.update(dict.fromkeys(KIND_DECLARATION.findall(text), name))
    except OSError:
        return {kind: model.__module__.rpartition(".")[2] for kind, model in models().items()}
    return out


def model_of(kind: str) -> type[Resource]:
    """The model of one kind (a name `kind_index` lists), importing its own module only, with
    what that module imports (a queue's model imports the compute environment's)."""
    module = importlib.import_module(f"reconciler.models.{kind_index()[kind]}")
    found = _models_in(module).get(kind)
    if found is None:  # the source said so, the module does not: a broken install
        raise RuntimeError(f"{module.__name__} does not define the model of {kind}")
    return found


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
