"""Garbage on the command line and in the environment, for every verb: a value the tool cannot
use is a usage error (64) naming the option or variable, before any file is read or AWS is
called; what can only be found out later (a profile that does not exist, an endpoint that
refuses connections, a sandbox that was stopped) is one `error:` line and exit 1. Never a
traceback: every case runs `main` in-process, where an escaping exception fails the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.badinput.test_corpus import no_real_aws, run

__all__ = ["no_real_aws"]  # the corpus's autouse fixture: fake credentials, one attempt

EXAMPLES = str(Path(__file__).resolve().parents[2] / "manifests" / "examples")
REFUSED = ["--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1"]
AWS_VERBS = [
    ["diff", "-f", EXAMPLES],
    ["apply", "-f", EXAMPLES],
    ["delete", "-f", EXAMPLES],
    ["get", "-f", EXAMPLES],
    ["logs", "-f", EXAMPLES, "pipeline/stress/leader"],
    ["report", "-f", EXAMPLES, "pipeline/stress"],
]


def clean(code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, out + err
    assert err.strip(), "a failure says why"


USAGE = [
    (["diff", "-f", EXAMPLES, "--stack", "bad stack!"], {}, "is not a stack name"),
    (["apply", "-f", EXAMPLES], {"RECONCILER_STACK": "x" * 64}, "(env var: 'RECONCILER_STACK')"),
    (["get", "-f", EXAMPLES], {"RECONCILER_STACK": "tëam"}, "is not a stack name"),
    (["diff", "-f", EXAMPLES, "--region", "bad region!"], {}, "is not an AWS region name"),
    (["diff", "-f", EXAMPLES, "--endpoint-url", "not a url"], {}, "http:// or https:// URL"),
    (["diff", "-f", EXAMPLES, "--endpoint-url", "http://[::1"], {}, "Invalid IPv6 URL"),
    (["diff", "-f", EXAMPLES, "--endpoint-url", "http://host:port"], {}, "is not a URL"),
    (["get", "-f", EXAMPLES, "--sandbox-url", "ftp://sandbox"], {}, "http:// or https:// URL"),
    (["diff", "-f", EXAMPLES, "--parallelism", "0"], {}, "0 is not in the range 1<=x<=256"),
    (["diff", "-f", EXAMPLES, "--parallelism", "-4"], {}, "is not in the range"),
    (["apply", "-f", EXAMPLES, "--max-rps", "nan"], {}, "'nan' is not a number"),
    (["apply", "-f", EXAMPLES, "--max-rps", "-1"], {}, "is not in the range x>=0"),
    (["apply", "-f", EXAMPLES, "--timeout", "0"], {}, "is not in the range x>0"),
    (["apply", "-f", EXAMPLES, "--run-timeout", "-5"], {}, "is not in the range x>0"),
    (["delete", "-f", EXAMPLES, "--drain-timeout", "nan"], {}, "'nan' is not a number"),
    (["logs", "-f", EXAMPLES, "pipeline/stress/follower", "--index", "-1"], {}, "x>=0"),
    (["validate", "-f", EXAMPLES, "-o", "markdown"], {}, "'markdown' is not one of"),
    (["get", "-f", EXAMPLES, "-o", "markdown"], {}, "'markdown' is not one of"),
    (["sandbox", "status", "-o", "markdown"], {}, "'markdown' is not one of"),
    (["logs", "-f", EXAMPLES, "pipeline/stress/leader", "-o", "markdown"], {}, "not one of"),
    (["report", "-f", EXAMPLES, "pipeline/stress", "-o", "markdown"], {}, "not one of"),
    (["get", "-f", EXAMPLES, "gadgets/x"], {}, "unknown kind 'gadgets' in 'gadgets/x'"),
    (["validate", "-f", "a\x00b"], {}, "embedded null byte"),
    (["schema", "--dir", "a\x00b"], {}, "embedded null byte"),
    (["operator", "-A", "--workers", "0"], {}, "is not in the range"),
    (["operator", "-A"], {"RECONCILER_DRIFT_INTERVAL": "nan"}, "'nan' is not a number"),
    (["operator", "-A"], {"RECONCILER_LOG_LEVEL": "LOUD"}, "'LOUD' is not one of"),
]


@pytest.mark.parametrize(
    ("argv", "env", "message"), USAGE, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(USAGE)]
)
def test_what_the_tool_cannot_use_is_a_usage_error(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Should it get that far, nothing answers; the case's own values come later, and win.
    aws = argv[0] in {a[0] for a in AWS_VERBS}
    code, out, err = run(capsys, argv[0], *(REFUSED if aws else []), *argv[1:])
    clean(code, out, err)
    assert code == 64, err
    assert message in err, err
    assert "127.0.0.1:1" not in err, "nothing was sent anywhere"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AWS_DEFAULT_REGION": "bad region!"}, "error: Provided region_name 'bad region!'"),
        ({"AWS_PROFILE": "nowhere"}, "error: The config profile (nowhere) could not be found"),
        # Whichever client the plan makes first (sts, for the bucket's derived name) says so.
        ({"AWS_ENDPOINT_URL": "not a url"}, "client: Invalid endpoint: not a url"),
        ({"AWS_DEFAULTS_MODE": "bogus"}, "error: Client configured with invalid defaults mode"),
        ({"AWS_STS_REGIONAL_ENDPOINTS": "bogus"}, "error: STS regional endpoints option bogus"),
    ],
    ids=["region", "profile", "endpoint", "defaults-mode", "sts-endpoints"],
)
def test_an_unusable_aws_environment_is_one_error_line(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A region, so that the bad value is what stops it (no region is an error of its own).
    region = [] if "AWS_DEFAULT_REGION" in env else ["--region", "us-east-1"]
    code, out, err = run(capsys, "diff", "-f", EXAMPLES, *region)
    clean(code, out, err)
    assert code == 1
    assert message in err, err


def test_an_unparsable_aws_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile broken\nregion = \x00\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "broken")
    code, out, err = run(capsys, "diff", "-f", EXAMPLES)
    clean(code, out, err)
    assert code == 1 and err.startswith("error: "), err


@pytest.mark.parametrize("argv", AWS_VERBS, ids=[a[0] for a in AWS_VERBS])
@pytest.mark.parametrize("target", ["--endpoint-url", "--sandbox-url"])
def test_an_endpoint_that_refuses_connections(
    argv: list[str], target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stopped sandbox server given with --sandbox-url looks the same as any dead endpoint."""
    code, out, err = run(capsys, *argv, target, "http://127.0.0.1:1", "--region", "us-east-1")
    clean(code, out, err)
    assert code == 1
    assert 'error: Could not connect to the endpoint URL: "http://127.0.0.1:1/' in err, err


@pytest.mark.parametrize(
    "content",
    ["[1]", "42", '{"endpoint": 5, "pid": "x"}', '{"pid": 7}', "{", ""],
    ids=["list", "number", "wrong-types", "no-endpoint", "cut-short", "empty"],
)
def test_a_sandbox_state_file_that_makes_no_sense(
    content: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path))
    (tmp_path / "server.json").write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "sandbox", "status", "-o", "json")
    clean(code, out, err or "-")
    assert code == 0 and json.loads(out)["running"] is False
    (tmp_path / "server.json").write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "sandbox", "stop")
    assert (code, out.strip()) == (0, "sandbox was not running"), out + err


def test_stopping_a_stopped_sandbox_signals_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a reboot the pid in server.json may be anyone's: it must not be signalled."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(tmp_path))
        for endpoint in ("http://127.0.0.1:1", "garbage"):
            info = {"endpoint": endpoint, "pid": bystander.pid}
            (tmp_path / "server.json").write_text(json.dumps(info), encoding="utf-8")
            code, out, _ = run(capsys, "sandbox", "stop")
            assert (code, out.strip()) == (0, "sandbox was not running")
            assert bystander.poll() is None, "the process named in server.json was signalled"
        (tmp_path / "server.json").write_text('{"endpoint": null, "pid": 1}', encoding="utf-8")
        assert run(capsys, "sandbox", "reset")[0] == 0  # pid 1 is init: never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_sandbox_directory_that_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(blocker / "sandbox"))
    for argv in (["sandbox", "stop"], ["sandbox", "reset"], ["diff", "-f", EXAMPLES, "--sandbox"]):
        code, out, err = run(capsys, *argv)
        clean(code, out, err)
        assert code == 1 and err.startswith("error: ") and "Not a directory" in err, err


@pytest.mark.parametrize(
    "env",
    [
        {"COMP_WORDS": "reconciler get -o", "COMP_CWORD": "x"},
        {"COMP_CWORD": "1"},
        {},
    ],
    ids=["cword-not-a-number", "no-words", "nothing"],
)
def test_shell_completion_with_its_variables_garbled(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("_RECONCILER_COMPLETE", "bash_complete")
    for var in ("COMP_WORDS", "COMP_CWORD"):
        monkeypatch.delenv(var, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys)
    clean(code, out, err)
    assert code == 64 and out == ""
    assert err.startswith("error: shell completion: ")


def test_writing_where_nothing_can_be_written(capsys: pytest.CaptureFixture[str]) -> None:
    for what in ("json", "crds"):
        code, out, err = run(capsys, "schema", what, "--dir", "/dev/null/schemas")
        clean(code, out, err)
        assert code == 1 and err.startswith("error: ")
