"""Benchmark: the CLI following many concurrent EC2 tasks on the sandbox.

    python benchmarks/bench_ec2_tasks.py [--tasks 10 50 100] [--lines 200]

For each N, a Pipeline of N independent EC2 tasks, each printing `--lines` lines over about a
second, is applied to a fresh sandbox (its own directory; the sandbox really runs each
instance's user data and agent as local processes). Prints, per N: the apply's wall time, the
CLI's peak RSS (VmHWM, through peak_rss.py), its AWS calls and writes (`--stats`), calls per
task, and whether every line of every task was printed, in order. The target (issue #11): the
CLI's memory stays flat in N (it holds a tail per task, not the output), and the calls grow
with N only by the launches and the output's messages (the run's reads are batched: one
DescribeInstances per step for all its instances).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"^  (\w+:\w+): (\d+)$", re.M)
SCRIPT = 'for i in $(seq {lines}); do echo "line $i"; done; sleep 1; echo done'


def manifest(tasks: int, lines: int) -> str:
    body = "\n".join(
        f"  - name: t{i}\n"
        "    ec2: {instanceType: t3.micro, image: {owners: [amazon], name: amzn2-ami-hvm-*}}\n"
        f"    script: '{SCRIPT.format(lines=lines)}'"
        for i in range(tasks)
    )
    return (
        "apiVersion: reconciler.io/v1alpha1\nkind: Pipeline\nmetadata: {name: many}\n"
        f"spec:\n  tasks:\n{body}\n"
    )


def run(tasks: int, lines: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "RECONCILER_SANDBOX_DIR": str(Path(tmp) / "sandbox"),
            "PYTHONPATH": str(ROOT),
        }
        path = Path(tmp) / "many.yaml"
        path.write_text(manifest(tasks, lines))
        cli = [sys.executable, "-m", "reconciler"]
        subprocess.run([*cli, "sandbox", "start"], env=env, check=True, capture_output=True)
        try:
            rss = Path(tmp) / "rss"
            started = time.perf_counter()
            peak = [sys.executable, str(ROOT / "benchmarks" / "peak_rss.py"), str(rss), "-m"]
            done = subprocess.run(
                [*peak, "reconciler", "apply", "-f", str(path), "--sandbox", "--yes", "--stats"],
                env=env,
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            wall = time.perf_counter() - started
        finally:
            subprocess.run([*cli, "sandbox", "stop"], env=env, capture_output=True)
        calls = {m.group(1): int(m.group(2)) for m in CALL.finditer(done.stderr)}
        writes = sum(
            n
            for k, n in calls.items()
            if not k.split(":")[1].startswith(("Describe", "List", "Get"))
        )
        complete = all(
            [
                line.split(": ", 1)[1]
                for line in done.stdout.splitlines()
                if line.startswith(f"many/t{i}: ")
            ]
            == [*(f"line {j}" for j in range(1, lines + 1)), "done"]
            for i in range(tasks)
        )
        return {
            "tasks": tasks,
            "code": done.returncode,
            "wall s": round(wall, 1),
            "peak MiB": round(int(rss.read_text()) / 1024, 1) if rss.exists() else None,
            "calls": sum(calls.values()),
            "writes": writes,
            "calls/task": round(sum(calls.values()) / tasks, 1),
            "RunInstances": calls.get("ec2:RunInstances", 0),
            "DescribeInstances": calls.get("ec2:DescribeInstances", 0),
            "ReceiveMessage": calls.get("sqs:ReceiveMessage", 0),
            "all lines in order": complete,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args(argv)
    rows = [run(n, args.lines) for n in args.tasks]
    heads = list(rows[0])
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in heads) + " |")


if __name__ == "__main__":
    main()
