"""The architecture, checked: layers by import-linter, and kinds named only in their modules."""

from __future__ import annotations

import ast
from pathlib import Path

from importlinter.cli import lint_imports

from reconciler.registry import KIND_MODULES, kinds, models

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reconciler"


def test_import_contracts_in_pyproject_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # import-linter finds the package from the working directory
    code = lint_imports(str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, "an import-linter contract is broken: run `lint-imports` to see which"


def _kind_mentions(path: Path) -> list[str]:
    """String constants that are a kind's name, and imports of a kind's modules."""
    names = set(models())
    modules = {f"reconciler.{pkg}.{m}" for pkg in ("models", "kinds") for m in KIND_MODULES}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in names:
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
        imported = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found += [f"{path.name}:{node.lineno}: import {m}" for m in imported if m in modules]
    return found


def test_no_module_outside_a_kinds_own_two_names_a_kind() -> None:
    own = {PACKAGE / pkg / f"{m}.py" for pkg in ("models", "kinds") for m in KIND_MODULES}
    own.add(PACKAGE / "registry.py")  # the one place that lists the kind modules
    offenders = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in own
        for hit in _kind_mentions(path)
    ]
    assert offenders == []


def test_the_naming_check_would_catch_a_kind_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'from reconciler.kinds.job_queue import X\nREADY = {"ComputeEnvironment": 1}\n'
    )
    assert len(_kind_mentions(sample)) == 2


def test_every_model_has_its_kind_and_every_kind_declares_itself() -> None:
    assert set(models()) == set(kinds())
    for name, kind in kinds().items():
        assert kind.model is models()[name]
        assert kind.spec_model is not None
        assert kind.columns, f"{name}: no columns for get and the CRD"


def test_modules_stay_small() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert big == {}
