"""moto's EC2 models imported with one botocore session (reconciler.sandbox.moto_import) know
the regions a plain import knows, and leave boto3 as it was."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
{first}
import boto3
from moto.ec2.models import availability_zones_and_regions as m
print(json.dumps({{
    "regions": sorted(r.name for r in m.RegionsAndZonesBackend.regions),
    "zones": sorted(m.RegionsAndZonesBackend.zones),
    "session_restored": boto3.Session.__module__ == "boto3.session" and m.Session is boto3.Session,
}}))
"""


def _probe(first: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(done.stdout))


def test_the_shared_session_import_knows_what_a_plain_import_knows() -> None:
    shared = _probe("from reconciler.sandbox.moto_import import import_moto_ec2; import_moto_ec2()")
    plain = _probe("")
    assert shared == plain
    assert shared["session_restored"] is True
    assert len(shared["regions"]) > 20 and "us-east-1" in shared["regions"]  # type: ignore[arg-type]
