"""Jobs unfinished at a stop are in the snapshot, and come back as a full replay brings them
back (`reconciler.sandbox.snapshot`, `job_restore.rewind`): an attempt running at the stop
fails as on a lost host, and the job's retry strategy decides; an ended attempt keeps its logs,
once. After a crash, what the journal holds beyond the snapshot decides.

Real sandbox servers in their own state directories, driven with plain boto3, as in
test_snapshot (whose fixture and helpers these are).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import manager
from reconciler.sandbox.config import COMMANDS_ENV
from reconciler.sandbox.job_run import HOST_LOST
from tests.sandbox.test_snapshot import (
    client,
    full_replay_of,
    header,
    kill,
    log_since,
    log_size,
    queue,
    recorded,
)
from tests.sandbox.test_snapshot import state_dir as state_dir_fixture

state_dir = state_dir_fixture  # test_snapshot's fixture, by the name its tests use

LOG_GROUP = "/aws/batch/job"
# Attempt 1 fails (exit 3, retried), attempt 2 is running at the stop, attempt 3 runs on.
RETRIED = (
    'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ] && exit 3; sleep 60'
)
SLEEPER = "sleep 60"


def _submit(endpoint: str) -> dict[str, str]:
    """A queue and four jobs under way: retried, single, after (dependsOn retried), array."""
    queue(endpoint, "jobs")
    batch = client(endpoint, "batch")

    def submit(name: str, command: str, **more: Any) -> str:
        overrides = {"command": ["sh", "-c", command]}
        return str(
            batch.submit_job(
                jobName=name,
                jobQueue="queue-jobs",
                jobDefinition="jd-jobs",
                containerOverrides=overrides,
                **more,
            )["jobId"]
        )

    retried = submit(
        "retried",
        RETRIED,
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onExitCode": "3", "action": "RETRY"},
            ],
        },
    )
    return {
        "retried": retried,
        "single": submit("single", SLEEPER),
        "after": submit("after", SLEEPER, dependsOn=[{"jobId": retried}]),
        "array": submit("array", SLEEPER, arrayProperties={"size": 2}),
    }


def _jobs(endpoint: str, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """DescribeJobs of the jobs and the array's children, by ID."""
    batch = client(endpoint, "batch")
    every = [*ids.values(), f"{ids['array']}:0", f"{ids['array']}:1"]
    return {j["jobId"]: j for j in batch.describe_jobs(jobs=every)["jobs"]}


def _until(
    endpoint: str, ids: dict[str, str], ready: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, dict[str, Any]]:
    """The jobs, once `ready` says so of them by name (the children: child0, child1)."""
    names = {**ids, "child0": f"{ids['array']}:0", "child1": f"{ids['array']}:1"}
    deadline = time.monotonic() + 60
    while True:
        jobs = _jobs(endpoint, ids)
        if ready({name: jobs[job_id] for name, job_id in names.items()}):
            return jobs
        assert time.monotonic() < deadline, (what, jobs)
        time.sleep(0.1)


def _running_at_the_stop(jobs: dict[str, Any]) -> bool:
    return (
        jobs["retried"]["status"] == "RUNNING"
        and len(jobs["retried"]["attempts"]) == 1  # attempt 2 runs
        and jobs["single"]["status"] == "RUNNING"
        and jobs["child0"]["status"] == jobs["child1"]["status"] == "RUNNING"
    )


def _restored(jobs: dict[str, Any]) -> bool:
    return (
        jobs["retried"]["status"] == "RUNNING"
        and len(jobs["retried"]["attempts"]) == 2  # attempt 3 runs
        and jobs["single"]["status"] == "FAILED"
        and jobs["array"]["status"] == "FAILED"
    )


def _finished(jobs: dict[str, Any]) -> bool:
    return all(job["status"] in ("SUCCEEDED", "FAILED") for job in jobs.values())


def _view(endpoint: str, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a restore decides, without the times this server's clock gave (a lost attempt's
    stop, a new attempt's start): statuses, reasons, attempts, and each attempt's log (None:
    no stream, as for an attempt whose host was lost)."""
    logs = client(endpoint, "logs")
    view: dict[str, Any] = {}
    for job_id, job in jobs.items():
        attempts = []
        for attempt in job.get("attempts", []):
            stream = attempt["container"]["logStreamName"]
            try:
                events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)
                messages: list[str] | None = [e["message"] for e in events["events"]]
            except logs.exceptions.ResourceNotFoundException:
                messages = None
            reason, code = attempt["statusReason"], attempt["container"].get("exitCode")
            attempts.append((reason, code, attempt["startedAt"], stream, messages))
        view[job_id] = (job["status"], job.get("statusReason"), job["createdAt"], attempts)
    return view


def test_jobs_under_way_at_a_stop_come_back_from_the_snapshot_as_from_a_full_replay(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(COMMANDS_ENV, "1")
    first = manager.ensure()
    ids = _submit(first.endpoint)
    _until(first.endpoint, ids, _running_at_the_stop, "the attempts to run")
    assert manager.stop()
    assert header(state_dir)["lines"] == recorded(state_dir), "no snapshot written"

    _, replayed = full_replay_of(state_dir, monkeypatch)
    from_replay = _view(replayed, _until(replayed, ids, _restored, "the full replay"))
    assert manager.stop()

    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(state_dir))
    start = log_size(state_dir)
    restored = manager.ensure()
    assert "snapshot: loaded" in log_since(state_dir, start)
    jobs = _until(restored.endpoint, ids, _restored, "the snapshot's restore")
    assert _view(restored.endpoint, jobs) == from_replay
    [failed, lost] = jobs[ids["retried"]]["attempts"]
    assert (failed["container"]["exitCode"], lost["statusReason"]) == (3, HOST_LOST)
    assert _view(restored.endpoint, jobs)[ids["retried"]][3][0][4] == ["attempt 1"]
    assert jobs[ids["after"]]["status"] == "PENDING"

    # Then the journal goes on beyond the snapshot, and the server dies (no new snapshot).
    batch = client(restored.endpoint, "batch")
    batch.terminate_job(jobId=ids["retried"], reason="done with it")
    finished = _until(restored.endpoint, ids, _finished, "every job to finish")
    kill(state_dir)
    start = log_size(state_dir)
    again = manager.ensure()
    assert "snapshot: loaded" in log_since(state_dir, start)
    assert _jobs(again.endpoint, ids) == finished  # every field, times too: all journalled
