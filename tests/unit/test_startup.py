"""What a command imports before it does anything: startup time is mostly imports.

`reconciler validate` and `reconciler --help` must start fast (issue #9: under 0.25 s), and
boto3, botocore and deepdiff alone take longer than that to import. So the verbs that make no AWS
call must not import them, nor the operator's kopf, the sandbox server's moto or the report's
Jinja2. Each check runs in a new interpreter, because this test process has imported everything
already. Times are not asserted here (they depend on the machine); `benchmarks/bench_startup.py`
measures them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.stacks import ce, jq, stack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "manifests" / "examples")
HEAVY = ("boto3", "botocore", "s3transfer", "deepdiff", "kopf", "moto", "jinja2")

# Runs one command line in this interpreter and prints the top-level packages it imported.
RUN_AND_LIST = """
import contextlib, io, json, sys
from reconciler.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _run(script: str, *argv: str) -> dict[str, Any]:
    """What `script` (one of the above, run as `reconciler ARGV...`) printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def imported_by(*argv: str) -> tuple[int, set[str]]:
    """The exit code of `reconciler ARGV...` and the top-level packages it imported."""
    result = _run(RUN_AND_LIST, *argv)
    return result["code"], set(result["modules"])


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["validate", "--help"], id="validate-help"),
        pytest.param(["apply", "--help"], id="apply-help"),
        pytest.param(["validate", "-f", EXAMPLES], id="validate"),
        pytest.param(["validate", "-f", EXAMPLES, "-o", "json"], id="validate-json"),
        pytest.param(["validate", "-f", EXAMPLES, "-o", "yaml"], id="validate-yaml"),
        pytest.param(["validate", "-f", "{bad}"], id="validate-bad"),
        pytest.param(["completion", "bash"], id="completion"),
        pytest.param(["schema", "json", "--dir", "{tmp}"], id="schema"),
    ],
)
def test_commands_without_aws_import_none_of_the_heavy_packages(
    argv: list[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"  # a manifest with problems: the error path must stay light too
    bad.write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: JobQueue\nmetadata: {name: q}\n"
        "spec: {priorty: 1}\n"
    )
    code, modules = imported_by(*(a.format(bad=bad, tmp=tmp_path) for a in argv))
    assert code == (1 if "{bad}" in argv else 0)
    assert sorted(modules.intersection(HEAVY)) == []


@pytest.mark.parametrize("verb", ["status", "stop"])
def test_sandbox_commands_that_start_no_server_import_neither_moto_nor_boto3(
    verb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They read the state directory (and `restart` runs them before the new server's start):
    moto is the server's to import, half a second of every `sandbox restart` otherwise.
    (botocore's exceptions module, which the schedule clock's constants bring, is light.)"""
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    code, modules = imported_by("sandbox", verb)
    assert code == 0
    assert sorted(modules.intersection(HEAVY) - {"botocore"}) == []


def test_the_check_sees_what_a_command_that_reaches_aws_imports() -> None:
    """The same check on `iam-policy`, which imports the policy module (and so botocore)."""
    code = "import sys, reconciler.aws.errors; print('botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_sandbox_client_does_not_import_moto() -> None:
    """`--sandbox` and `--sandbox-url` talk to the server over HTTP: only the server imports moto.

    The context is built as the CLI builds it, boto3 clients included; nothing is sent."""
    code = """
import sys
from reconciler.cli.options import Target, make_context
target = Target(stack="s", region=None, profile=None, endpoint_url=None, sandbox=False,
    sandbox_url="http://127.0.0.1:9", parallelism=1, max_rps=0, timeout=1.0, stats=False)
ctx = make_context(target, "json")
ctx.aws.client("batch")
print(sorted(m for m in ("boto3", "moto", "kopf", "jinja2") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['boto3']"


# Runs one command line and prints the kind modules of models/ it imported.
RUN_AND_LIST_MODELS = """
import contextlib, io, json, sys
from reconciler.cli import main
from reconciler.registry import KIND_MODULES
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(out):
    code = main(sys.argv[1:])
kinds = sorted(m for m in KIND_MODULES if f"reconciler.models.{m}" in sys.modules)
print(json.dumps({"code": code, "output": out.getvalue(), "models": kinds}))
"""
# What importing one model module imports of the others, in a new interpreter.
IMPORT_AND_LIST_MODELS = """
import importlib, json, sys
from reconciler.registry import KIND_MODULES
importlib.import_module("reconciler.models." + sys.argv[1])
print(json.dumps(sorted(m for m in KIND_MODULES if f"reconciler.models.{m}" in sys.modules)))
"""


def models_imported_by(*argv: str) -> tuple[int, str, set[str]]:
    """The exit code and output of `reconciler ARGV...` and the kind model modules it imported."""
    result = _run(RUN_AND_LIST_MODELS, *argv)
    return result["code"], result["output"], set(result["models"])


def manifest(kind: str, name: str, spec: str) -> str:
    return f"apiVersion: reconciler.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\n{spec}"


def test_validating_a_file_of_one_kind_imports_that_kinds_model_module_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(
        "---\n".join(
            manifest(
                "JobDefinition",
                f"jd-{i}",
                "spec: {containerProperties: {image: busybox, vcpus: 1, memory: 512}}\n",
            )
            for i in range(3)
        )
    )
    code, output, imported = models_imported_by("validate", "-f", str(path))
    assert (code, output.splitlines()[-1]) == (0, "3 resources valid.")
    assert imported == {"job_definition"}


def test_a_kind_whose_model_uses_another_kinds_imports_what_its_module_imports(
    tmp_path: Path,
) -> None:
    """A queue's model imports the compute environment's (and so the machine image's): those
    come with it, and nothing else does."""
    path = tmp_path / "queue.yaml"
    fair = "\n" + manifest("SchedulingPolicy", "fair", "spec: {}\n")
    path.write_text(stack(ce("spot-ce"), jq("main-queue", envs=("spot-ce",)), fair))
    code, output, imported = models_imported_by("validate", "-f", str(path))
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_LIST_MODELS, "job_queue"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    with_queue = set(json.loads(done.stdout))
    assert code == 0, output
    assert imported == with_queue | {"scheduling_policy"}
    assert "job_definition" not in imported and "job_queue" in with_queue


def test_an_unknown_kind_is_named_with_every_kind_without_importing_their_models(
    tmp_path: Path,
) -> None:
    from reconciler.registry import models

    path = tmp_path / "typo.yaml"
    path.write_text(manifest("JobQeue", "q", "spec: {}\n"))
    code, output, imported = models_imported_by("validate", "-f", str(path))
    assert code == 1
    assert f"did you mean 'JobQueue'? known kinds: {', '.join(models())}" in output
    assert imported == set()


# Runs `reconciler ARGV...` through the process's entry point, with an atexit handler that says
# what the collector had frozen by then.
RUN_ENTRY_POINT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, flush=True))
sys.argv = ["reconciler", *sys.argv[1:]]
from reconciler.cli import run
run()
"""


@pytest.mark.parametrize(("valid", "code"), [(True, 0), (False, 1)])
def test_the_entry_point_exits_with_mains_code_and_skips_the_last_collection(
    valid: bool, code: int, tmp_path: Path
) -> None:
    """`run` freezes what the command made so that the interpreter's exit does not collect it
    all (an eighth of `validate`): the exit code, the output and atexit handlers are as before."""
    path = tmp_path / "policy.yaml"
    path.write_text(
        manifest("SchedulingPolicy", "fair", "spec: {}\n" if valid else "spec: {x: 1}\n")
    )
    done = subprocess.run(
        [sys.executable, "-c", RUN_ENTRY_POINT, "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines()[-1] == "frozen at exit: True"
    if valid:
        assert "1 resources valid." in done.stdout
    else:
        assert "SchedulingPolicy/fair: spec.x:" in done.stderr


def test_python_m_reconciler_and_the_installed_script_are_the_entry_point() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"reconciler": "reconciler.cli:run"}
    assert (ROOT / "reconciler" / "__main__.py").read_text().splitlines()[0] == (
        "from reconciler.cli import run"
    )


@pytest.mark.parametrize("enabled", [True, False])
def test_loading_manifests_pauses_the_collector_and_gives_it_back_as_it_was(
    enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading builds long-lived validators and makes no garbage worth a collection; afterwards
    (and after an error) the collector is as the caller left it."""
    import gc

    from reconciler import manifests
    from reconciler.cli.options import load_resources
    from reconciler.errors import ManifestError, Problem

    seen: list[bool] = []

    def load(paths: list[str]) -> None:
        seen.append(gc.isenabled())
        raise ManifestError([Problem("x.yaml", 1, "JobQueue/q", "spec", "broken")])

    monkeypatch.setattr(manifests, "load_resources", load)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(ManifestError):
            load_resources(("x.yaml",))
        assert (seen, gc.isenabled()) == ([False], enabled)
    finally:
        (gc.enable if was else gc.disable)()
