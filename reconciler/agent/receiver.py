"""Follows every task of one run on the run's one SQS queue (what `agent.exec` sends).

SQS delivers out of order and at least once, so messages are put back in order per task by their
sequence number, repeats are dropped, and fragments of a line split across messages are joined
before `on_line` sees them. A task's exit code is known only when every message before it has
arrived. What was handled is deleted from the queue (out-of-order messages are held here, not
left in SQS), so a run's queue stays small; the durable copy in S3 is what survives this process.

A receiver that takes over a task another one followed (a CLI killed with `kill -9`, whose
re-apply re-attaches) cannot know which `seq` comes next: the dead one deleted what it handled.
`resume` starts from what is known instead: the dead receiver's files in the log directory
(complete lines were printed; a partial last line is kept to be completed) and the agent's S3
copy beyond them (printed now). Messages then carry their position in each stream (`at`), so
the first one that reaches past what is covered fixes the next `seq`, its covered part is cut
off, and wholly covered ones are dropped: no line twice, none out of order. While the queue
only holds messages beyond what is covered (a gap: what the dead receiver took and the S3 copy,
uploaded every 30 s, does not have yet), they are held until `resume` is given a newer copy.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.agent.exec import STREAMS, VERSION

TAIL_KEPT = 200  # lines per task kept for tail()
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class TaskStream:
    """One task as received so far."""

    next_seq: int | None = 0  # None: resumed, and no message has placed it yet
    held: dict[int, dict[str, Any]] = field(default_factory=dict)  # arrived early
    covered: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})  # chars
    partial: dict[str, str] = field(default_factory=lambda: {"stdout": "", "stderr": ""})
    exit_code: int | None = None
    reason: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_KEPT))
    written: set[str] = field(default_factory=set)  # files this receiver has started


class Receiver:
    """Follows every task of one run on the run's one SQS queue."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        log_dir: Path | None,
        on_line: Callable[[str, str, str], None],
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.log_dir = log_dir
        self.on_line = on_line
        self.tasks: dict[str, TaskStream] = {}
        self.messages = 0  # SQS messages received (repeats included)
        self.bytes = 0  # their bodies' bytes
        self.repeats = 0  # messages dropped as already handled
        self.ignored = 0  # bodies that are not agent messages of this version
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def poll(self, wait_seconds: int = 1) -> int:
        """Receives a batch (long poll), handles it, deletes it; returns messages handled."""
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        received = reply.get("Messages", [])
        for message in received:
            self.handle(message["Body"])
        if received:
            # A failed delete only means the message comes again: it is then a repeat.
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(received)
                ],
            )
        return len(received)

    def handle(self, body: str) -> None:
        """One message body, in whatever order it comes."""
        self.messages += 1
        self.bytes += len(body.encode())
        msg = parse(body)
        if msg is None:
            self.ignored += 1
            return
        state = self.tasks.setdefault(msg["task"], TaskStream())
        seq = msg["seq"]
        behind = state.next_seq is not None and seq < state.next_seq
        if behind or seq in state.held or state.exit_code is not None:
            self.repeats += 1
            return
        state.held[seq] = msg
        self._advance(msg["task"], state)

    def resume(self, task: str, durable: Mapping[str, str], local: bool = True) -> None:
        """Takes over `task` from a receiver that died: what its files in the log directory
        hold (if `local`: they are this launch's) is covered, what the agent's S3 copy
        (`durable`, stream -> text so far) has beyond them is printed and written now, and
        the queue's messages follow on from there. Called again with a newer copy while
        messages wait beyond a gap (`waiting`); a no-op once the task is placed."""
        state = self.tasks.get(task)
        if state is None:
            state = self.tasks[task] = TaskStream(next_seq=None)
            for stream in ("stdout", "stderr") if local else ():
                text = self._read(task, stream)
                if text is None:
                    continue
                state.written.add(stream)  # appended to from here
                *lines, state.partial[stream] = text.split("\n")
                state.tail.extend(lines)
                state.covered[stream] = len(text)
        if state.next_seq is not None or state.exit_code is not None:
            return
        for stream in ("stdout", "stderr"):
            extra = durable.get(stream, "")[state.covered[stream] :]
            if extra:
                self._out(task, state, stream, extra)
        self._advance(task, state)

    def waiting(self, held: bool = False) -> list[str]:
        """Resumed tasks not placed yet (`held`: only those with messages waiting beyond what
        is covered: a gap that a newer S3 copy fills)."""
        return [
            k
            for k, s in self.tasks.items()
            if s.next_seq is None and s.exit_code is None and (s.held or not held)
        ]

    def _advance(self, task: str, state: TaskStream) -> None:
        if state.next_seq is None:
            self._place(state)
        while state.next_seq is not None and state.next_seq in state.held:
            self._apply(task, state, state.held.pop(state.next_seq))
            state.next_seq += 1

    def _place(self, state: TaskStream) -> None:
        """A resumed task's next seq: the first held message that starts within what is
        covered and reaches past it (or ends the task); those wholly covered are dropped."""
        for seq in sorted(state.held):
            at = positions(state.held[seq])
            if at is None or any(at[s] > state.covered[s] for s in at):
                continue  # an agent without positions, or beyond a gap: wait
            end = dict(at)
            for key, text in state.held[seq]["out"]:
                end[STREAMS[key]] += len(text)
            if "exit" in state.held[seq] or any(end[s] > state.covered[s] for s in end):
                state.next_seq = seq
                for old in [k for k in state.held if k < seq]:
                    del state.held[old]
                    self.repeats += 1
                return
            del state.held[seq]
            self.repeats += 1

    def exit_code(self, task: str) -> int | None:
        state = self.tasks.get(task)
        return None if state is None else state.exit_code

    def reason(self, task: str) -> str | None:
        """Why the agent ended the command (a timeout, a signal), with the exit code."""
        state = self.tasks.get(task)
        return None if state is None else state.reason

    def tail(self, task: str, lines: int = 20) -> list[str]:
        state = self.tasks.get(task)
        return [] if state is None or lines <= 0 else list(state.tail)[-lines:]

    def _apply(self, task: str, state: TaskStream, msg: dict[str, Any]) -> None:
        at = positions(msg)
        for key, text in msg["out"]:
            stream = STREAMS[key]
            if at is not None:  # what is covered already (a resumed task) is cut off
                skip = state.covered[stream] - at[stream]
                at[stream] += len(text)
                text = text[max(0, skip) :]
            self._out(task, state, stream, text)
        if "exit" in msg:
            for stream, rest in state.partial.items():
                if rest:
                    self._line(task, state, stream, rest)
                    state.partial[stream] = ""
            state.exit_code, state.reason = msg["exit"], msg.get("reason")
            if "stdout" not in state.written:  # as the seed's files: .stdout even when empty
                self._write(task, state, "stdout", "", create=True)
            self._write(task, state, "exitCode", f"{state.exit_code}\n")

    def _out(self, task: str, state: TaskStream, stream: str, text: str) -> None:
        state.covered[stream] += len(text)
        self._write(task, state, stream, text)
        *lines, state.partial[stream] = (state.partial[stream] + text).split("\n")
        for line in lines:
            self._line(task, state, stream, line)

    def _line(self, task: str, state: TaskStream, stream: str, line: str) -> None:
        state.tail.append(line)
        self.on_line(task, stream, line)

    def _write(
        self, task: str, state: TaskStream, suffix: str, text: str, create: bool = False
    ) -> None:
        """Appends to `<log_dir>/<task>.<suffix>`, started afresh by this receiver."""
        if self.log_dir is None or not (text or create):
            return
        mode = "a" if suffix in state.written else "w"
        state.written.add(suffix)
        with self._path(task, suffix).open(mode, encoding="utf-8", errors="replace") as f:
            f.write(text)

    def _path(self, task: str, suffix: str) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{UNSAFE.sub('_', task)}.{suffix}"

    def _read(self, task: str, suffix: str) -> str | None:
        """What a receiver before this one wrote to `<log_dir>/<task>.<suffix>`, if any."""
        if self.log_dir is None:
            return None
        try:
            return self._path(task, suffix).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None


def decoded(data: bytes, final: bool) -> str:
    """The agent's S3 copy of a stream as text, as the agent decoded it for its messages: an
    incomplete character at the end of a copy still being written is left for the next."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=final)


def positions(msg: dict[str, Any]) -> dict[str, int] | None:
    """Where a message starts in each stream (stream name -> characters before it), if its
    agent says so."""
    at = msg.get("at")
    if not isinstance(at, dict) or not all(isinstance(at.get(k), int) for k in STREAMS):
        return None
    return {STREAMS[k]: at[k] for k in STREAMS}


def parse(body: str) -> dict[str, Any] | None:
    """The message if it is a well-formed agent message of this version, else None."""
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        return None
    out = msg.get("out")
    well_formed = (
        isinstance(msg.get("task"), str)
        and isinstance(msg.get("seq"), int)
        and msg["seq"] >= 0
        and isinstance(out, list)
        and all(
            isinstance(f, list) and len(f) == 2 and f[0] in STREAMS and isinstance(f[1], str)
            for f in out
        )
        and (isinstance(msg.get("exit"), int) if "exit" in msg else True)
    )
    return msg if well_formed else None
