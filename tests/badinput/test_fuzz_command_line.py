"""A deterministic fuzzer over the command line, as test_fuzz.py is over manifests: random verbs,
options and values (odd numbers, odd URLs, odd paths, NUL characters, markdown where no plan is)
and odd environment variables. Whatever the command line, `main` returns 0, 1, 2 or 64 and never
raises or prints a traceback.

The target is always an endpoint that refuses connections, so no case reaches AWS or starts
the sandbox (`--sandbox`, `sandbox start|reset` and `operator`, which would wait for a
cluster, are never drawn), and every case runs in its own directory: `schema --dir` writes
there. Seeded per case: `test_command_line_fuzz[N]` reproduces case N exactly.
"""

from __future__ import annotations

import random
from pathlib import Path

import click
import pytest

from reconciler.cli import reconciler
from tests.badinput.test_corpus import CORPUS, no_real_aws, run

__all__ = ["no_real_aws"]

CASES = 120
SEED = 20240808
EXAMPLES = str(Path(__file__).resolve().parents[2] / "manifests" / "examples")
REFUSED = ["--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1"]
# Would start a server, only print help, or ask for the traceback (--debug raises on purpose).
NEVER = {"--sandbox", "--help", "--version", "-h", "--debug"}
VERBS = {
    "validate": [],
    "diff": [],
    "apply": [],
    "delete": [],
    "get": ["", "pipeline/stress", "jq", "gadgets/x", "ce/stress-spot"],
    "logs": ["pipeline/stress/leader", "task/x", "nonsense", "pipeline//"],
    "report": ["pipeline/stress", "pipeline", "jd/x"],
    "sandbox": ["status", "stop", "explode"],
    "schema": ["json", "crds", "yaml"],
    "iam-policy": [],
    "completion": ["bash", "zsh", "tcsh"],
}
VALUES = [
    "",
    "-",
    "0",
    "-1",
    "1",
    "2.5",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "9" * 40,
    "x" * 300,
    "json",
    "yaml",
    "markdown",
    "text",
    "DEBUG",
    "bad value!",
    "tëam",
    "a\x00b",
    "http://[::1",
    "http://host:port",
    "ftp://x",
    "http://127.0.0.1:1",
    "not a url",
    "us-east-1",
    "bad region!",
    "/dev/null",
    "/dev/null/x",
    "/nonexistent/x.yaml",
    EXAMPLES,
    str(CORPUS / "28_many_errors.yaml"),
    "--",
]
ENV = {
    "RECONCILER_STACK": ["x" * 64, "bad stack!", "", "ok"],
    "AWS_DEFAULT_REGION": ["", "bad region!", "us-east-1"],
    "AWS_ENDPOINT_URL": ["not a url", "http://[::1"],
    "AWS_PROFILE": ["nowhere"],
    "AWS_DEFAULTS_MODE": ["bogus"],
}


def options_of(verb: str) -> list[click.Option]:
    command = reconciler.commands[verb]
    return [p for p in command.params if isinstance(p, click.Option)]


def draw(case: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `case`."""
    rng = random.Random(SEED * 1000 + case)
    verb = rng.choice(sorted(VERBS))
    argv = [verb]
    if VERBS[verb] and rng.random() < 0.9:
        argv.append(rng.choice(VERBS[verb]))
    if verb in ("diff", "apply", "delete", "get", "logs", "report"):
        argv += REFUSED  # before the drawn options: a drawn --endpoint-url replaces it
    options = [o for o in options_of(verb) if not set(o.opts) & NEVER]
    for _ in range(rng.randint(0, 4) if options else 0):
        option = rng.choice(options)
        argv.append(rng.choice(option.opts))
        if not option.is_flag:
            argv.append(rng.choice(VALUES))
    if rng.random() < 0.1:
        argv.append(rng.choice(["--bogus", "-z", "extra"]))
    env = {}
    if rng.random() < 0.3:
        name = rng.choice(sorted(ENV))
        env[name] = rng.choice(ENV[name])
    return argv, env


def test_draws_are_deterministic() -> None:
    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


@pytest.mark.parametrize("case", range(CASES))
def test_command_line_fuzz(
    case: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, env = draw(case)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path / "sandbox"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    context = f"case {case}: argv={argv!r} env={env!r}"
    try:
        code, out, err = run(capsys, *argv)
    except SystemExit as exc:  # main returns its code and never exits
        pytest.fail(f"SystemExit({exc.code}): {context}")
    assert code in (0, 1, 2, 64), f"exit {code}: {context}\n{err}"
    assert "Traceback" not in out + err, f"{context}\n{err}"
    if code in (1, 64):
        assert err.strip(), f"a failure without a message: {context}"
