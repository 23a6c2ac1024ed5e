"""Whatever `-f` names is read in bounded time and memory, and what cannot be read is one
`file:line: message` problem among the others: devices that never end, files too large, pipes
with or without a writer, directories with things in them that are not files, bytes that are not
UTF-8 text, YAML that expands to more than it says (reconciler/limits.py has the bounds).

Limits are lowered with monkeypatch where reaching the real ones would take long (the YAML
parser reads about 50-100 KiB a second); the code reads them when it runs.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.limits import MAX_FILE_BYTES, MIB
from reconciler.manifests import loader, reading
from tests.badinput.test_corpus import CORPUS, UNREACHABLE, error_lines, no_real_aws, run

__all__ = ["no_real_aws"]  # the corpus's autouse fixture: no real AWS here either

VALID = "---\n".join(
    (CORPUS.parents[2] / "manifests" / "examples" / name).read_text()
    for name in ("00-storage-and-roles.yaml", "batch-stack.yaml")
)
QUEUE = """apiVersion: reconciler.io/v1alpha1
kind: JobQueue
metadata: {name: q%d}
spec:
  priority: 1
  computeEnvironmentOrder: [{order: 1, computeEnvironment: ce}]
"""


def validate(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, list[str]]:
    argv = [part for p in paths for part in ("-f", p)]
    code, out, err = run(capsys, "validate", *argv)
    assert "Traceback" not in out + err
    return code, error_lines(err) if code else out.splitlines()


def test_an_endless_device_stops_at_the_file_limit(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    code, problems = validate(capsys, "/dev/zero")
    assert code == 1
    assert problems == ["/dev/zero:0: larger than 4 MiB, the limit for one file: not read"]
    assert time.monotonic() - start < 30  # read 4 MiB, not 3 GB


def test_a_large_file_is_not_read_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: its size says it all, nothing is read
        f.truncate(MAX_FILE_BYTES + 1)
    small = tmp_path / "small.yaml"
    small.write_text(QUEUE % 1, encoding="utf-8")
    code, problems = validate(capsys, str(big), str(small))
    assert code == 1
    assert f"{big}:0: larger than 4 MiB, the limit for one file: not read" in problems
    assert any(p.startswith(f"{small}:") for p in problems), "the other file is still checked"


def test_every_file_counts_towards_the_limit_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reading, "MAX_INPUT_BYTES", 1000)
    names = []
    for i in range(5):
        f = tmp_path / f"{i}.yaml"
        f.write_text(QUEUE % i, encoding="utf-8")  # ~150 bytes each: the 7th would be too many
        names.append(str(f))
    extra = tmp_path / "sub"
    extra.mkdir()
    for i in range(5, 9):
        (extra / f"{i}.yaml").write_text(QUEUE % i, encoding="utf-8")
    code, problems = validate(capsys, str(tmp_path))
    assert code == 1
    stop = [p for p in problems if "limit in all" in p]
    assert len(stop) == 1, problems
    assert stop[0].endswith(
        ":0: not read: the manifests given add up to more than 1000 bytes, the limit in "
        "all; nothing after this was read"
    )
    read = {p.split(":")[0] for p in problems if "computeEnvironment" in p}
    assert 4 <= len(read) < 9, "the files before the limit are checked, none after it"


def test_a_named_pipe_with_no_writer_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reading, "FIFO_WAIT_SECONDS", 0.3)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    code, problems = validate(capsys, str(fifo))
    assert code == 1
    assert problems == [
        f"{fifo}:0: a named pipe nothing wrote to within 0.3s: start the writer first, or give "
        "a file"
    ]


def test_a_named_pipe_is_read_as_its_writer_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)

    def writer() -> None:
        time.sleep(0.3)  # the reader is waiting already: it must wait for the writer
        with fifo.open("w", encoding="utf-8") as f:
            f.write(VALID[:200])
            f.flush()
            time.sleep(0.3)  # a slow writer is not cut short
            f.write(VALID[200:])

    thread = threading.Thread(target=writer)
    thread.start()
    code, lines = validate(capsys, str(fifo))
    thread.join()
    assert code == 0, lines
    assert lines[-1] == "11 resources valid."  # the storage file and the Batch stack


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd")
def test_an_anonymous_pipe_as_a_shell_gives_it(capsys: pytest.CaptureFixture[str]) -> None:
    """`-f <(kustomize build)`: the shell passes /dev/fd/N, the read end of a pipe."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, VALID.encode())
        os.close(write_end)
        code, lines = validate(capsys, f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert code == 0, lines


def test_a_directory_never_opens_what_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it would wait for a writer
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    (tmp_path / "good.yaml").write_text(QUEUE % 1, encoding="utf-8")
    start = time.monotonic()
    code, problems = validate(capsys, str(tmp_path))
    assert time.monotonic() - start < 5
    assert code == 1
    assert f"{tmp_path / 'dangling.yaml'}:0: no such file or directory" in problems
    assert not any("pipe.yaml" in p for p in problems)
    assert any(p.startswith(f"{tmp_path / 'good.yaml'}:") for p in problems)


def test_unreadable_files_and_directories_are_problems_among_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked.yaml"
    locked.write_text(QUEUE % 1, encoding="utf-8")
    (tmp_path / "private").mkdir()
    (tmp_path / "open.yaml").write_text(QUEUE % 2, encoding="utf-8")
    real_open, real_walk = Path.open, os.walk

    def deny_open(self: Path, *args: object, **kwargs: object) -> object:
        if self == locked:  # as chmod 000 does for anyone but root
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    def deny_listing(
        top: Path, onerror: Callable[[OSError], None], **kwargs: bool
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for entry in real_walk(top, onerror=onerror, **kwargs):
            _parent, dirs, _files = entry
            if "private" in dirs:  # as os.walk reports a directory it may not list
                dirs.remove("private")
                onerror(PermissionError(13, "Permission denied", str(tmp_path / "private")))
            yield entry

    monkeypatch.setattr(Path, "open", deny_open)
    monkeypatch.setattr(reading.os, "walk", deny_listing)
    code, problems = validate(capsys, str(tmp_path))
    assert code == 1
    assert f"{locked}:0: cannot read: Permission denied" in problems
    assert f"{tmp_path / 'private'}:0: cannot read the directory: Permission denied" in problems
    assert any(p.startswith(f"{tmp_path / 'open.yaml'}:") for p in problems)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_file_without_read_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked.yaml"
    locked.write_text(QUEUE % 1, encoding="utf-8")
    locked.chmod(0)
    code, problems = validate(capsys, str(locked))
    assert code == 1
    assert problems == [f"{locked}:0: cannot read: Permission denied"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"apiVersion: v1\n\x00\x01\x02binary", ":2: cannot read: a binary file, not YAML text"),
        (b"kind: Job\nname: \xff\xfe\n", ":2: cannot read: not UTF-8 text: byte 0xff in column 7"),
        (b"a: 1\nb: 2\nc: \xe9t\xe9\n", ":3: cannot read: not UTF-8 text: byte 0xe9 in column 4"),
        ("kind: x\n".encode("utf-16"), ":1: cannot read: UTF-16 or UTF-32 text; save it as UTF-8"),
        (bytes(range(0x80, 0x100)) * 4, ":1: cannot read: not UTF-8 text: byte 0x80 in column 1"),
    ],
    ids=["nul-bytes", "invalid-utf8", "latin1", "utf16", "high-bytes"],
)
def test_bytes_that_are_not_text(
    content: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    for argv in (["validate"], ["apply", *UNREACHABLE]):
        code, _, err = run(capsys, argv[0], "-f", str(path), *argv[1:])
        assert code == 1
        problems = error_lines(err)
        assert len(problems) == 1
        assert problems[0].startswith(f"{path}{expected}"), problems


def test_random_garbage_never_crashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import random

    rng = random.Random(8)
    for i in range(20):
        path = tmp_path / f"garbage{i}.yaml"
        size = rng.randrange(1, 4000)
        path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))
        code, _, err = run(capsys, "validate", "-f", str(path))
        assert code == 1
        error_lines(err)


def test_standard_input_is_bounded_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)
    stdin = io.TextIOWrapper(io.BytesIO(VALID.encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, problems = validate(capsys, "-")
    assert code == 1
    assert problems == ["<stdin>:0: larger than 100 bytes, the limit for one file: not read"]


def test_standard_input_closed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reconciler validate -f - <&-`: Python sets sys.stdin to None."""
    monkeypatch.setattr(sys, "stdin", None)
    code, problems = validate(capsys, "-")
    assert code == 1
    assert problems == ["<stdin>:0: cannot read: standard input is closed"]


def test_a_directory_named_as_a_file_in_a_listing(tmp_path: Path) -> None:
    """A directory reached as a file (a race, or `x.yaml/`) is a problem, not IsADirectoryError."""
    (tmp_path / "odd.yaml").mkdir()
    with pytest.raises(reading.Unreadable) as caught:
        reading.read_bytes(tmp_path / "odd.yaml", 100, 0.1)
    assert caught.value.problem.message == "cannot read: is a directory"


def test_aliases_may_expand_only_so_far_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Many documents, each a bomb just under the limit for one: the limit in all stops them."""
    monkeypatch.setattr(loader, "MAX_NODES", 250_000)
    bomb = (
        "x: &x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        f"y: &y [{', '.join(['*x'] * 10)}]\n"
        f"z: &z [{', '.join(['*y'] * 10)}]\n"
        f"w: [{', '.join(['*z'] * 85)}]\n"  # 94,547 values: under 100,000
    )
    path = tmp_path / "bombs.yaml"
    path.write_text("---\n".join([bomb] * 5), encoding="utf-8")
    later = tmp_path / "later.yaml"
    later.write_text(QUEUE % 1, encoding="utf-8")
    code, problems = validate(capsys, str(path), str(later))
    assert code == 1
    assert (
        f"{path}:11: invalid YAML: more than 250000 values in all once aliases are expanded; "
        "nothing after this was read"
    ) in problems
    assert not any(p.startswith(str(later)) for p in problems)


def test_documents_are_counted_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(loader, "MAX_DOCUMENTS", 3)
    path = tmp_path / "many.yaml"
    path.write_text("---\n".join(QUEUE % i for i in range(5)), encoding="utf-8")
    code, problems = validate(capsys, str(path))
    assert code == 1
    assert f"{path}:22: more than 3 documents; nothing after this was read" in problems
    checked = {p.split(":")[1] for p in problems if "computeEnvironment" in p}
    assert len(checked) == 3, "the documents before the limit are still checked"


def test_huge_keys_and_values_are_shortened_in_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(
        f"apiVersion: {'v' * 100_000}\nkind: JobQueue\nmetadata: {{name: {'q' * 100_000}}}\n"
        f"spec:\n  ? {'k' * 100_000}\n  : 1\n",
        encoding="utf-8",
    )
    code, problems = validate(capsys, str(path))
    assert code == 1
    assert all(len(p) < 2000 for p in problems), [len(p) for p in problems]
    assert any("got 'vvvv" in p and "...'" in p for p in problems)
    assert any("more characters" in p for p in problems)


def test_limits_are_what_the_readme_says() -> None:
    assert MAX_FILE_BYTES == 4 * MIB
    assert reading.MAX_INPUT_BYTES == 16 * MIB


def test_an_empty_path_is_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.yaml").write_text(QUEUE % 1, encoding="utf-8")  # would be read from "."
    code, problems = validate(capsys, "")
    assert code == 1
    assert problems == ["'':0: an empty path: give a file, a directory or - for stdin"]


def test_a_flat_document_stops_the_parser_at_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counted while parsing, not after: 400,000 values take the parser seconds to reach, and
    it stops at the 100,001st."""
    path = tmp_path / "flat.yaml"
    path.write_text("kind: JobQueue\nvalues: [" + "1, " * 400_000 + "1]\n", encoding="utf-8")
    start = time.monotonic()
    code, problems = validate(capsys, str(path))
    assert code == 1
    message = "invalid YAML: more than 100000 values once aliases are expanded"
    assert problems == [f"{path}:1: {message}"]
    assert time.monotonic() - start < 30


def test_a_directory_includes_json_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kubectl reads *.json beside *.yaml in a directory; so do we (JSON is YAML)."""
    (tmp_path / "a.yaml").write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: JobDefinition\nmetadata: {name: a}\n"
        "spec: {containerProperties: {image: busybox, vcpus: 1, memory: 512}}\n"
    )
    (tmp_path / "b.json").write_text(
        '{"apiVersion": "reconciler.io/v1alpha1", "kind": "JobDefinition",'
        ' "metadata": {"name": "b"},'
        ' "spec": {"containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512}}}'
    )
    (tmp_path / "c.txt").write_text("not a manifest")
    docs, problems = loader.read_paths([str(tmp_path)])
    assert problems == []
    assert sorted(d.data["metadata"]["name"] for d in docs) == ["a", "b"]
