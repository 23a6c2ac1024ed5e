"""The kind index: kind names read from the model modules' source, so that `validate` imports
only the models of the kinds a file names. It must say exactly what importing them says."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import registry
from reconciler.registry import KIND_DECLARATION, kind_index, model_of, models


def test_the_index_lists_every_kind_in_the_order_of_the_models_and_their_modules() -> None:
    # The order matters: `validate` lists the known kinds in it.
    assert list(kind_index().items()) == [
        (kind, model.__module__.removeprefix("reconciler.models."))
        for kind, model in models().items()
    ]


def test_a_kind_is_imported_as_the_registry_imports_it() -> None:
    for kind, model in models().items():
        assert model_of(kind) is model


def test_only_a_kinds_own_declaration_counts() -> None:
    text = (
        "class Resource(Strict):\n"
        '    KIND: ClassVar[str] = ""\n'  # the base: no kind
        "class Queue(Resource):\n"
        '    KIND: ClassVar[str] = "JobQueue"  # the AWS name\n'
        "    def references(self):\n"
        '        return [(ComputeEnvironment.KIND, "x", "spec")]\n'
        'QUEUE_KIND = "JobQueue"\n'
    )
    assert KIND_DECLARATION.findall(text) == ["JobQueue"]


def test_without_the_source_the_index_imports_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(self: Path, *args: object, **kwargs: object) -> str:
        raise FileNotFoundError(self)

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert registry.kind_index.__wrapped__() == kind_index()  # type: ignore[attr-defined]
