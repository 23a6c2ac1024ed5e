"""A restart gives every recorded request the IDs it had, however requests interleaved
(reconciler.sandbox.request_streams, durability_patches), on the extended moto over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.iam.models import iam_backends
from moto.moto_api import recorder
from moto.moto_api._internal import mock_random
from moto.utilities.utils import PARTITION_NAMES

from reconciler.sandbox.durability_patches import REPLAY_HEADER
from reconciler.sandbox.seed import SEED, SEED_PATH, SEED_QUERY
from tests.conftest import client


def _post(url: str, headers: dict[str, str] | None = None) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"", headers=headers or {})).close()


@pytest.fixture
def recording(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test server, emptied, recording into a file of its own (as a new sandbox does)."""
    path = tmp_path / "recording.jsonl"
    monkeypatch.setattr(recorder, "_location", str(path))
    _post(f"{aws}/moto-api/reset")
    _post(f"{aws}/moto-api/recorder/reset-recording")
    _post(f"{aws}/moto-api/recorder/start-recording")
    try:
        yield path
    finally:
        _post(f"{aws}/moto-api/recorder/stop-recording")


def _groups(aws: str) -> dict[str, str]:
    groups = client(aws, "ec2").describe_security_groups()["SecurityGroups"]
    return {g["GroupName"]: g["GroupId"] for g in groups}


def _two_groups_with_draws_between(aws: str) -> dict[str, str]:
    ec2 = client(aws, "ec2")
    ec2.create_security_group(GroupName="first", Description="a")
    mock_random.getrandbits(4096)  # what a request served beside them drew meanwhile
    ec2.create_security_group(GroupName="second", Description="b")
    return _groups(aws)


def _restart(aws: str) -> None:
    """What a new server does with the recording (the reset is not recorded, as it is not
    made on the sandbox)."""
    _post(f"{aws}/moto-api/recorder/stop-recording")
    _post(f"{aws}/moto-api/reset")
    _post(f"{aws}/moto-api/recorder/replay-recording")


def test_a_replayed_request_draws_the_ids_it_drew_whatever_ran_beside_it(aws, recording):
    _post(f"{aws}{SEED_PATH}?{SEED_QUERY}")
    before = _two_groups_with_draws_between(aws)
    _restart(aws)
    assert _groups(aws) == before

    # The replay's mark is taken only from a replay: a client's request is recorded anyway.
    _post(f"{aws}/moto-api/recorder/start-recording")
    ec2 = client(aws, "ec2")
    ec2.meta.events.register(
        "before-sign.ec2.*", lambda request, **_: request.headers.add_header(REPLAY_HEADER, "1")
    )
    ec2.create_security_group(GroupName="kept", Description="a")
    last = json.loads(recording.read_text().splitlines()[-1])
    assert b"kept" in base64.b64decode(last["body"])


def test_a_recording_made_without_streams_replays_with_motos_shared_generator(aws, recording):
    # Made before the streams: a replay must draw as its server did, from the one generator.
    _post(f"{aws}{SEED_PATH}?a={SEED}")
    ec2 = client(aws, "ec2")
    ec2.create_security_group(GroupName="first", Description="a")
    before = _groups(aws)
    # Drawn as moto draws: its account lookup made an IAM backend in every partition.
    assert set(dict.keys(iam_backends["123456789012"])) == set(PARTITION_NAMES)
    _restart(aws)
    assert _groups(aws) == before
    assert json.loads(recording.read_text().splitlines()[0])["url"].endswith(f"?a={SEED}")
