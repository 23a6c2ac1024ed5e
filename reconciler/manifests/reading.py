"""Reading what `-f` names, bounded: files, directories, standard input and pipes.

Whatever a path turns out to be, reading it ends, in bounded time and memory, with its text or
with one problem located at `file:line`:
- at most `MAX_FILE_BYTES` a file and `MAX_INPUT_BYTES` in all (`-f /dev/zero` stops at once);
- a named pipe with no writer is given up after `FIFO_WAIT_SECONDS` (one with a writer, as
  `-f <(kustomize build)` makes, is read for as long as the writer writes);
- a directory is read recursively, its regular files only: a pipe, socket or device inside it
  is never opened, so naming a directory cannot block;
- bytes that are not UTF-8 text are reported at the line and column of the first bad one;
  binary files (NUL bytes) and UTF-16/32 files are named as such.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import Problem
from reconciler.limits import FIFO_WAIT_SECONDS, MAX_FILE_BYTES, MAX_INPUT_BYTES, MIB

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # JSON is YAML: kubectl reads both
STDIN = "<stdin>"
CHUNK = 64 * 1024
WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class Unreadable(Exception):
    """What is wrong with one source, as the problem to report."""

    def __init__(self, problem: Problem, *, stop: bool = False):
        super().__init__(str(problem))
        self.problem = problem
        self.stop = stop  # nothing after this source is read (the total budget is spent)


@dataclass
class Source:
    name: str
    text: str


def _mib(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n} bytes"


def _problem(name: str, message: str, line: int = 0) -> Problem:
    return Problem(name, line, "", "", message)


def _too_big(name: str, limit: int) -> Unreadable:
    if limit >= MAX_FILE_BYTES:
        return Unreadable(
            _problem(name, f"larger than {_mib(MAX_FILE_BYTES)}, the limit for one file: not read")
        )
    return Unreadable(
        _problem(
            name,
            f"not read: the manifests given add up to more than {_mib(MAX_INPUT_BYTES)}, the "
            "limit in all; nothing after this was read",
        ),
        stop=True,
    )


def _read_stream(read: Callable[[int], bytes], limit: int) -> bytes:
    """Up to `limit + 1` bytes: one more than allowed tells that there was more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_fifo(path: Path, limit: int, wait: float) -> bytes:
    """A named pipe: waits up to `wait` seconds for a writer, then reads until it closes.

    Opened without blocking (a plain open would wait for a writer forever): a read then says
    "end of file" while there is no writer, and "would block" once one is connected.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + wait
        chunks: list[bytes] = []
        size = 0
        writer = False
        while size <= limit:
            try:
                chunk = os.read(fd, min(CHUNK, limit + 1 - size))
            except BlockingIOError:  # a writer is there and has not written yet: wait for it
                writer = True
                os.set_blocking(fd, True)
                continue
            if chunk:
                writer = True
                chunks.append(chunk)
                size += len(chunk)
            elif writer:
                break  # the writer closed its end: that was everything
            elif time.monotonic() >= deadline:
                raise Unreadable(
                    _problem(
                        str(path),
                        f"a named pipe nothing wrote to within {wait:g}s: start the writer "
                        "first, or give a file",
                    )
                )
            else:
                time.sleep(0.05)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_bytes(path: Path, limit: int, fifo_wait: float) -> bytes:
    """The bytes of a file, a device or a pipe, at most `limit` of them."""
    name = str(path)
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise Unreadable(_problem(name, "cannot read: is a directory"))
        if stat.S_ISREG(mode) and path.stat().st_size > limit:
            raise _too_big(name, limit)
        if stat.S_ISFIFO(mode):
            data = _read_fifo(path, limit, fifo_wait)
        else:
            with path.open("rb") as f:
                data = _read_stream(f.read, limit)
    except FileNotFoundError:
        raise Unreadable(_problem(name, "no such file or directory")) from None
    except OSError as exc:
        raise Unreadable(_problem(name, f"cannot read: {exc.strerror or exc}")) from None
    except ValueError as exc:  # a path the OS cannot even take ("embedded null byte")
        raise Unreadable(_problem(name, f"cannot read: {exc}")) from None
    if len(data) > limit:
        raise _too_big(name, limit)
    return data


def read_stdin(limit: int) -> bytes | str:
    """Standard input, at most `limit` bytes (characters, for a text stream without bytes)."""
    stream = sys.stdin
    if stream is None or stream.closed:
        raise Unreadable(_problem(STDIN, "cannot read: standard input is closed"))
    binary = getattr(stream, "buffer", None)
    try:
        data: bytes | str = (
            _read_stream(binary.read, limit) if binary is not None else stream.read(limit + 1)
        )
    except (OSError, ValueError) as exc:
        raise Unreadable(_problem(STDIN, f"cannot read: {exc}")) from None
    if len(data) > limit:
        raise _too_big(STDIN, limit)
    return data


def decode(data: bytes, name: str) -> str:
    """UTF-8 text, or the problem located at the line of the first byte that is not."""
    if data.startswith(WIDE_BOMS):
        raise Unreadable(
            _problem(name, "cannot read: UTF-16 or UTF-32 text; save it as UTF-8", line=1)
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise Unreadable(
            _problem(
                name,
                "cannot read: a binary file, not YAML text (it holds NUL bytes)",
                line=data.count(b"\n", 0, nul) + 1,
            )
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        message = (
            f"cannot read: not UTF-8 text: byte 0x{data[exc.start]:02x} in column "
            f"{exc.start - line_start + 1}"
        )
        line = data.count(b"\n", 0, exc.start) + 1
        raise Unreadable(_problem(name, message, line=line)) from None


def expand(path: str) -> tuple[list[Path], list[Problem]]:
    """The files a path names: itself, or a directory's manifests, recursively and sorted, with
    the subdirectories that could not be listed (symlinked directories are not descended)."""
    p = Path(path)
    try:
        directory = p.is_dir()
    except OSError:
        directory = False
    if not directory:
        return [p], []
    files: list[Path] = []
    problems: list[Problem] = []

    def unlisted(exc: OSError) -> None:
        where = str(exc.filename or path)
        problems.append(_problem(where, f"cannot read the directory: {exc.strerror or exc}"))

    for parent, _dirs, names in os.walk(p, onerror=unlisted):
        for n in names:
            f = Path(parent) / n
            if f.suffix in MANIFEST_SUFFIXES and _regular(f):
                files.append(f)
    return sorted(files), problems


def _regular(f: Path) -> bool:
    """A regular file (or a symlink to one): a pipe, socket or device in a directory is never
    opened, so naming a directory cannot block. One that cannot be looked at is read, so that
    reading it says why."""
    try:
        return f.is_file() or not f.exists()
    except OSError:
        return True


class Reader:
    """Reads sources one after another within one budget of bytes for them all."""

    def __init__(self, total: int | None = None, fifo_wait: float | None = None):
        self.left = MAX_INPUT_BYTES if total is None else total
        self.fifo_wait = FIFO_WAIT_SECONDS if fifo_wait is None else fifo_wait
        self.stopped = False  # the budget for all input is spent: read nothing more

    def _limit(self) -> int:
        return min(MAX_FILE_BYTES, self.left)

    def read(self, path: str) -> Iterator[Source | Problem]:
        """The sources `path` names, or the problems reading them, in order."""
        if path == "-":
            yield self._one(STDIN, lambda: read_stdin(self._limit()))
            return
        if not path:  # Path("") is the working directory: never read it by accident
            yield _problem("''", "an empty path: give a file, a directory or - for stdin")
            return
        files, problems = expand(path)
        yield from problems
        for f in files:
            if self.stopped:
                return
            yield self._one(str(f), lambda f=f: read_bytes(f, self._limit(), self.fifo_wait))

    def _one(self, name: str, read: Callable[[], bytes | str]) -> Source | Problem:
        try:
            data = read()
        except Unreadable as exc:
            self.stopped = self.stopped or exc.stop
            return exc.problem
        self.left -= len(data)
        if isinstance(data, str):
            return Source(name, data)
        try:
            return Source(name, decode(data, name))
        except Unreadable as exc:
            return exc.problem
