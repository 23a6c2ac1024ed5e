"""The EC2 task agent as a real local process, streaming through a moto server's SQS to the
Receiver, with its durable copy in S3 (issue #11)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from reconciler.agent import exec as agent_exec
from reconciler.agent.durable import read_output
from tests.integration.agent_helpers import Stage
from tests.lossy_proxy import LossyProxy


@pytest.fixture
def stage(moto_endpoint: str, tmp_path: Path) -> Stage:
    """A queue and a bucket of their own (no account reset: only SQS and S3 are used)."""
    return Stage(moto_endpoint, tmp_path / "logs")


def test_the_seeds_example_arrives_in_order_with_its_files(stage: Stage) -> None:
    script = 'echo HI; for i in `seq 3`; do echo "count: $i"; done; echo BYE'
    proc = stage.start("count", script)
    stage.follow("count")
    assert proc.wait(timeout=30) == 0
    expected = ["HI", "count: 1", "count: 2", "count: 3", "BYE"]
    assert stage.text("count", "stdout") == expected
    assert stage.receiver.exit_code("count") == 0
    assert stage.receiver.tail("count", 2) == ["count: 3", "BYE"]
    logs = stage.log_dir
    assert (logs / "count.stdout").read_text() == "\n".join(expected) + "\n"
    assert (logs / "count.exitCode").read_text() == "0\n"
    assert not (logs / "count.stderr").exists()  # as the seed: only if there is any
    assert stage.receiver.messages == 1  # one batch, with the exit code
    durable = read_output(stage.s3, stage.prefix("count"))
    assert (durable.stdout, durable.stderr, durable.exit_code) == (
        "\n".join(expected) + "\n",
        "",
        0,
    )


def test_100000_lines_arrive_complete_in_order_in_few_messages(stage: Stage) -> None:
    began = time.monotonic()
    proc = stage.start("many", "seq 1 100000")
    stage.follow("many")
    active = time.monotonic() - began
    assert proc.wait(timeout=30) == 0
    assert stage.text("many", "stdout") == [str(i) for i in range(1, 100001)]
    size = len("\n".join(map(str, range(1, 100001)))) + 1
    assert (stage.log_dir / "many.stdout").stat().st_size == size
    # At most one message per 64 KiB, plus one per second the task was active.
    assert stage.receiver.messages <= size // (64 * 1024) + 1 + int(active) + 1
    assert stage.receiver.repeats == 0
    assert read_output(stage.s3, stage.prefix("many")).stdout.count("\n") == 100000


def test_a_single_1_mib_line_is_split_and_reassembled(stage: Stage) -> None:
    line = "x" * (1024 * 1024)
    proc = stage.start("wide", "head -c 1048576 /dev/zero | tr '\\0' x; echo; echo after")
    stage.follow("wide")
    assert proc.wait(timeout=30) == 0
    assert stage.text("wide", "stdout") == [line, "after"]
    assert stage.receiver.messages >= 1024 * 1024 // agent_exec.MAX_BODY + 1  # it was split
    assert read_output(stage.s3, stage.prefix("wide")).stdout == line + "\nafter\n"


def test_stderr_is_kept_apart_and_a_failing_exit_code_arrives(stage: Stage) -> None:
    script = "echo out1; echo err1 >&2; echo out2; echo 'ünïcode ✓' >&2; exit 3"
    proc = stage.start("fails", script)
    stage.follow("fails")
    assert proc.wait(timeout=30) == 3  # the agent exits as its command did
    assert stage.text("fails", "stdout") == ["out1", "out2"]
    assert stage.text("fails", "stderr") == ["err1", "ünïcode ✓"]
    assert stage.receiver.exit_code("fails") == 3
    assert (stage.log_dir / "fails.stderr").read_text() == "err1\nünïcode ✓\n"
    assert (stage.log_dir / "fails.exitCode").read_text() == "3\n"
    durable = read_output(stage.s3, stage.prefix("fails"))
    assert (durable.stdout, durable.stderr, durable.exit_code) == (
        "out1\nout2\n",
        "err1\nünïcode ✓\n",
        3,
    )


def test_a_timeout_kills_the_process_group_and_reports_124(stage: Stage) -> None:
    began = time.monotonic()
    proc = stage.start("slow", "echo started; sleep 60 & sleep 60; echo never", "--timeout", "2")
    stage.follow("slow", limit=60)
    assert proc.wait(timeout=30) == 124
    assert time.monotonic() - began < 45  # not the 60 s of the sleeps (a loaded machine is slow)
    assert stage.receiver.exit_code("slow") == 124
    assert "timed out after 2 s" in (stage.receiver.reason("slow") or "")
    assert stage.text("slow", "stdout") == ["started"]
    assert "timed out" in stage.text("slow", "stderr")[-1]
    assert read_output(stage.s3, stage.prefix("slow")).exit_code == 124


def test_nothing_is_sent_while_the_script_is_idle(stage: Stage) -> None:
    began = time.monotonic()
    proc = stage.start("idle", "echo before; sleep 5; echo after")
    stage.follow("idle", limit=60)
    assert proc.wait(timeout=30) == 0
    assert stage.text("idle", "stdout") == ["before", "after"]
    # "before" after about a second, then "after" with the exit code: nothing in between.
    assert stage.receiver.messages == 2
    assert stage.arrivals[1] - began > 5


def test_sigterm_to_the_agent_kills_the_command_and_still_reports(stage: Stage) -> None:
    proc = stage.start("stopped", "echo up; sleep 60")
    deadline = time.monotonic() + 60
    while not stage.text("stopped", "stdout"):
        assert time.monotonic() < deadline
        stage.receiver.poll(wait_seconds=1)
    proc.send_signal(signal.SIGTERM)
    stage.follow("stopped", limit=60)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert stage.receiver.exit_code("stopped") == 128 + signal.SIGTERM
    assert read_output(stage.s3, stage.prefix("stopped")).exit_code == 143


def test_the_durable_copy_is_refreshed_while_the_task_runs(stage: Stage) -> None:
    """What `reconciler logs` of a detached task reads: the output so far, no exit code yet."""
    proc = stage.start("detached", "echo early; sleep 8; echo late", "--upload-seconds", "1")
    deadline = time.monotonic() + 30
    while (so_far := read_output(stage.s3, stage.prefix("detached"))).stdout != "early\n":
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    assert so_far.exit_code is None
    assert proc.wait(timeout=30) == 0
    done = read_output(stage.s3, stage.prefix("detached"))
    assert (done.stdout, done.exit_code) == ("early\nlate\n", 0)


def test_a_killed_agent_takes_its_command_with_it(stage: Stage) -> None:
    """SIGKILL (the sandbox terminating an instance) cannot be caught: the kernel ends the
    command when its agent dies, instead of leaving it running on the host."""
    proc = stage.start("orphan", "echo $$; exec sleep 60")
    deadline = time.monotonic() + 60
    while not stage.text("orphan", "stdout"):
        assert time.monotonic() < deadline
        stage.receiver.poll(wait_seconds=1)
    pid = int(stage.text("orphan", "stdout")[0])
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").exists():
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX":
            break  # dead, waiting to be reaped by whatever adopted it
        assert time.monotonic() < deadline, "the command outlived its agent"
        time.sleep(0.1)


def test_many_tasks_share_one_queue_and_the_cli_runs_the_same_agent(stage: Stage) -> None:
    procs = [stage.start(f"t{i}", f"for j in 1 2 3; do echo t{i}-$j; done") for i in range(3)]
    procs.append(stage.start("cli", "echo via-cli; exit 7", cli=True))
    stage.follow("t0", "t1", "t2", "cli")
    for i in range(3):
        assert stage.text(f"t{i}", "stdout") == [f"t{i}-1", f"t{i}-2", f"t{i}-3"]
    assert stage.text("cli", "stdout") == ["via-cli"]
    assert stage.receiver.exit_code("cli") == 7
    assert [p.wait(timeout=30) for p in procs] == [0, 0, 0, 7]


def test_a_resent_message_is_dropped_by_the_receiver(stage: Stage) -> None:
    """What a retried send after a lost reply does: the same body twice, handled once."""
    bodies = agent_exec.bodies(stage.run, "dup", 0, [["o", "one\n"]], time.time())
    last = agent_exec.bodies(stage.run, "dup", 1, [["o", "two\n"]], time.time(), exit_code=0)
    for body in [last[0], bodies[0], bodies[0], last[0]]:
        stage.sqs.send_message(QueueUrl=stage.queue_url, MessageBody=body)
    stage.follow("dup", limit=60)
    assert stage.text("dup", "stdout") == ["one", "two"]
    assert stage.receiver.repeats == 2
    assert stage.sqs.receive_message(QueueUrl=stage.queue_url).get("Messages") is None
    assert json.loads(bodies[0])["v"] == agent_exec.VERSION


def test_sends_whose_replies_are_lost_are_retried_and_the_copies_dropped(stage: Stage) -> None:
    """SQS's JSON protocol posts every call to "/": the agent's first two sends reach the queue
    but their replies are lost, so it sends again; the receiver hands each line over once."""
    with LossyProxy(stage.endpoint, {"/": 2}) as proxy:
        proc = stage.start("lossy", "echo a; sleep 1.5; echo b", sqs_endpoint=proxy.url)
        stage.follow("lossy", limit=60)
        assert proc.wait(timeout=30) == 0
    assert proxy.seen["/"] == 4  # 2 lost, their retries, and the second message
    assert stage.text("lossy", "stdout") == ["a", "b"]
    assert stage.receiver.repeats == 2 and stage.receiver.exit_code("lossy") == 0
    assert read_output(stage.s3, stage.prefix("lossy")).stdout == "a\nb\n"
