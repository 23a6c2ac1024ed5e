"""moto's EC2 models imported with one botocore session, and from the import cache
(reconciler.sandbox.moto_import), know what a plain import knows, and leave boto3 and moto's
loader as they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import hashlib, json, sys
{first}
import boto3
import moto.utilities.utils as utils
from moto.ec2.models import amis, availability_zones_and_regions as zones, instance_types as types

ZONES = zones.RegionsAndZonesBackend.zones

def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()

print(json.dumps({{
    "regions": sorted(r.name for r in zones.RegionsAndZonesBackend.regions),
    "zones": digest({{k: [z.name for z in v] for k, v in ZONES.items()}}),
    "types": digest(types.INSTANCE_TYPES),
    # Before anything reads them: regions whose offerings are still pickled.
    "deferred": sum(
        offerings is None
        for regions in types.INSTANCE_TYPE_OFFERINGS.values()
        for offerings in dict.values(regions)
    ),
    "offerings": digest(types.INSTANCE_TYPE_OFFERINGS),
    "amis": digest(amis.AMIS),
    "restored": [
        boto3.Session.__module__ == "boto3.session" and zones.Session is boto3.Session,
        types.load_resource is utils.load_resource and amis.load_resource is utils.load_resource,
    ],
}}))
"""


def _probe(first: str, deferred: bool = False) -> dict[str, object]:
    """What the import knows; `deferred`: some offerings are to be unpickled at first use."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    known = dict(json.loads(done.stdout))
    assert (known.pop("deferred") > 0) == deferred
    return known


def _with(cache: Path | None) -> str:
    where = "None" if cache is None else f"Path({str(cache)!r})"
    return (
        "from pathlib import Path\n"
        "from reconciler.sandbox.moto_import import import_moto_ec2\n"
        f"import_moto_ec2({where})"
    )


def test_the_shared_session_and_the_cache_know_what_a_plain_import_knows(tmp_path: Path) -> None:
    plain = _probe("")
    assert len(plain["regions"]) > 20 and "us-east-1" in plain["regions"]  # type: ignore[arg-type,operator]
    cache = tmp_path / "moto-import.pickle"
    assert _probe(_with(None)) == plain
    assert _probe(_with(cache)) == plain  # cold: writes the cache
    assert cache.stat().st_size > 1_000_000
    written = cache.read_bytes()
    assert _probe(_with(cache), deferred=True) == plain  # warm: answers from it
    assert cache.read_bytes() == written, "nothing asked that the cache did not hold"
    assert plain["restored"] == [True, True]


def test_a_damaged_cache_is_an_import_without_one(tmp_path: Path) -> None:
    cache = tmp_path / "moto-import.pickle"
    cache.write_bytes(b"\x80\x05not a pickle")
    plain = _probe("")
    assert _probe(_with(cache)) == plain
    assert cache.read_bytes() != b"\x80\x05not a pickle", "rewritten after the cold import"
