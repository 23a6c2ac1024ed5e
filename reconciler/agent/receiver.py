"""Follows every task of one run on the run's one SQS queue (what `agent.exec` sends).

SQS delivers out of order and at least once, so messages are put back in order per task by their
sequence number, repeats are dropped, and fragments of a line split across messages are joined
before `on_line` sees them. A task's exit code is known only when every message before it has
arrived. What was handled is deleted from the queue (out-of-order messages are held here, not
left in SQS), so a run's queue stays small; the durable copy in S3 is what survives this process.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.agent.exec import STREAMS, VERSION

TAIL_KEPT = 200  # lines per task kept for tail()
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class TaskStream:
    """One task as received so far."""

    next_seq: int = 0
    held: dict[int, dict[str, Any]] = field(default_factory=dict)  # arrived early
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
        if seq < state.next_seq or seq in state.held or state.exit_code is not None:
            self.repeats += 1
            return
        state.held[seq] = msg
        while state.next_seq in state.held:
            self._apply(msg["task"], state, state.held.pop(state.next_seq))
            state.next_seq += 1

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
        for key, text in msg["out"]:
            stream = STREAMS[key]
            self._write(task, state, stream, text)
            *lines, state.partial[stream] = (state.partial[stream] + text).split("\n")
            for line in lines:
                self._line(task, state, stream, line)
        if "exit" in msg:
            for stream, rest in state.partial.items():
                if rest:
                    self._line(task, state, stream, rest)
                    state.partial[stream] = ""
            state.exit_code, state.reason = msg["exit"], msg.get("reason")
            if "stdout" not in state.written:  # as the seed's files: .stdout even when empty
                self._write(task, state, "stdout", "", create=True)
            self._write(task, state, "exitCode", f"{state.exit_code}\n")

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
        path = self.log_dir / f"{UNSAFE.sub('_', task)}.{suffix}"
        with path.open(mode, encoding="utf-8", errors="replace") as f:
            f.write(text)


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
