"""The README's two set-up commands stay the ones CI runs and the one users run first."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block, "README starts with a sh block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_setup_commands():
    first, second = _setup_commands()
    assert "reconciler apply -f manifests/examples/" in first and "--sandbox" in first
    assert "pytest" in second


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _setup_commands()[1] in ci_lines


def _importers(module: str) -> set[str]:
    import ast

    found = set()
    for path in (ROOT / "reconciler").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == module or n.startswith(module + ".") for n in names):
                found.add(str(path.relative_to(ROOT / "reconciler")))
    return found


def test_only_the_aws_layer_and_the_sandbox_import_boto3():
    # agent/exec.py runs on an EC2 instance as a single file, so it cannot use aws/
    # (tests/unit/test_agent.py checks that it imports nothing but the stdlib and boto3).
    own = ("aws/", "sandbox/", "agent/exec.py")
    assert {p for p in _importers("boto3") if not p.startswith(own)} == set()


def test_only_the_operator_imports_kopf():
    assert {p for p in _importers("kopf") if not p.startswith("operator/")} == set()


def test_only_the_report_page_imports_jinja2():
    assert {p for p in _importers("jinja2")} <= {"runs/report/page.py"}


def test_every_non_python_file_of_the_package_ships():
    """A non-editable install carries only the data files that package-data names."""
    import fnmatch
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = {
        ROOT.joinpath(*package.split(".")): patterns
        for package, patterns in setuptools.get("package-data", {}).items()
    }
    missing = []
    for path in (ROOT / "reconciler").rglob("*"):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        if not any(
            path.is_relative_to(base)
            and any(fnmatch.fnmatch(str(path.relative_to(base)), g) for g in patterns)
            for base, patterns in globs.items()
        ):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []
