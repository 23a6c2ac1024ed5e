"""Benchmark: how long a sandbox takes to come back with its recorded requests.

    python benchmarks/bench_restart.py [--requests 1000] [--runs 3]

Starts a sandbox in a temporary state directory, applies a stack of 30 job definitions again
and again, with a new image each time, until the recording holds at least `--requests`
requests (every request the sandbox served is recorded: an apply's reads as well as its
writes), then times `reconciler sandbox restart` `--runs` times: the old server is stopped
(writing its snapshot), a new one started, loading it (replaying only what the recording holds
after it) before the command returns. The sandbox's CPU time is the new server's (from /proc).
Then `--jobs` jobs are submitted and left RUNNING (each would run for an hour), and one more
restart is timed: the snapshot holds them, and each comes back as after a lost host (its
attempt fails with "Host EC2 ... terminated", and its retry strategy runs another). Then a
state machine of `--states` `batch:submitJob` states (a scheduled Pipeline's firing) is started
and a restart timed once its first job is submitted: the stop lets the execution end, writes
the snapshot, and each job must be there once. Then a
crash: one more apply, SIGKILL, and a timed `sandbox start` (the snapshot and the
recording's tail), and the same crash again without the snapshot (a full replay, as before
snapshots). After each, a `diff` of the last applied stack must say that nothing changed: a
faster restore that lost state would not count. The issue's target is under 2 s for 1,000
requests.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for tests.stacks, the manifest text builders the tests use
    sys.path.insert(0, str(ROOT))

from reconciler.sandbox.config import RUN_ENV  # noqa: E402
from reconciler.sandbox.job_run import HOST_LOST  # noqa: E402
from reconciler.sandbox.manager import REGION  # noqa: E402
from reconciler.sandbox.schedule_firing import SANDBOX_KEY  # noqa: E402
from tests.sandbox.test_snapshot_states import chain  # noqa: E402
from tests.stacks import ce, jd, jq, stack  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="recorded requests at least")
    parser.add_argument("--runs", type=int, default=3, help="restarts timed")
    parser.add_argument("--jobs", type=int, default=20, help="jobs running at the last restart")
    parser.add_argument("--states", type=int, default=100, help="submitJob states of a restart")
    return parser.parse_args(argv)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _recorded(directory: Path) -> int:
    recording = directory / "recording.jsonl"
    return sum(1 for _ in recording.open()) if recording.exists() else 0


def _batch(directory: Path, service: str = "batch") -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=json.loads((directory / "server.json").read_text())["endpoint"],
        region_name=REGION,
        aws_access_key_id=SANDBOX_KEY,
        aws_secret_access_key=SANDBOX_KEY,
    )


def _until(batch: Any, ids: list[str], ready: Callable[[dict[str, Any]], bool]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = [
            j
            for i in range(0, len(ids), 100)
            for j in batch.describe_jobs(jobs=ids[i : i + 100])["jobs"]
        ]
        if len(jobs) == len(ids) and all(ready(job) for job in jobs):
            return True
        time.sleep(0.2)
    return False


def _restart_with_jobs(env: dict[str, str], directory: Path, path: Path, count: int) -> bool:
    """A timed restart with `count` jobs RUNNING; True if each came back as after a lost host."""
    path.write_text(stack(ce(), jq()))
    applied = _cli(env, "apply", "-f", str(path), "--sandbox", "--yes")
    if applied.returncode != 0:
        raise SystemExit(applied.stdout + applied.stderr)
    batch = _batch(directory)
    ids = [
        batch.submit_job(jobName=f"job-{i:03d}", jobQueue="main-queue", jobDefinition="jd-00")[
            "jobId"
        ]
        for i in range(count)
    ]
    if not _until(batch, ids, lambda job: job["status"] == "RUNNING"):
        raise SystemExit("the jobs did not start")
    started = time.monotonic()
    restarted = _cli(env, "sandbox", "restart")
    wall = time.monotonic() - started
    if restarted.returncode != 0:
        raise SystemExit(restarted.stdout + restarted.stderr)
    cpu = _server_cpu(directory)
    print(
        f"restart with {count} jobs RUNNING ({_recorded(directory)} recorded requests): "
        f"{wall:.2f} s wall, server CPU {cpu:.2f} s"
    )
    lost = _until(
        _batch(directory),
        ids,
        lambda job: (
            [a["statusReason"] for a in job["attempts"]] == [HOST_LOST]
            and job["status"] in ("RUNNABLE", "STARTING", "RUNNING")
        ),
    )
    print(f"  each job's attempt failed as on a lost host, and it was retried: {lost}")
    return lost


def _restart_during_execution(env: dict[str, str], directory: Path, count: int) -> bool:
    """A timed restart while a state machine submits `count` jobs (the queue and definition of
    `_restart_with_jobs`); True if it ended and each job is there once."""
    sfn, batch = _batch(directory, "stepfunctions"), _batch(directory)
    machine = sfn.create_state_machine(
        name="dag",
        definition=chain(count, "main-queue", "jd-00", "sfn-"),
        roleArn="arn:aws:iam::123456789012:role/dag-states",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    def names() -> list[str]:
        pages = batch.get_paginator("list_jobs").paginate(
            jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": ["sfn-*"]}]
        )
        return [j["jobName"] for page in pages for j in page["jobSummaryList"]]

    while not names():
        time.sleep(0.01)
    log_start = (directory / "server.log").stat().st_size
    started = time.monotonic()
    restarted = _cli(env, "sandbox", "restart")
    wall = time.monotonic() - started
    if restarted.returncode != 0:
        raise SystemExit(restarted.stdout + restarted.stderr)
    said = (directory / "server.log").read_bytes()[log_start:].decode(errors="replace")
    sfn, batch = _batch(directory, "stepfunctions"), _batch(directory)
    status = sfn.describe_execution(executionArn=execution)["status"]
    found = names()
    once = sorted(found) == sorted(f"sfn-{i}" for i in range(count))
    loaded = "snapshot: loaded" in said
    print(
        f"restart while a state machine submits {count} jobs: {wall:.2f} s wall; execution "
        f"{status}, {len(found)} jobs ({len(set(found))} names), from the snapshot: {loaded}"
    )
    return status == "SUCCEEDED" and once and loaded


def _server_cpu(directory: Path) -> float:
    pid = json.loads((directory / "server.json").read_text())["pid"]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _timed_start_after_kill(env: dict[str, str], directory: Path) -> float:
    """Kills the server (SIGKILL: no snapshot is written) and times the next `sandbox start`."""
    pid = json.loads((directory / "server.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
        time.sleep(0.05)
    started = time.monotonic()
    done = _cli(env, "sandbox", "start")
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return time.monotonic() - started


def _unchanged(env: dict[str, str], path: Path, when: str) -> bool:
    """A `diff` of the last applied stack finds nothing to change: nothing was lost."""
    same = _cli(env, "diff", "-f", str(path), "--sandbox")
    intact = same.returncode == 0 and "No changes" in same.stdout
    print(f"{when}, diff of the last stack: {'no changes' if intact else same.stdout}")
    return intact


def _state(pid: int) -> str:
    try:
        return (
            "zombie"
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            else "alive"
        )
    except OSError:
        return "gone"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "sandbox"
        # A job runs for an hour: those of the last restart are RUNNING when it comes.
        env = {**os.environ, "RECONCILER_SANDBOX_DIR": str(directory), RUN_ENV: "3600"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        path = Path(tmp) / "stack.yaml"
        round_ = 0
        try:
            while _recorded(directory) < args.requests:
                round_ += 1
                path.write_text(
                    stack(*(jd(f"jd-{i:02d}", image=f"busybox:{round_}") for i in range(30)))
                )
                applied = _cli(env, "apply", "-f", str(path), "--sandbox", "--yes")
                if applied.returncode != 0:
                    print(applied.stdout + applied.stderr)
                    return 1
            recorded = _recorded(directory)
            print(f"{recorded} recorded requests ({round_} applies of 30 job definitions)")
            walls, cpus = [], []
            for run in range(args.runs):
                started = time.monotonic()
                restarted = _cli(env, "sandbox", "restart")
                wall = time.monotonic() - started
                if restarted.returncode != 0:
                    print(restarted.stdout + restarted.stderr)
                    return 1
                cpu = _server_cpu(directory)
                walls.append(wall)
                cpus.append(cpu)
                print(f"restart {run + 1}: {wall:.2f} s wall, server CPU {cpu:.2f} s")
            restarted = _unchanged(env, path, "after the restarts")
            jobs_path = Path(tmp) / "queue.yaml"
            with_jobs = _restart_with_jobs(env, directory, jobs_path, args.jobs)
            executed = _restart_during_execution(env, directory, args.states)
            # A crash (SIGKILL) after more requests: the last snapshot plus the recording's tail.
            round_ += 1
            path.write_text(
                stack(*(jd(f"jd-{i:02d}", image=f"busybox:{round_}") for i in range(30)))
            )
            applied = _cli(env, "apply", "-f", str(path), "--sandbox", "--yes")
            if applied.returncode != 0:
                print(applied.stdout + applied.stderr)
                return 1
            tail = _recorded(directory) - recorded
            crash = _timed_start_after_kill(env, directory)
            print(f"crash, then start: {crash:.2f} s wall ({tail} requests after the snapshot)")
            intact = _unchanged(env, path, "after the snapshot and the tail")
            # The same crash without a snapshot: the whole recording replayed, as before.
            (directory / "snapshot.pickle").unlink(missing_ok=True)
            full = _timed_start_after_kill(env, directory)
            print(f"crash, then start without a snapshot: {full:.2f} s wall (full replay)")
            replayed = _unchanged(env, path, "after the full replay")
            for line in (directory / "server.log").read_text(errors="replace").splitlines():
                if "sandbox snapshot" in line:
                    print(f"  server: {line}")
            best = min(walls)
            print(
                f"best of {args.runs}: {best:.2f} s wall for {recorded} requests "
                "(target: under 2 s for 1,000)"
            )
            return 0 if restarted and with_jobs and executed and intact and replayed else 1
        finally:
            _cli(env, "sandbox", "stop")


if __name__ == "__main__":
    raise SystemExit(main())
