"""A stopped sandbox snapshots its state, and the next one loads it instead of replaying the
whole recording (`reconciler.sandbox.snapshot`); after a crash it replays only the tail.

Real sandbox servers (`manager.ensure`, their own state directories), driven with plain boto3.
What a restored account holds is compared with what the same recording gives by a full replay
(a copy of the state directory without the snapshot), down to the IDs moto draws next.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from reconciler.sandbox import manager, server_process, snapshot
from reconciler.sandbox.config import PENDING_ENV, RUN_ENV, STEP_ENV

DONE = ("SUCCEEDED", "FAILED")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "sandbox"
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(directory))
    monkeypatch.setenv(STEP_ENV, "0.05")
    monkeypatch.setenv(RUN_ENV, "0.1")
    monkeypatch.setenv(PENDING_ENV, "0.1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    yield directory
    manager.stop()


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=manager.REGION,
        aws_access_key_id="user",
        aws_secret_access_key="user",
    )


def queue(endpoint: str, tag: str) -> None:
    """A compute environment `ce-TAG`, its queue `queue-TAG` and a definition `jd-TAG`."""
    batch, ec2 = client(endpoint, "batch"), client(endpoint, "ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    batch.create_compute_environment(
        computeEnvironmentName=f"ce-{tag}",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "subnets": subnets,
            "instanceRole": "ecsInstanceRole",
        },
    )
    batch.create_job_queue(
        jobQueueName=f"queue-{tag}",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": f"ce-{tag}"}],
    )
    batch.register_job_definition(
        jobDefinitionName=f"jd-{tag}",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128},
    )


def populate(endpoint: str, tag: str) -> list[str]:
    """Buckets and objects, a compute environment, a queue, a definition, a finished job, a
    running instance and a VPC; the IDs of the jobs submitted."""
    s3, batch, ec2 = (client(endpoint, s) for s in ("s3", "batch", "ec2"))
    s3.create_bucket(Bucket=f"bucket-{tag}")
    s3.put_object(Bucket=f"bucket-{tag}", Key="a/b.txt", Body=f"hello {tag}".encode())
    queue(endpoint, tag)
    job = batch.submit_job(jobName=f"job-{tag}", jobQueue=f"queue-{tag}", jobDefinition=f"jd-{tag}")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    ec2.create_vpc(CidrBlock="10.1.0.0/16")
    deadline = time.monotonic() + 30
    while True:  # nothing is left under way: the job finished, the instance runs
        [seen] = batch.describe_jobs(jobs=[job["jobId"]])["jobs"]
        [[found]] = [
            r["Instances"]
            for r in ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"]
        ]
        if seen["status"] in DONE and found["State"]["Name"] == "running":
            return [job["jobId"]]
        assert time.monotonic() < deadline, (seen["status"], found["State"])
        time.sleep(0.05)


def account(endpoint: str, jobs: list[str]) -> dict[str, Any]:
    """What the account holds, as its API shows it."""
    s3, batch, ec2 = (client(endpoint, s) for s in ("s3", "batch", "ec2"))
    buckets = {}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        listed = s3.list_objects_v2(Bucket=name).get("Contents", [])
        buckets[name] = {
            o["Key"]: (o["ETag"], s3.get_object(Bucket=name, Key=o["Key"])["Body"].read())
            for o in listed
        }
    described = batch.describe_jobs(jobs=jobs)["jobs"] if jobs else []
    instances = {
        i["InstanceId"]: (i["State"]["Name"], i["ImageId"], i.get("StateReason", {}).get("Code"))
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    return {
        "buckets": buckets,
        "definitions": sorted(
            (d["jobDefinitionArn"], d["status"], d["containerProperties"]["image"])
            for d in batch.describe_job_definitions()["jobDefinitions"]
        ),
        "environments": sorted(
            (c["computeEnvironmentArn"], c["status"], c["state"])
            for c in batch.describe_compute_environments()["computeEnvironments"]
        ),
        "queues": sorted(
            (q["jobQueueArn"], q["status"], q["state"])
            for q in batch.describe_job_queues()["jobQueues"]
        ),
        "jobs": {
            j["jobId"]: {k: v for k, v in j.items() if k != "ResponseMetadata"} for j in described
        },
        "instances": instances,
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]),
        "groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
    }


def drawn_next(endpoint: str) -> list[str]:
    """IDs moto draws from its seeded generator for what is created next."""
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="next", Description="d", VpcId=vpc)["GroupId"]
    return [vpc, subnet, group]


def log_since(directory: Path, start: int) -> str:
    return (directory / manager.SERVER_LOG).read_bytes()[start:].decode(errors="replace")


def log_size(directory: Path) -> int:
    path = directory / manager.SERVER_LOG
    return path.stat().st_size if path.exists() else 0


def recorded(directory: Path) -> int:
    return len((directory / manager.RECORDING).read_bytes().splitlines())


def header(directory: Path) -> dict[str, Any]:
    with (directory / snapshot.SNAPSHOT).open("rb") as handle:
        return dict(json.loads(handle.readline()))


def full_replay_of(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A copy of the (stopped) sandbox's state without its snapshot, started: a full replay."""
    copy = directory.with_name("replayed")
    shutil.copytree(directory, copy)
    (copy / snapshot.SNAPSHOT).unlink(missing_ok=True)
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(copy))
    started = manager.ensure()
    assert started.started == "restored"
    assert "snapshot: loaded" not in log_since(copy, 0)
    return copy, started.endpoint


def kill(directory: Path) -> None:
    """The server dies at once (SIGKILL): no snapshot is written."""
    pid = manager.status()["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager.status()["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_restart_after_a_clean_stop_loads_the_snapshot_and_keeps_everything(
    state_dir: Path,
) -> None:
    first = manager.ensure()
    jobs = populate(first.endpoint, "one")
    before = account(first.endpoint, jobs)
    assert manager.stop()
    assert header(state_dir)["lines"] == recorded(state_dir)  # it covers the whole recording

    start = log_size(state_dir)
    restored = manager.ensure()
    assert restored.started == "restored"
    said = log_since(state_dir, start)
    assert f"snapshot: loaded, {recorded(state_dir)} requests (" in said, said
    assert account(restored.endpoint, jobs) == before
    # Written again at the next stop, covering what was recorded since.
    ids = drawn_next(restored.endpoint)
    assert manager.stop()
    assert header(state_dir)["lines"] == recorded(state_dir)
    again = manager.ensure()
    after = account(again.endpoint, jobs)
    assert ids[0] in after["vpcs"] and ids[2] in after["groups"]


def test_the_ids_drawn_after_a_snapshot_restore_are_those_of_a_full_replay(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = manager.ensure()
    jobs = populate(first.endpoint, "one")
    assert manager.stop()
    _, replayed = full_replay_of(state_dir, monkeypatch)
    from_replay = account(replayed, jobs)
    replay_ids = drawn_next(replayed)
    assert manager.stop()

    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(state_dir))
    restored = manager.ensure()
    assert "snapshot: loaded" in log_since(state_dir, 0)
    assert account(restored.endpoint, jobs) == from_replay
    assert drawn_next(restored.endpoint) == replay_ids


def test_a_crash_after_a_snapshot_restores_the_requests_made_since(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = manager.ensure()
    jobs = populate(first.endpoint, "one")
    assert manager.stop()
    covered = header(state_dir)["lines"]
    second = manager.ensure()
    jobs += populate(second.endpoint, "two")  # recorded, not in the snapshot
    before = account(second.endpoint, jobs)
    kill(state_dir)
    assert header(state_dir)["lines"] == covered < recorded(state_dir)

    start = log_size(state_dir)
    restored = manager.ensure()
    assert restored.started == "restored"
    assert f"snapshot: loaded, {covered} requests (" in log_since(state_dir, start)
    assert account(restored.endpoint, jobs) == before
    ids = drawn_next(restored.endpoint)
    kill(state_dir)  # the snapshot stays the first one; the recording holds the new IDs too

    # What the recording alone gives: the same account, the same IDs.
    (state_dir / snapshot.SNAPSHOT).unlink()
    monkeypatch.setenv("RECONCILER_SANDBOX_DIR", str(state_dir))
    replayed = manager.ensure()
    assert "full replay" not in log_since(state_dir, start)  # no snapshot: nothing to doubt
    after = account(replayed.endpoint, jobs)
    assert {k: v for k, v in after.items() if k not in ("vpcs", "groups")} == {
        k: v for k, v in before.items() if k not in ("vpcs", "groups")
    }
    assert ids[0] in after["vpcs"] and ids[2] in after["groups"]


def test_a_server_whose_replay_never_came_leaves_the_snapshot_as_it_was(state_dir: Path) -> None:
    first = manager.ensure()
    populate(first.endpoint, "one")
    assert manager.stop()
    written = (state_dir / snapshot.SNAPSHOT).read_bytes()
    second = manager.ensure()
    client(second.endpoint, "s3").create_bucket(Bucket="after-the-snapshot")
    kill(state_dir)

    # Started (it loads the snapshot) but stopped before the manager had it replay the tail:
    # a snapshot now would stand for requests it never applied.
    start = log_size(state_dir)
    endpoint, proc = server_process.launch(state_dir, {})
    server_process.await_up(state_dir, endpoint, proc)
    server_process.terminate(proc)
    assert (state_dir / snapshot.SNAPSHOT).read_bytes() == written
    assert "not written (the recording not restored)" in log_since(state_dir, start)
    restored = manager.ensure()
    assert "after-the-snapshot" in account(restored.endpoint, [])["buckets"]


@pytest.mark.parametrize(
    "damage", ["truncated", "garbled", "other-moto", "other-recording", "unloadable"]
)
def test_a_damaged_snapshot_falls_back_to_the_full_replay(state_dir: Path, damage: str) -> None:
    first = manager.ensure()
    jobs = populate(first.endpoint, "one")
    before = account(first.endpoint, jobs)
    assert manager.stop()
    path = state_dir / snapshot.SNAPSHOT
    data = path.read_bytes()
    head, body = data.split(b"\n", 1)
    fields = json.loads(head)
    if damage == "truncated":
        path.write_bytes(data[: len(head) + 1 + len(body) // 2])
    elif damage == "garbled":
        middle = len(body) // 2
        path.write_bytes(head + b"\n" + body[:middle] + b"\xff" * 64 + body[middle + 64 :])
    elif damage == "other-moto":
        path.write_bytes(json.dumps({**fields, "moto": "0.0.1"}).encode() + b"\n" + body)
    elif damage == "other-recording":
        path.write_bytes(json.dumps({**fields, "sha256": "0" * 64}).encode() + b"\n" + body)
    else:  # intact, but not what this code can load (a class changed): a fresh process replays
        regions = pickle.loads(body)  # the first of the two pickles
        body = pickle.dumps(regions) + pickle.dumps({"not": "a state"})
        fields["body"] = hashlib.sha256(body).hexdigest()
        path.write_bytes(json.dumps(fields).encode() + b"\n" + body)

    start = log_size(state_dir)
    restored = manager.ensure()  # no traceback for the user: the recording decides
    assert restored.started == "restored"
    said = log_since(state_dir, start)
    assert "full replay" in said and "snapshot: loaded" not in said, said
    assert account(restored.endpoint, jobs) == before
    assert (state_dir / snapshot.UNUSABLE).exists() == (damage == "unloadable")
    assert not (state_dir / snapshot.SNAPSHOT).exists() or damage != "unloadable"


def test_reset_discards_the_snapshot_and_a_write_what_a_killed_one_left(state_dir: Path) -> None:
    manager.ensure()
    assert manager.stop()
    assert (state_dir / snapshot.SNAPSHOT).exists()
    manager.reset()
    assert not (state_dir / snapshot.SNAPSHOT).exists()
    assert manager.ensure().started == "new"
    leftover = state_dir / f".{snapshot.SNAPSHOT}.1234.tmp"  # a server killed while writing
    leftover.write_bytes(b"partial")
    assert manager.stop()
    assert (state_dir / snapshot.SNAPSHOT).exists() and not leftover.exists()


def test_covered_hashes_the_prefix_it_is_asked_for(tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    recording.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    whole = snapshot.covered(recording)
    assert (whole.offset, whole.lines) == (18, 2)
    recording.write_bytes(recording.read_bytes() + b'{"c": 3}\n')
    assert snapshot.covered(recording, 18) == whole
    assert snapshot.covered(recording).lines == 3
    assert snapshot.covered(tmp_path / "missing.jsonl", 18).offset == 0
