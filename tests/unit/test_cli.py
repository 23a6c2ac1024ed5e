"""The command line itself, without AWS: help, completion, suggestions, usage errors and the exit
codes the error tree carries.

The flag and default tables below are the argparse CLI's, read off its parser when it was
replaced by click: scripts written against it must keep working.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from reconciler import __version__, manifests
from reconciler.aws.clients import DEFAULT_MAX_RPS
from reconciler.cli import main
from reconciler.cli import reconciler as group
from reconciler.errors import EXIT_INTERRUPTED, EXIT_USAGE, PlanError, UsageError

ROOT = Path(__file__).resolve().parents[2]

TARGET = {"--stack", "--region", "--profile", "--endpoint-url", "--sandbox", "--sandbox-url"}
TARGET |= {"--parallelism", "--max-rps", "--timeout", "--stats"}
COMMON = {"-o", "--output", "--debug", "-h", "--help"}
MANIFESTS = {"-f", "--filename"}
RUNS = {"--report", "--run-timeout"}
FLAGS = {
    "validate": COMMON | MANIFESTS,
    "diff": COMMON | MANIFESTS | TARGET | {"--prune", "--adopt", "--no-color"},
    "apply": COMMON
    | MANIFESTS
    | TARGET
    | RUNS
    | {"--prune", "--adopt", "--dry-run", "--wait", "--lock-timeout"}
    | {"--detailed-exitcode", "--yes", "-y", "--expect-plan", "--plan", "--no-color"},
    "delete": COMMON
    | MANIFESTS
    | TARGET
    | {"--drain", "--force", "--drain-timeout", "--dry-run", "--lock-timeout"}
    | {"-l", "--selector", "--all"}
    | {"--yes", "-y", "--no-color"},
    "get": COMMON | MANIFESTS | TARGET | RUNS | {"--watch", "-l", "--selector"},
    "export": COMMON | TARGET | {"-l", "--selector", "--all-stacks", "--unowned"},
    "import": {"-o", "--output-dir", "--debug", "-h", "--help"},
    "logs": COMMON | MANIFESTS | TARGET | {"--index", "--follow", "--run"},
    "report": COMMON | MANIFESTS | TARGET | {"--run", "--report"},
    "operator": COMMON
    | {"-n", "--namespace", "-A", "--all-namespaces", "--drift-interval", "--liveness"}
    | {"--peering", "--standalone", "--priority", "--region", "--endpoint-url", "--max-rps"}
    | {"--timeout", "--workers", "--log-level"},
    "iam-policy": COMMON | MANIFESTS | {"--partition", "--account", "--part"},
    "sandbox": COMMON,
    "schema": COMMON | {"--dir", "--check"},
    "completion": {"-h", "--help"},
    "agent": {"-h", "--help"},
    "unlock": COMMON | TARGET | {"--force"},
    "gc": COMMON | TARGET | {"--dry-run", "--lock-timeout", "-f", "--filename"},
}

TARGET_DEFAULTS = {
    "stack": "default",
    "region": None,
    "profile": None,
    "endpoint_url": None,
    "sandbox": False,
    "sandbox_url": None,
    "parallelism": 8,
    "max_rps": DEFAULT_MAX_RPS,
    "timeout": 1800.0,
    "stats": False,
}
PLANS = {"output": "text", "filenames": (), **TARGET_DEFAULTS}
RUN_DEFAULTS = {"report_dir": os.path.join(".reconciler", "runs"), "run_timeout": 86400.0}
DEFAULTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "validate": ([], {"output": "text", "filenames": ()}),
    "diff": ([], {**PLANS, "prune": False, "adopt": False, "no_color": False}),
    "apply": (
        [],
        {
            **PLANS,
            **RUN_DEFAULTS,
            "prune": False,
            "adopt": False,
            "dry_run": False,
            "detailed_exitcode": False,
            "yes": False,
            "expect_plan": None,
            "plan_file": None,
            "no_color": False,
            "wait": False,
            "lock_timeout": 600.0,
        },
    ),
    "delete": (
        [],
        {
            **PLANS,
            "drain": False,
            "force": False,
            "drain_timeout": 3600.0,
            "dry_run": False,
            "yes": False,
            "no_color": False,
            "lock_timeout": 600.0,
            "resources": (),
            "selector": (),
            "everything": False,
        },
    ),
    "get": ([], {**PLANS, **RUN_DEFAULTS, "selectors": (), "selector": (), "watch": False}),
    "export": (
        [],
        {
            **{k: v for k, v in PLANS.items() if k != "filenames"},
            "output": "yaml",
            "resources": (),
            "selector": (),
            "all_stacks": False,
            "unowned": False,
        },
    ),
    "import": (
        ["beagle", "stack.yml"],
        {"source_format": "beagle", "stack_file": "stack.yml", "output_dir": None},
    ),
    "logs": (
        ["pipeline/p/t"],
        {**PLANS, "selector": "pipeline/p/t", "index": None, "follow": False, "run": None},
    ),
    "report": (
        ["pipeline/p"],
        {**PLANS, "selector": "pipeline/p", "run": None, "report_dir": RUN_DEFAULTS["report_dir"]},
    ),
    "operator": (
        [],
        {
            "output": "text",
            "namespaces": (),
            "all_namespaces": False,
            "drift_interval": 300.0,
            "liveness": None,
            "peering": "reconciler",
            "standalone": False,
            "priority": 0,
            "region": None,
            "endpoint_url": None,
            "max_rps": DEFAULT_MAX_RPS,
            "timeout": 1800.0,
            "workers": 16,
            "log_level": "INFO",
        },
    ),
    "iam-policy": (
        [],
        {"output": "text", "filenames": (), "partition": "aws", "account": "*", "part": None},
    ),
    "sandbox": ([], {"output": "text", "action": "status", "clock_words": ()}),
    "schema": ([], {"output": "text", "what": "json", "directory": None, "check": False}),
    "unlock": ([], {**{k: v for k, v in PLANS.items() if k != "filenames"}, "force": False}),
}
SECTIONS = {
    "Plan and apply": ["validate", "diff", "apply", "delete", "get"],
    "Adopt and convert": ["export", "import"],
    "Runs": ["logs", "report", "gc"],
    "Cluster": ["operator"],
    "EC2 tasks": ["agent"],
    "Tools": ["sandbox", "schema", "iam-policy", "unlock", "completion"],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parsed(name: str, argv: list[str]) -> dict[str, Any]:
    """The values a command receives for `argv`, without running it."""
    # Under the group's context, as when run: click caches a command's help option, and one
    # made without the group's -h would stay without it for the tests that follow.
    command = group.commands[name]
    with command.make_context(name, list(argv), parent=group_context()) as ctx:
        return dict(ctx.params)


def command_context(name: str) -> click.Context:
    """A command's context under the group's, which gives it -h besides --help."""
    return click.Context(group.commands[name], info_name=name, parent=group_context())


def group_context() -> click.Context:
    return click.Context(group, info_name="reconciler", **group.context_settings)


def all_commands() -> Iterator[tuple[str, click.Command]]:
    yield "reconciler", group
    yield from group.commands.items()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RECONCILER_STACK", "RECONCILER_DRIFT_INTERVAL", "RECONCILER_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("_RECONCILER_COMPLETE", raising=False)


# -- the surface stays the argparse one ------------------------------------------------------


def test_the_commands_are_the_argparse_ones_plus_completion() -> None:
    assert set(group.commands) == set(FLAGS)


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_every_flag_is_still_there(name: str) -> None:
    params = group.commands[name].get_params(command_context(name))
    opts = {o for p in params for o in [*p.opts, *p.secondary_opts]}
    flags = {o for o in opts if o.startswith("-")}
    assert flags == FLAGS[name]


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_are_unchanged(name: str) -> None:
    argv, expected = DEFAULTS[name]
    assert parsed(name, argv) == expected


def test_environment_variables_set_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_STACK", "team-a")
    monkeypatch.setenv("RECONCILER_DRIFT_INTERVAL", "60")
    monkeypatch.setenv("RECONCILER_LOG_LEVEL", "debug")  # the operator upper-cases it anyway
    assert parsed("apply", [])["stack"] == "team-a"
    assert parsed("apply", ["--stack", "mine"])["stack"] == "mine"
    params = parsed("operator", [])
    assert (params["drift_interval"], params["log_level"]) == (60.0, "DEBUG")


def test_repeatable_options_keep_their_order() -> None:
    assert parsed("validate", ["-f", "b.yml", "-f", "-", "--filename=a"])["filenames"] == (
        "b.yml",
        "-",
        "a",
    )
    assert parsed("operator", ["-n", "x", "--namespace", "y-*"])["namespaces"] == ("x", "y-*")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"reconciler {__version__}\n", "")


# -- help ------------------------------------------------------------------------------------


def test_help_lists_commands_in_groups(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--help")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    for title, names in SECTIONS.items():
        start = lines.index(f"{title}:") + 1
        rows = lines[start : lines.index("", start)]
        # a row starts at column 2; a wrapped short help continues further in
        assert [row.split()[0] for row in rows if row[2] != " "] == names, title
    assert "Other:" not in lines
    for section in ("Examples:", "Exit codes:"):
        assert section in lines
    assert "reconciler apply -f manifests/examples/ --sandbox" in out
    for code_line in ("0 ", "1 ", "2 ", "64 ", "130 "):
        assert any(line.strip().startswith(code_line) for line in lines), code_line


def test_short_help_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "-h")[1] == run(capsys, "--help")[1]
    assert run(capsys, "apply", "-h")[1] == run(capsys, "apply", "--help")[1]


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_every_command_has_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, name, "--help")
    assert code == 0
    examples = out.split("\nExamples:\n", 1)[1].splitlines()
    assert examples and all(f"reconciler {name}" in line for line in examples if line.strip())


@pytest.mark.parametrize(("name", "command"), list(all_commands()))
def test_every_flag_has_help(name: str, command: click.Command) -> None:
    ctx = group_context() if command is group else command_context(name)
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help"
    assert (command.help or "").strip() and (command.short_help or name == "reconciler")


# -- usage errors: 64, click's message, nothing on stdout ------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "Missing command."),
        (["aply", "-f", "x"], "No such command 'aply'. Did you mean 'apply'?"),
        (["frobnicate"], "No such command 'frobnicate'."),
        (["apply", "--bogus"], "No such option"),
        (["apply", "--dryrun"], "No such option"),
        (["diff", "-o", "xml"], "'xml' is not one of 'text', 'json', 'yaml', 'markdown'"),
        (["logs", "-f", "x"], "Missing argument 'pipeline/NAME/TASK'"),
        (["get", "--parallelism", "many"], "'many' is not a valid integer"),
        (["validate", "-f"], "Option '-f' requires an argument"),
        (
            ["sandbox", "explode"],
            "'explode' is not one of 'status', 'start', 'stop', 'restart', 'reset'",
        ),
        (["schema", "yaml"], "'yaml' is not one of 'json', 'crds'"),
        (["completion"], "Missing argument"),
        (["completion", "tcsh"], "'tcsh' is not one of 'bash', 'zsh', 'fish'"),
        (["operator", "-A", "--drift-interval", "0"], "0.0 is not in the range x>0"),
        (["operator", "-A", "--log-level", "LOUD"], "'LOUD' is not one of"),
    ],
)
def test_usage_errors_exit_64(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE == 64
    assert out == ""
    assert "Error: " in err and message in err
    assert "Traceback" not in err


def test_usage_errors_show_how_to_get_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "apply", "--bogus")
    assert code == 64
    assert err.startswith("Usage: reconciler apply [OPTIONS]\n")
    assert "Try 'reconciler apply -" in err and "' for help." in err  # -h or --help by version


def test_bad_environment_value_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_DRIFT_INTERVAL", "often")
    code, _, err = run(capsys, "operator", "-A")
    assert code == 64 and "--drift-interval" in err


def test_close_misspellings_get_every_candidate(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Did you mean 'diff'?" in run(capsys, "dif")[2]
    assert "Did you mean one of 'report', 'export'?" in run(capsys, "reprot")[2]
    assert "Did you mean 'validate'?" in run(capsys, "validte")[2]


def test_operator_needs_exactly_one_namespace_choice(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["operator"], ["operator", "-A", "-n", "x"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (64, "")
        assert err == "error: give --namespace NS (repeatable) or --all-namespaces\n"


# -- errors from the engine: the tree's exit codes ---------------------------------------------


def raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def load(_paths: list[str]) -> Any:
        raise exc

    monkeypatch.setattr(manifests, "load_resources", load)


def test_reconciler_error_prints_one_line_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raising(monkeypatch, PlanError("cannot do that"))
    assert run(capsys, "validate", "-f", "x.yml") == (1, "", "error: cannot do that\n")
    raising(monkeypatch, UsageError("say it differently"))
    assert run(capsys, "validate", "-f", "x.yml") == (64, "", "error: say it differently\n")


def test_debug_reraises_for_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    raising(monkeypatch, PlanError("cannot do that"))
    with pytest.raises(PlanError, match="cannot do that"):
        main(["validate", "-f", "x.yml", "--debug"])


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raising(monkeypatch, KeyboardInterrupt())
    code, out, err = run(capsys, "apply", "-f", "x.yml")
    assert (code, out) == (EXIT_INTERRUPTED, "")
    assert err == "interrupted: re-run the same command to converge\n"


def test_unwritable_directory_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "schema", "--dir", str(blocker / "schemas"))
    assert code == 1
    assert err.startswith("error: ") and "Traceback" not in err


def test_main_never_exits(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["--version"], ["apply", "--help"], ["nope"], []):
        assert isinstance(main(argv), int)  # a SystemExit would fail the test


# -- shell completion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _reconciler_completion reconciler"),
        ("zsh", "#compdef reconciler"),
        ("fish", "complete --no-files --command reconciler"),
    ],
)
def test_completion_prints_the_script(
    shell: str, marker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "completion", shell)
    assert code == 0
    assert marker in out
    assert f"_RECONCILER_COMPLETE={shell}_complete" in out


def complete(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], words: str
) -> list[str]:
    """What click answers the bash script for the command line `words` (cursor at its end)."""
    monkeypatch.setenv("_RECONCILER_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - (not words.endswith(" "))))
    code, out, _ = run(capsys, "ignored")
    assert code == 0
    return out.splitlines()


def test_completion_answers_the_shell(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert complete(monkeypatch, capsys, "reconciler ap") == ["plain,apply"]
    assert "plain,iam-policy" in complete(monkeypatch, capsys, "reconciler ")
    assert complete(monkeypatch, capsys, "reconciler apply --dr") == ["plain,--dry-run"]
    assert complete(monkeypatch, capsys, "reconciler diff -o ") == [
        "plain,text",
        "plain,json",
        "plain,yaml",
        "plain,markdown",
    ]
    assert complete(monkeypatch, capsys, "reconciler apply -f ") == ["file,"]
    assert complete(monkeypatch, capsys, "reconciler completion z") == ["plain,zsh"]
    # Kinds as get, delete and export take them; names are AWS's, not completed.
    assert complete(monkeypatch, capsys, "reconciler get job") == [
        "plain,jobdefinitions",
        "plain,jobqueues",
    ]
    assert complete(monkeypatch, capsys, "reconciler export comp") == ["plain,computeenvironments"]
    assert not any(complete(monkeypatch, capsys, "reconciler delete jq ma"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_completion_in_bash(tmp_path: Path) -> None:
    """The script as bash runs it, calling a `reconciler` executable back."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "reconciler"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    exe.chmod(0o755)
    script = (
        "source <(reconciler completion bash)\nCOMP_WORDS=(reconciler de)\nCOMP_CWORD=1\n"
        '_reconciler_completion reconciler\necho "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["delete"]


# -- the command line stays a thin layer -----------------------------------------------------


def test_the_cli_does_not_import_the_aws_sdk() -> None:
    """aws/ maps AWS errors into the project's tree; the CLI only sees those."""
    for path in (ROOT / "reconciler" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(("boto3", "botocore", "reconciler.aws.errors")), path
