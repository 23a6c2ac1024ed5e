"""The EC2 task agent's pure parts: batching, splitting, message bodies, the receiver's ordering
and deduplication, and the user data's size logic (issue #11)."""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.agent import exec as agent_exec
from reconciler.agent.exec import MAX_BODY, Batcher, bodies, pack, parse_s3, split_text
from reconciler.agent.receiver import Receiver
from reconciler.agent.userdata import (
    AGENT_KEY,
    SCRIPT_KEY,
    USER_DATA_LIMIT,
    agent_source,
    build_user_data,
)

KiB = 1024


# -- self-contained, for Amazon Linux 2023's Python 3.9 ---------------------------------------


def test_the_agent_imports_only_the_standard_library_and_boto3() -> None:
    tree = ast.parse(Path(agent_exec.__file__).read_text())
    imported = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"boto3", "botocore"}


@pytest.mark.parametrize("source", ["file", "shipped"])
def test_the_agent_is_python_3_9(source: str) -> None:
    text = Path(agent_exec.__file__).read_text() if source == "file" else agent_source().decode()
    ast.parse(text, feature_version=(3, 9))
    compile(text, "agent.py", "exec")


def test_the_shipped_agent_runs(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_bytes(agent_source())
    result = subprocess.run(
        [sys.executable, str(tmp_path / "agent.py"), "exec", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--queue-url" in result.stdout
    assert len(agent_source()) < 0.8 * len(Path(agent_exec.__file__).read_bytes())


# -- batching ---------------------------------------------------------------------------------


def test_nothing_is_due_while_nothing_is_pending() -> None:
    batch = Batcher()
    assert not batch.due(1e9) and batch.deadline() is None
    batch.add("o", "", 0.0, 0.0)  # an empty read is not output
    assert not batch.due(1e9)


def test_a_batch_is_due_a_second_after_its_first_byte_or_at_64_kib() -> None:
    batch = Batcher()
    batch.add("o", "a\n", 10.0, 100.0)
    batch.add("o", "b\n", 10.9, 100.9)
    assert not batch.due(10.99) and batch.due(11.0)
    fragments, wall = batch.take()
    assert (fragments, wall) == ([["o", "a\nb\n"]], 100.0)  # one fragment per stream run
    assert not batch.due(1e9)
    batch.add("e", "x" * (64 * KiB - 1), 20.0, 0.0)
    assert not batch.due(20.0)
    batch.add("o", "y", 20.0, 0.0)
    assert batch.due(20.0)
    assert [s for s, _ in batch.take()[0]] == ["e", "o"]


# -- splitting and message bodies -------------------------------------------------------------

AWKWARD = 'plain "quoted" back\\slash \x00\x1f tab\t é ✓ 𝄞 \ud7ff\ue000 '


@pytest.mark.parametrize("budget", [14, 100, 4096])  # 14: one astral character, escaped
def test_split_text_fits_the_budget_and_drops_nothing(budget: int) -> None:
    text = AWKWARD * 50
    pieces = split_text(text, budget)
    assert "".join(pieces) == text
    assert all(len(json.dumps(p)) <= budget for p in pieces)


def test_pack_keeps_order_and_streams() -> None:
    fragments = [["o", "a" * 300], ["e", "b" * 10], ["o", "c" * 300]]
    groups = pack(fragments, 200)
    joined = {"o": "", "e": ""}
    order = []
    for group in groups:
        assert sum(len(json.dumps(t)) + 8 for _, t in group) <= 200
        for stream, text in group:
            joined[stream] += text
            order.append(stream)
    assert joined == {"o": "a" * 300 + "c" * 300, "e": "b" * 10}
    assert order.index("e") < len(order) - 1 - order[::-1].index("o")


def test_a_1_mib_line_becomes_numbered_bodies_under_the_limit() -> None:
    line = (AWKWARD * (1024 * KiB // len(AWKWARD) + 1))[: 1024 * KiB] + "\n"
    sent = bodies("run1", "wide", 5, [["o", line]], 123.0, exit_code=0)
    messages = [json.loads(b) for b in sent]
    assert all(len(b.encode()) <= MAX_BODY and b.isascii() for b in sent)
    assert [m["seq"] for m in messages] == list(range(5, 5 + len(sent)))
    assert "".join(t for m in messages for _, t in m["out"]) == line
    assert ["exit" in m for m in messages] == [False] * (len(sent) - 1) + [True]
    assert {m["v"] for m in messages} == {agent_exec.VERSION}


def test_an_exit_without_output_is_one_message_with_a_reason() -> None:
    [body] = bodies("r", "t", 0, [], None, exit_code=124, reason="timed out")
    assert json.loads(body) == {
        "v": 1,
        "run": "r",
        "task": "t",
        "seq": 0,
        "t": None,
        "out": [],
        "exit": 124,
        "reason": "timed out",
    }


def test_s3_prefixes() -> None:
    assert parse_s3("s3://b/runs/r/t/") == ("b", "runs/r/t/")
    assert parse_s3("s3://b/runs/r/t") == ("b", "runs/r/t/")
    assert parse_s3("s3://b") == ("b", "")
    for bad in ("b/x", "s3:///x", "https://b/x"):
        with pytest.raises(ValueError):
            parse_s3(bad)


# -- the receiver: order, repeats, reassembly -------------------------------------------------


def receiver(tmp_path: Path | None = None) -> tuple[Receiver, list[tuple[str, str, str]]]:
    lines: list[tuple[str, str, str]] = []
    return Receiver(None, "q", tmp_path, lambda *line: lines.append(line)), lines


def test_out_of_order_repeated_messages_give_lines_in_order_once(tmp_path: Path) -> None:
    sent = [
        *bodies("r", "a", 0, [["o", "one\ntw"]], 1.0),
        *bodies("r", "a", 1, [["o", "o\n"], ["e", "oops\n"]], 1.0),
        *bodies("r", "a", 2, [["o", "three (no newline)"]], 1.0, exit_code=2),
    ]
    rx, lines = receiver(tmp_path)
    for body in [sent[2], sent[0], sent[2], bodies("r", "b", 0, [["o", "B\n"]], 1.0)[0]]:
        rx.handle(body)
    assert lines == [("a", "stdout", "one"), ("b", "stdout", "B")]
    assert rx.exit_code("a") is None  # message 1 is missing: the exit code waits for it
    rx.handle(sent[1])
    rx.handle(sent[1])
    assert [line for t, _, line in lines if t == "a"] == [
        "one",
        "two",
        "oops",
        "three (no newline)",
    ]
    assert rx.exit_code("a") == 2 and rx.exit_code("b") is None and rx.exit_code("c") is None
    assert (rx.messages, rx.repeats) == (6, 2)
    assert (tmp_path / "a.stdout").read_text() == "one\ntwo\nthree (no newline)"
    assert (tmp_path / "a.stderr").read_text() == "oops\n"
    assert (tmp_path / "a.exitCode").read_text() == "2\n"
    assert not (tmp_path / "b.stderr").exists() and not (tmp_path / "b.exitCode").exists()
    assert rx.tail("a", 2) == ["oops", "three (no newline)"] and rx.tail("zzz") == []


def test_a_split_line_is_reassembled_from_parts_in_any_order() -> None:
    line = "z" * (600 * KiB)
    sent = bodies("r", "w", 0, [["o", line + "\n"]], 1.0, exit_code=0)
    assert len(sent) >= 3
    rx, lines = receiver()
    for body in reversed(sent):
        rx.handle(body)
    assert lines == [("w", "stdout", line)] and rx.exit_code("w") == 0


def test_a_task_without_output_still_has_its_stdout_file(tmp_path: Path) -> None:
    rx, _ = receiver(tmp_path)
    rx.handle(bodies("r", "quiet", 0, [], None, exit_code=0)[0])
    assert (tmp_path / "quiet.stdout").read_text() == ""


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"v": 2, "task": "a", "seq": 0, "out": []}',
        '{"v": 1, "task": "a", "seq": -1, "out": []}',
        '{"v": 1, "task": "a", "seq": 0, "out": [["x", "y"]]}',
        '{"v": 1, "task": "a", "seq": 0, "out": [], "exit": "0"}',
    ],
)
def test_what_is_not_an_agent_message_is_ignored(body: str) -> None:
    rx, lines = receiver()
    rx.handle(body)
    assert (rx.ignored, lines, rx.exit_code("a")) == (1, [], None)


def test_task_names_cannot_write_outside_the_log_dir(tmp_path: Path) -> None:
    rx, _ = receiver(tmp_path / "logs")
    rx.handle(bodies("r", "../../escape", 0, [["o", "x\n"]], 1.0, exit_code=0)[0])
    assert sorted(os.listdir(tmp_path)) == ["logs"]


# -- user data --------------------------------------------------------------------------------

ARGS = {
    "task": "count",
    "run": "r-20261201",
    "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/reconciler-run",
    "region": "us-east-1",
    "s3_prefix": "s3://scratch/runs/r-20261201/count/",
}


def incompressible(size: int) -> str:
    rnd = random.Random(7)
    return "".join(f"echo {rnd.getrandbits(64):016x}\n" for _ in range(size // 22))


def test_a_small_script_is_inline_and_the_instance_shuts_down() -> None:
    data = build_user_data(script="echo HI\n", **ARGS)
    assert data.uploads == {}
    assert len(data.text.encode()) <= USER_DATA_LIMIT
    assert data.text.startswith("#!/bin/bash\n") and "trap finish EXIT" in data.text
    assert "shutdown -h now" in data.text and "--timeout" not in data.text
    assert "python3-boto3" in data.text
    subprocess.run(["bash", "-n"], input=data.text, text=True, check=True)


def test_a_50_kb_script_goes_to_uploads_and_the_user_data_stays_under_16_kb() -> None:
    script = incompressible(50_000)
    data = build_user_data(script=script, **ARGS)
    assert data.uploads == {SCRIPT_KEY: script.encode()}
    assert len(data.text.encode()) <= USER_DATA_LIMIT
    assert "download_file" in data.text
    subprocess.run(["bash", "-n"], input=data.text, text=True, check=True)


def test_a_compressible_50_kb_script_still_fits_inline() -> None:
    data = build_user_data(script="echo 'the same line, again and again'\n" * 1400, **ARGS)
    assert data.uploads == {} and len(data.text.encode()) <= USER_DATA_LIMIT


def test_what_does_not_fit_is_all_uploaded_when_even_the_agent_does_not_fit() -> None:
    long_names = {**ARGS, "queue_url": "https://sqs/" + "q" * 9000}
    data = build_user_data(script="echo HI\n", **long_names)
    assert set(data.uploads) == {AGENT_KEY, SCRIPT_KEY}
    assert data.uploads[AGENT_KEY] == agent_source()
    with pytest.raises(ValueError, match="16384"):
        build_user_data(script="echo HI\n", **{**ARGS, "queue_url": "q" * 20000})


def test_keep_alive_and_timeout() -> None:
    data = build_user_data(script="echo HI\n", keep_alive=True, timeout_seconds=3600, **ARGS)
    assert "shutdown" not in data.text and "keepInstanceAliveAfterFinish" in data.text
    assert "--timeout 3600" in data.text


def test_names_are_quoted_for_the_shell() -> None:
    data = build_user_data(script="echo HI\n", **{**ARGS, "task": "x'; rm -rf / #"})
    assert "TASK='x'\"'\"'; rm -rf / #'" in data.text
