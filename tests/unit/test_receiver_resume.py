"""A receiver taking over a task from one that died (a CLI killed with `kill -9`): it starts from
the dead one's files and the agent's S3 copy, then places the queue's messages by their stream
positions, so every line is printed once, in order (issue #11)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from reconciler.agent.exec import Channel, bodies
from reconciler.agent.receiver import Receiver, decoded

LINES = [f"line {i}" for i in range(1, 21)]


class Sent:
    """What an agent's Channel sends, kept instead of sent."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.bodies.append(MessageBody)


def stream_of(batches: list[list[list[str]]], exit_code: int = 0) -> list[str]:
    """The bodies an agent sends for these batches of fragments, the exit code last."""
    sent = Sent()
    channel = Channel(sent, "q", "r", "t")
    for fragments in batches:
        channel.send(fragments, 1.0)
    channel.send([], 1.0, exit_code)
    return sent.bodies


def two_lines_a_message() -> list[str]:
    return stream_of([[["o", f"{a}\n{b}\n"]] for a, b in zip(LINES[::2], LINES[1::2], strict=True)])


def receiver(log_dir: Path | None) -> tuple[Receiver, list[str]]:
    printed: list[str] = []
    return Receiver(None, "q", log_dir, lambda _t, _s, line: printed.append(line)), printed


def test_every_message_says_where_it_starts_in_each_stream() -> None:
    sent = stream_of([[["o", "ab\n"], ["e", "E\n"]], [["o", "x" * 300_000 + "\n"]]])
    msgs = [json.loads(b) for b in sent]
    assert len(msgs) >= 3, "the long line is split across messages"
    at = {"o": 0, "e": 0}
    for msg in msgs:
        assert msg["at"] == at
        for key, text in msg["out"]:
            at[key] += len(text)
    assert at == {"o": 3 + 300_001, "e": 2} and msgs[-1]["exit"] == 0
    # Bodies made without positions (older callers) carry none, and still work as before.
    assert "at" not in json.loads(bodies("r", "t", 0, [["o", "a\n"]], 1.0)[0])


def test_a_takeover_prints_only_what_the_dead_receiver_did_not(tmp_path: Path) -> None:
    sent = two_lines_a_message()
    dead, dead_printed = receiver(tmp_path)
    for body in sent[:3]:  # handled (and deleted) by the CLI that was killed
        dead.handle(body)
    assert dead_printed == LINES[:6]
    rx, printed = receiver(tmp_path)
    rx.resume("t", {"stdout": "\n".join(LINES[:2]) + "\n"})  # an older S3 copy: nothing new
    assert printed == [] and rx.exit_code("t") is None
    # Message 2 comes again (its delete was lost with the dead CLI), the rest in any order.
    rest = [sent[2], *sent[3:]]
    random.Random(7).shuffle(rest)
    for body in rest:
        rx.handle(body)
    assert printed == LINES[6:]
    assert rx.exit_code("t") == 0 and rx.repeats == 1
    assert (tmp_path / "t.stdout").read_text() == "".join(f"{line}\n" for line in LINES)
    assert (tmp_path / "t.exitCode").read_text() == "0\n"
    assert rx.tail("t", 3) == LINES[-3:]


def test_on_another_machine_the_s3_copy_is_printed_first_and_messages_are_trimmed() -> None:
    sent = two_lines_a_message()
    # The copy ends in the middle of message 3 (lines 7-8), and in the middle of line 8.
    copy = "".join(f"{line}\n" for line in LINES[:7]) + "line"
    rx, printed = receiver(None)
    rx.resume("t", {"stdout": copy})
    assert printed == LINES[:7], "the partial last line waits for the rest of it"
    for body in reversed(sent[1:]):  # message 0 was taken by the dead CLI
        rx.handle(body)
    assert printed == LINES and rx.exit_code("t") == 0


def test_a_gap_waits_for_a_newer_copy_and_nothing_is_lost(tmp_path: Path) -> None:
    sent = two_lines_a_message()
    rx, printed = receiver(tmp_path)
    rx.resume("t", {"stdout": ""})  # the dead CLI took messages 0-4; S3 has no copy yet
    for body in sent[5:]:
        rx.handle(body)
    assert printed == [] and rx.waiting(held=True) == ["t"]
    rx.resume("t", {"stdout": "".join(f"{line}\n" for line in LINES[:12])})
    assert printed == LINES and rx.exit_code("t") == 0 and rx.waiting() == []
    assert (tmp_path / "t.stdout").read_text().splitlines() == LINES


def test_files_of_another_launch_are_not_taken_as_covered(tmp_path: Path) -> None:
    (tmp_path / "t.stdout").write_text("an interrupted launch's output\n")
    rx, printed = receiver(tmp_path)
    rx.resume("t", {"stdout": ""}, local=False)
    for body in two_lines_a_message():
        rx.handle(body)
    assert printed == LINES
    assert (tmp_path / "t.stdout").read_text().splitlines() == LINES


def test_the_s3_copy_is_decoded_as_the_agent_decoded_its_messages() -> None:
    data = "héllo\n".encode() + "€".encode()[:2]  # a copy cut inside a character
    assert decoded(data, final=False) == "héllo\n"
    assert decoded(data, final=True) == "héllo\n\ufffd"
