"""Broken manifests: each is rejected with `file:line: Kind/name: path: message`, all at once.

Every file in corpus/ holds `# expect: <substring>` header lines naming what the error output must
contain (line numbers as `:LINE:`), and optionally `# reject: <substring>` lines naming what it
must not. Each file goes through `validate` (no AWS at all) and through `apply` against an
endpoint nothing listens on: apply must fail the same way before its first AWS call, which the
absent `--stats` report (`API calls: N`) and the absent connection error both show.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))

ERROR_LINE = re.compile(r"^.+:\d+: ")
SUMMARY = re.compile(r"^(\d+) error\(s\); nothing was sent to AWS\.$")
UNREACHABLE = ["--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1", "--stats"]


def header(path: Path, tag: str) -> list[str]:
    """The substrings of the `# <tag>: ...` lines at the top of a corpus file."""
    prefix = f"# {tag}:"
    return [
        line[len(prefix) :].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith(prefix)
    ]


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a regression reach AWS after all, it must not find real credentials or endpoints."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    """The problem lines of a failed run, after checking their shape and the summary count."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines, "no error output"
    summary = SUMMARY.match(lines[-1])
    assert summary, f"last line is not the summary: {lines[-1]!r}"
    problems = lines[:-1]
    assert problems, "a summary without problems"
    assert int(summary.group(1)) == len(problems)
    bad = [line for line in problems if not ERROR_LINE.match(line)]
    assert not bad, f"not in file:line form: {bad}"
    return problems


def test_corpus_is_complete() -> None:
    assert len(FILES) >= 25
    for path in FILES:
        assert header(path, "expect"), f"{path.name} has no `# expect:` line"


@pytest.mark.filterwarnings("error")  # a warning would print lines that are not file:line
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_rejects(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 1, err
    assert "Traceback" not in out
    assert out == ""
    problems = error_lines(err)
    for line in problems:
        assert line.startswith(f"{path}:"), line
    for expected in header(path, "expect"):
        assert expected in err, f"{expected!r} not in:\n{err}"
    for rejected in header(path, "reject"):
        assert rejected not in err, f"{rejected!r} in:\n{err}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_apply_rejects_before_any_aws_call(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, validate_err = run(capsys, "validate", "-f", str(path))
    code, out, err = run(capsys, "apply", "-f", str(path), *UNREACHABLE)
    assert code == 1, err
    assert "Traceback" not in out + err
    assert "API calls" not in err  # --stats reports only once the engine has run
    assert "127.0.0.1:1" not in out + err  # no connection was attempted
    assert error_lines(err) == error_lines(validate_err)


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    for argv in (["validate"], ["apply", *UNREACHABLE]):
        code, _, err = run(capsys, argv[0], "-f", str(missing), *argv[1:])
        assert code == 1
        assert error_lines(err) == [f"{missing}:0: no such file or directory"]


def test_missing_file_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    code, _, err = run(capsys, "validate", "-f", str(FILES[0]), "-f", str(missing))
    assert code == 1
    problems = error_lines(err)
    assert f"{missing}:0: no such file or directory" in problems
    assert any(line.startswith(f"{FILES[0]}:") for line in problems)


def test_no_file_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate")
    assert code == 1
    assert "no manifests given" in err
    assert "Traceback" not in err


def copy_into(directory: Path, *names: str) -> list[Path]:
    """Copies corpus files (by name) to `directory`, keeping any subdirectory given in a name."""
    copies = []
    for name in names:
        source = CORPUS / Path(name).name
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def expected_in(err: str, *paths: Path) -> None:
    for path in paths:
        for expected in header(path, "expect"):
            assert expected in err, f"{path.name}: {expected!r} not in:\n{err}"
        assert f"{path}:" in err, f"nothing reported for {path}"


def test_directory_of_invalid_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A file in a subdirectory too: directories are read recursively. Other suffixes are not read.
    a, b = copy_into(tmp_path, "10_wrong_type.yaml", "nested/24_retry_attempts.yaml")
    (tmp_path / "notes.txt").write_text("not: [yaml", encoding="utf-8")
    for argv in (["validate"], ["apply", *UNREACHABLE]):
        code, _, err = run(capsys, argv[0], "-f", str(tmp_path), *argv[1:])
        assert code == 1
        assert len(error_lines(err)) == 2
        assert "API calls" not in err
        expected_in(err, a, b)


def test_directory_of_unparsable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = copy_into(tmp_path, "01_yaml_syntax.yaml", "02_tabs.yaml")
    code, _, err = run(capsys, "validate", "-f", str(tmp_path))
    assert code == 1
    assert len(error_lines(err)) == 2
    expected_in(err, a, b)


def test_directory_mixing_unparsable_and_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = copy_into(tmp_path, "02_tabs.yaml", "10_wrong_type.yaml")
    code, _, err = run(capsys, "validate", "-f", str(tmp_path))
    assert code == 1
    expected_in(err, a, b)


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "28_many_errors.yaml"
    text = path.read_text(encoding="utf-8")
    for argv in (["validate"], ["apply", *UNREACHABLE]):
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        code, _, err = run(capsys, argv[0], "-f", "-", *argv[1:])
        assert code == 1
        assert "API calls" not in err
        problems = error_lines(err)
        assert len(problems) == 8
        for line in problems:
            assert line.startswith("<stdin>:"), line
        for expected in header(path, "expect"):
            assert expected in err, f"{expected!r} not in:\n{err}"


def test_stdin_and_file_together(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((CORPUS / "21_queue_priority.yaml").read_text()))
    path = CORPUS / "24_retry_attempts.yaml"
    code, _, err = run(capsys, "validate", "-f", "-", "-f", str(path))
    assert code == 1
    problems = error_lines(err)
    assert any(
        line.startswith("<stdin>:7: JobQueue/urgent-queue: spec.priority:") for line in problems
    )
    assert any(line.startswith(f"{path}:9: JobDefinition/retry-jd:") for line in problems)


def test_unreadable_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("apiVersion: reconciler.io/v1alpha1\n# caf\u00e9\n".encode("latin-1"))
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    # The line and column of the first byte that is not UTF-8 (line 0 named the whole file).
    assert error_lines(err) == [f"{path}:2: cannot read: not UTF-8 text: byte 0xe9 in column 6"]


def test_empty_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    assert err.strip() == f"error: no resources found in {path}"
