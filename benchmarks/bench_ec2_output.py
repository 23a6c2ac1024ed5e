"""Benchmark: what streaming an EC2 task's output costs in SQS messages and bytes, and how late
its lines arrive.

    python benchmarks/bench_ec2_output.py [--lines 10000] [--tasks 10]

The agent (`reconciler/agent/exec.py`, as the user data carries it) runs as a local process
against a moto server in its own process, and the Receiver follows the queue as the runner does.
Scenarios: LINES lines printed at once (short lines, then 100-byte lines), LINES lines paced over
about 10 s, a script idle for 10 s between two lines, TASKS tasks at once on one queue, and a
line every 0.5 s whose print time it carries (latency: printed -> handed to on_line). The
target (issue #11): at most one message per 64 KiB of output plus one per second of output
activity, none while idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_stack import REGION, MotoServer, out  # noqa: E402

from reconciler.agent import exec as agent_exec  # noqa: E402
from reconciler.agent.receiver import Receiver  # noqa: E402

KiB = 1024
PY = sys.executable


@dataclass
class Outcome:
    name: str
    lines: int = 0
    out_bytes: int = 0
    messages: int = 0
    body_bytes: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    peak_kib: float = 0.0


def clients(endpoint: str) -> tuple[Any, Any]:
    kw = {"endpoint_url": endpoint, "region_name": REGION}
    kw |= {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    return boto3.client("sqs", **kw), boto3.client("s3", **kw)


def scenario(endpoint: str, name: str, scripts: list[str], latency: bool = False) -> Outcome:
    """Runs one agent per script on one queue and follows them all to their exit codes."""
    import subprocess

    sqs, s3 = clients(endpoint)
    run = uuid.uuid4().hex[:8]
    url = sqs.create_queue(QueueName=f"bench-{run}")["QueueUrl"]
    s3.create_bucket(Bucket=f"bench-{run}")
    result = Outcome(name)

    def on_line(task: str, stream: str, line: str) -> None:
        result.lines += 1
        result.out_bytes += len(line) + 1
        if latency and line.startswith("at "):
            result.latencies.append(time.time() - float(line[3:]))

    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "PATH": "/usr/bin:/bin",
    }
    with tempfile.TemporaryDirectory() as logs:
        receiver = Receiver(sqs, url, Path(logs), on_line)
        tasks = [f"t{i}" for i in range(len(scripts))]
        began = time.monotonic()
        agent = [PY, agent_exec.__file__, "exec", "--queue-url", url, "--run", run]
        procs = [
            subprocess.Popen(
                [
                    *agent,
                    "--task",
                    task,
                    "--s3-prefix",
                    f"s3://bench-{run}/{task}/",
                    "--",
                    *sh(script),
                ],
                env=env,
            )
            for task, script in zip(tasks, scripts, strict=True)
        ]
        tracemalloc.start()
        while any(receiver.exit_code(t) is None for t in tasks):
            receiver.poll(wait_seconds=1)
        result.peak_kib = tracemalloc.get_traced_memory()[1] / KiB
        tracemalloc.stop()
        result.seconds = time.monotonic() - began
        for proc in procs:
            proc.wait()
    result.messages, result.body_bytes = receiver.messages, receiver.bytes
    sqs.delete_queue(QueueUrl=url)
    return result


def sh(script: str) -> list[str]:
    return ["bash", "-c", script]


def paced(lines: int, seconds: float) -> str:
    code = (
        f"import sys, time\nfor i in range({lines}):\n    print('line', i, flush=True)\n"
        f"    time.sleep({seconds / lines})"
    )
    return f'{PY} -c "{code}"'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    n = args.lines
    wide = f"for i in $(seq {n}); do printf '%099d\\n' $i; done"
    stamped = "for i in $(seq 20); do echo at $(date +%s.%N); sleep 0.5; done"
    with tempfile.TemporaryDirectory() as tmp:
        server = MotoServer(tmp)
        try:
            results = [
                scenario(server.endpoint, f"{n:,} short lines at once", [f"seq {n}"]),
                scenario(server.endpoint, f"{n:,} 100-byte lines at once", [wide]),
                scenario(server.endpoint, f"{n:,} lines over 10 s", [paced(n, 10.0)]),
                scenario(
                    server.endpoint, "2 lines, 10 s idle between", ["echo a; sleep 10; echo b"]
                ),
                scenario(
                    server.endpoint,
                    f"{args.tasks} tasks x {n:,} lines, one queue",
                    [f"seq {n}"] * args.tasks,
                ),
                scenario(server.endpoint, "a stamped line every 0.5 s", [stamped], latency=True),
            ]
        finally:
            server.stop()
    heads = ("scenario", "lines", "msgs", "msgs/10k", "KiB sent", "KiB/10k", "s", "target")
    out(f"{heads[0]:<34}" + "".join(f"{h:>10}" for h in heads[1:]))
    for r in results:
        per = 10_000 / max(1, r.lines)
        # The target: a message per 64 KiB, plus one per second the task ran (an upper bound
        # of its seconds of output activity), plus the exit code's.
        target = r.out_bytes // (64 * KiB) + 1 + int(r.seconds) + 1
        msgs_10k, kib_10k = (
            (f"{r.messages * per:.1f}", f"{r.body_bytes / KiB * per:.0f}")
            if r.lines >= 10_000
            else ("-", "-")
        )
        out(
            f"{r.name:<34}{r.lines:>10,}{r.messages:>10}{msgs_10k:>10}"
            f"{r.body_bytes / KiB:>10.0f}{kib_10k:>10}{r.seconds:>10.1f}"
            f"{'<= ' + str(target):>10}"
        )
    lat = results[-1].latencies
    if lat:
        q = statistics.quantiles(lat, n=10)
        out(
            f"latency printed -> on_line over {len(lat)} lines: "
            f"median {statistics.median(lat):.2f} s, p90 {q[-1]:.2f} s, max {max(lat):.2f} s"
        )
    out(f"receiver's traced peak following {args.tasks} tasks: {results[-2].peak_kib:,.0f} KiB")


if __name__ == "__main__":
    main()
