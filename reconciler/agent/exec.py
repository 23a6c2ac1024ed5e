"""The agent of an EC2 task: runs its command and streams stdout, stderr and the exit code home.

An instance and the user's laptop cannot reach each other, so the agent sends what the command
prints to the run's SQS queue (the receiver follows it) and keeps it in S3 (for `reconciler
logs`, detached tasks, and a CLI taking over from a killed one). Unlike BigDataScript's `bds
exec`: nothing is sent while idle, messages are numbered, what does not fit is split, not dropped.

This module is SELF-CONTAINED (the standard library and boto3 only, Python 3.9+: a stock Amazon
Linux 2023 has 3.9) because the user data carries it to the instance as one file:

    python3 agent.py exec --queue-url URL --run RUN --task TASK --s3-prefix s3://bucket/prefix/ \
        [--timeout SECONDS] [--region REGION] -- bash task.sh

Message format, version 1: each SQS message body is one JSON object, ASCII only (non-ASCII
characters are JSON escapes, so any byte the command prints survives SQS's character rules):

    {"v": 1, "run": RUN, "task": TASK, "seq": N, "t": T, "at": {"o": N, "e": N},
     "out": [[S, TEXT], ...], "exit": CODE, "reason": WHY}

- `seq` numbers a task's messages 0, 1, 2, ... without gaps: the receiver orders by it and drops
  repeats (a send retried after a lost reply).
- `out`: fragments of output in the order read; S is "o" (stdout) or "e" (stderr). A stream is
  its fragments joined in `seq` order; a fragment need not end a line (long lines are split).
- `t`: when the message's first byte was read (epoch seconds). `at`: the characters of each
  stream before the message; a receiver taking over from a dead one places and trims by it.
- `exit`, on the last message only: the exit code, 124 after `--timeout`, 128+N when killed by
  signal N; `reason` says why when the agent killed the command.

A batch is sent when about FLUSH_BYTES are pending or FLUSH_SECONDS after its first pending
byte, never while nothing is pending; a body stays under MAX_BODY (SQS's default limit is 256
KiB). In S3, under the prefix: `stdout`, `stderr` (if any) and `exitCode`, uploaded every
UPLOAD_SECONDS while output grows and at the end, before the last message.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 1.0
MAX_BODY = 192 * 1024  # bytes of a message body: 256 KiB (AWS's default limit) with margin
UPLOAD_SECONDS = 30.0
READ_SIZE = 64 * 1024
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of the command's process group
EOF_GRACE = 2.0  # seconds to wait for the pipes to close once the command exited
EXIT_TIMEOUT = 124  # as timeout(1)
STREAMS = {"o": "stdout", "e": "stderr"}
SEND_ATTEMPTS = 10
FATAL_ERRORS = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "AccessDenied")

Fragment = list  # [stream, text]: a JSON array in the message


def log(text: str) -> None:
    """The agent's own diagnostics: its stderr, which cloud-init keeps in its output log."""
    print(f"reconciler-agent: {text}", file=sys.stderr, flush=True)


# -- batching and splitting: pure ------------------------------------------------------------


def encoded_len(text: str) -> int:
    """Bytes `text` takes inside an ASCII JSON body (quotes included)."""
    return len(json.dumps(text))


def split_text(text: str, budget: int) -> list[str]:
    """Cuts text into pieces whose JSON encoding fits `budget` bytes (never drops a character;
    `budget` is at least 14, the longest one character can take: quotes and two \\u escapes)."""
    pieces = []
    while text:
        lo, hi = 1, min(len(text), budget)  # the longest prefix that fits: binary search
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if encoded_len(text[:mid]) <= budget else (lo, mid - 1)
        pieces.append(text[:lo])
        text = text[lo:]
    return pieces


def pack(fragments: list[Fragment], budget: int) -> list[list[Fragment]]:
    """Groups fragments (split where needed) into messages of at most `budget` encoded bytes."""
    groups: list[list[Fragment]] = [[]]
    used = 0
    for stream, text in fragments:
        for piece in split_text(text, budget - 8):
            size = encoded_len(piece) + 8  # ["o",...], plus a comma
            if used + size > budget and groups[-1]:
                groups.append([])
                used = 0
            groups[-1].append([stream, piece])
            used += size
    return groups


@dataclass
class Batcher:
    """Output waiting to be sent: due when large enough or old enough, never when empty."""

    flush_bytes: int = FLUSH_BYTES
    flush_seconds: float = FLUSH_SECONDS
    fragments: list = field(default_factory=list)
    size: int = 0
    first_at: float | None = None  # monotonic time of the first pending byte
    first_wall: float | None = None  # the same, as epoch seconds (the message's "t")

    def add(self, stream: str, text: str, now: float, wall: float) -> None:
        if not text:
            return
        if self.first_at is None:
            self.first_at, self.first_wall = now, wall
        if self.fragments and self.fragments[-1][0] == stream:
            self.fragments[-1][1] += text
        else:
            self.fragments.append([stream, text])
        self.size += len(text)

    def deadline(self) -> float | None:
        return None if self.first_at is None else self.first_at + self.flush_seconds

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and (self.size >= self.flush_bytes or now >= deadline)

    def take(self) -> tuple[list[Fragment], float | None]:
        taken = (self.fragments, self.first_wall)
        self.fragments, self.size, self.first_at, self.first_wall = [], 0, None, None
        return taken


def envelope(run: str, task: str, seq: int, wall: Any, at: Any = None) -> dict[str, Any]:
    placed = {} if at is None else {"at": dict(at)}
    return {"v": VERSION, "run": run, "task": task, "seq": seq, "t": wall, **placed, "out": []}


def bodies(
    run: str,
    task: str,
    first_seq: int,
    fragments: list[Fragment],
    wall: float | None,
    exit_code: int | None = None,
    reason: str | None = None,
    max_body: int = MAX_BODY,
    at: dict | None = None,
) -> list[str]:
    """The message bodies for a batch: numbered from first_seq, placed in each stream from
    `at` (characters before the batch), the exit code on the last one."""
    closing: dict[str, Any] = {}
    if exit_code is not None:
        closing = {"exit": exit_code, **({"reason": reason} if reason else {})}
    big = {"o": 2**53, "e": 2**53}
    overhead = len(json.dumps({**envelope(run, task, 2**53, 1e12, big), **closing})) + 32
    groups = pack(fragments, max_body - overhead) if fragments else [[]]
    result = []
    at = None if at is None else dict(at)
    for i, group in enumerate(groups):
        msg = envelope(run, task, first_seq + i, wall, at)
        msg["out"] = group
        for key, text in group if at is not None else ():
            at[key] += len(text)
        if i == len(groups) - 1:
            msg.update(closing)
        result.append(json.dumps(msg, separators=(",", ":")))
    return result


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Channel:
    """Sends a task's messages in order; a failed send is retried with backoff (same body, same
    seq: the receiver drops the copy). A queue that is gone stops the streaming, not the task."""

    def __init__(self, sqs: Any, queue_url: str, run: str, task: str) -> None:
        self.sqs, self.queue_url, self.run, self.task = sqs, queue_url, run, task
        self.seq = 0
        self.at = {"o": 0, "e": 0}  # characters of each stream in the messages so far
        self.sent = 0
        self.dead = False

    def send(
        self,
        fragments: list[Fragment],
        wall: float | None,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        sent = bodies(self.run, self.task, self.seq, fragments, wall, exit_code, reason, at=self.at)
        for key, text in fragments:
            self.at[key] += len(text)
        for body in sent:
            self.seq += 1
            if not self.dead:
                self._send_one(body, attempts=SEND_ATTEMPTS * (3 if exit_code is not None else 1))

    def _send_one(self, body: str, attempts: int) -> None:
        for attempt in range(attempts):
            try:
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
                self.sent += 1
                return
            except Exception as exc:  # any failure of one send: retry, or give streaming up
                code = error_code(exc)
                if code in FATAL_ERRORS or attempt == attempts - 1:
                    log(f"streaming stopped: {code or type(exc).__name__}: {exc}")
                    self.dead = True
                    return
                time.sleep(min(20.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.0))


def parse_s3(url: str) -> tuple[str, str]:
    """s3://bucket/prefix/ -> (bucket, "prefix/"): object keys are the prefix plus a name."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, (prefix if not prefix or prefix.endswith("/") else prefix + "/")


class Durable:
    """The whole output, spooled to local files and copied to S3 when it changed."""

    def __init__(self, s3: Any, url: str | None, upload_seconds: float = UPLOAD_SECONDS) -> None:
        self.s3 = s3
        self.target = parse_s3(url) if url else None
        self.upload_seconds = upload_seconds
        self.dir = tempfile.mkdtemp(prefix="reconciler-agent-")
        self.paths = {s: os.path.join(self.dir, s) for s in ("stdout", "stderr")}
        self.files = {s: open(p, "wb") for s, p in self.paths.items()}  # noqa: SIM115
        self.sizes = {s: 0 for s in self.paths}
        self.uploaded = dict(self.sizes)
        self.next_at = time.monotonic() + upload_seconds

    def write(self, stream: str, data: bytes) -> None:
        self.files[stream].write(data)
        self.sizes[stream] += len(data)

    def maybe_upload(self, now: float) -> None:
        if now < self.next_at:
            return
        took = 0.0
        if self.sizes != self.uploaded:
            began = time.monotonic()
            self.upload()
            took = time.monotonic() - began
        # A huge output is not copied again every 30 s: at most a tenth of the time goes to it.
        self.next_at = time.monotonic() + max(self.upload_seconds, 10 * took)

    def upload(self, exit_code: int | None = None) -> None:
        for stream, f in self.files.items():
            f.flush()
            if self.sizes[stream] != self.uploaded[stream]:
                self._copy(stream, path=self.paths[stream])
                self.uploaded[stream] = self.sizes[stream]
        if exit_code is not None:
            self._copy("exitCode", body=f"{exit_code}\n".encode())

    def _copy(self, name: str, path: str = "", body: bytes = b"") -> None:
        """One object, retried; the copy is best effort: the stream goes on without it."""
        if self.target is None:
            return
        bucket, key = self.target[0], self.target[1] + name
        for attempt in range(5):
            try:
                if path:
                    self.s3.upload_file(path, bucket, key)
                else:
                    self.s3.put_object(Bucket=bucket, Key=key, Body=body)
                return
            except Exception as exc:  # any failure: retry, then give the copy up
                if attempt == 4 or error_code(exc) in ("NoSuchBucket", "AccessDenied"):
                    log(f"could not copy {name} to S3: {error_code(exc) or exc}")
                    return
                time.sleep(0.5 * 2**attempt)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        for path in self.paths.values():
            os.unlink(path)
        os.rmdir(self.dir)


@dataclass
class Config:
    command: list
    queue_url: str
    run: str
    task: str
    s3_prefix: str | None = None
    timeout: float | None = None
    region: str | None = None
    flush_bytes: int = FLUSH_BYTES
    flush_seconds: float = FLUSH_SECONDS
    upload_seconds: float = UPLOAD_SECONDS


def _read(stream: str, pipe: Any, out: queue.Queue) -> None:
    """One pipe to the queue, as it comes: (stream, bytes, when); bytes None at the end."""
    fd = pipe.fileno()
    try:
        while True:
            data = os.read(fd, READ_SIZE)
            out.put((stream, data or None, time.time()))
            if not data:
                return
    except OSError:
        out.put((stream, None, time.time()))


def _kill(proc: subprocess.Popen, grace: float = KILL_GRACE) -> None:
    """SIGTERM to the command's process group, SIGKILL if it is still there after `grace`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _in_child() -> Callable[[], None]:
    """What the command's process does before it runs: a process group of its own (killed as
    one on timeout) in the agent's session (so that whoever ends the instance's session ends it),
    and on Linux SIGKILL when the agent dies (a SIGKILLed agent cannot kill it itself)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None).prctl  # looked up before the fork: no import in the child
    except (ImportError, OSError, AttributeError):
        prctl = None

    def run() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return run


def clients(config: Config) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config as BotoConfig

    region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    cfg = BotoConfig(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30
    )
    sqs, s3 = (boto3.client(name, region_name=region, config=cfg) for name in ("sqs", "s3"))
    return sqs, s3


def run(config: Config, sqs: Any = None, s3: Any = None) -> int:
    """Runs the command to its end, streaming as it goes; returns its exit code."""
    if sqs is None or s3 is None:
        sqs, s3 = clients(config)
    channel = Channel(sqs, config.queue_url, config.run, config.task)
    durable = Durable(s3, config.s3_prefix, config.upload_seconds)
    stopped: list[int] = []  # the signal the agent was asked to stop with
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, lambda signum, _frame: stopped.append(signum))
    try:
        return _run(config, channel, durable, stopped)
    finally:  # run in-process (`reconciler agent exec`), the caller's handlers come back
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(config: Config, channel: Channel, durable: Durable, stopped: list[int]) -> int:
    batch = Batcher(config.flush_bytes, config.flush_seconds)
    decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
    try:
        proc = subprocess.Popen(
            config.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_in_child(),
        )
    except OSError as exc:
        text = f"reconciler-agent: cannot run {config.command[0]!r}: {exc.strerror}\n"
        durable.write("stderr", text.encode())
        durable.upload(127)
        channel.send([["e", text]], time.time(), 127, "the command could not be started")
        durable.close()
        return 127
    chunks: queue.Queue = queue.Queue(maxsize=256)  # full: the readers wait, the command blocks
    for key, pipe in (("o", proc.stdout), ("e", proc.stderr)):
        threading.Thread(target=_read, args=(key, pipe, chunks), daemon=True).start()
    started = time.monotonic()
    deadline = started + config.timeout if config.timeout else None
    open_streams, exited_at, reason, forced = 2, None, None, None
    while open_streams or exited_at is None:
        now = time.monotonic()
        if stopped and forced is None:
            forced, reason, deadline = 128 + stopped[0], f"the agent got signal {stopped[0]}", None
            _kill(proc)
        if deadline is not None and now >= deadline and forced is None:
            forced, deadline = EXIT_TIMEOUT, None
            reason = f"timed out after {config.timeout:g} s: the command was killed"
            _kill(proc)
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and open_streams and now - exited_at > EOF_GRACE:
            # What the command left in the background holds the pipes open: it goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if now - exited_at > 2 * EOF_GRACE:
                break
        if batch.due(now):
            channel.send(*batch.take())
        durable.maybe_upload(now)
        wakes = [t for t in (batch.deadline(), deadline, durable.next_at, now + 0.5) if t]
        try:
            key, data, wall = chunks.get(timeout=max(0.01, min(wakes) - time.monotonic()))
        except queue.Empty:
            continue
        if data is None:
            open_streams -= 1
            text = decoders[key].decode(b"", final=True)
        else:
            durable.write(STREAMS[key], data)
            text = decoders[key].decode(data)
        batch.add(key, text, time.monotonic(), wall)
    code = proc.wait() if forced is None else forced
    code = 128 - code if code < 0 else code
    if reason:
        note = f"reconciler-agent: {reason}\n"
        durable.write("stderr", note.encode())
        batch.add("e", note, time.monotonic(), time.time())
    durable.upload(code)
    fragments, wall = batch.take()
    channel.send(fragments, wall, code, reason)
    durable.close()
    for pipe in filter(None, (proc.stdout, proc.stderr)):
        pipe.close()
    return code


def parse_args(argv: list[str]) -> Config:
    """`exec [options] -- COMMAND...` (the `--` may be left out when COMMAND has no options)."""
    command: list[str] = []
    if "--" in argv:
        argv, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(prog="agent.py", description="The agent of EC2 tasks.")
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("exec", help="run COMMAND, streaming its output to SQS and S3")
    p.add_argument("--queue-url", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--s3-prefix", help="s3://bucket/prefix/ for the durable copy")
    p.add_argument("--timeout", type=float, help="seconds; then the exit code is 124")
    p.add_argument("--region")
    p.add_argument("--flush-bytes", type=int, default=FLUSH_BYTES)
    p.add_argument("--flush-seconds", type=float, default=FLUSH_SECONDS)
    p.add_argument("--upload-seconds", type=float, default=UPLOAD_SECONDS)
    p.add_argument("rest", nargs="*")
    opts = vars(parser.parse_args(argv))
    command = opts.pop("rest") + command
    del opts["verb"]
    if not command:
        parser.error("no command given (after --)")
    if opts["s3_prefix"]:
        try:
            parse_s3(opts["s3_prefix"])
        except ValueError as exc:
            parser.error(f"--s3-prefix: {exc}")
    return Config(command, **opts)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
