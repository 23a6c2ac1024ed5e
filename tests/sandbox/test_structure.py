"""The sandbox keeps its state in objects the server owns, and its modules small.

State in module globals would be shared by every server and test in a process, and survive a
reset; the server's `moto_ext.Extensions` owns it instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler.sandbox import moto_ext
from reconciler.sandbox.config import RUN_ENV, STEP_ENV, SandboxConfig

SANDBOX = Path(__file__).resolve().parents[2] / "reconciler" / "sandbox"
MODULES = sorted(SANDBOX.glob("*.py"))
MAX_LINES = 400

# Module-level calls whose result is a constant, whatever they are given.
CONSTANT_CALLS = {"re.compile", "logging.getLogger", "frozenset", "tuple", "MappingProxyType"}


def _mutable(value: ast.expr) -> str | None:
    """Why a module-level value may be mutable state, or None if it is a constant."""
    if isinstance(value, ast.Call):
        name = ast.unparse(value.func)
        return None if name in CONSTANT_CALLS else f"the result of {name}()"
    if isinstance(value, ast.List | ast.Dict | ast.Set):
        return f"a {type(value).__name__} literal"
    if isinstance(value, ast.ListComp | ast.DictComp | ast.SetComp | ast.GeneratorExp):
        return f"a {type(value).__name__}"
    for child in ast.iter_child_nodes(value):
        if isinstance(child, ast.expr) and (why := _mutable(child)) is not None:
            return why
    return None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_level_mutable_state(path: Path) -> None:
    tree = ast.parse(path.read_text())
    problems = [
        f"line {node.lineno}: global statement"
        for node in ast.walk(tree)
        if isinstance(node, ast.Global)
    ]
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            why = _mutable(node.value)
            if why is not None:
                problems.append(f"line {node.lineno}: {ast.unparse(node)[:60]} is {why}")
    assert problems == [], path.name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) < MAX_LINES


def test_install_is_idempotent_and_returns_the_owner_of_the_patches() -> None:
    first = moto_ext.install()
    assert moto_ext.install() is first
    assert moto_ext.installed() is first


def test_settings_are_read_when_used() -> None:
    environ: dict[str, str] = {}
    config = SandboxConfig(environ)
    assert (config.step_seconds, config.job_seconds, config.run_commands) == (0.2, 1.0, False)
    environ.update({STEP_ENV: "0.05", RUN_ENV: "oops"})
    assert (config.step_seconds, config.job_seconds) == (0.05, 1.0)
    assert "environ" not in repr(config), "the environment holds credentials"
