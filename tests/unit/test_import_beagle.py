"""`reconciler import beagle`: a batchbeagle stack converted into our manifests, field for field
as batchbeagle 0.2.0 sends them to AWS; what cannot be converted is an error at its line, what
batchbeagle itself ignores is left out with a warning. No AWS call."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from benchmarks import bench_peer
from benchmarks.bench_stack import Shape
from reconciler import cli
from reconciler.errors import ManifestError
from reconciler.manifests import load_resources
from reconciler.manifests.beagle import command_of, convert

ROOT = Path(__file__).resolve().parents[2]
# batchbeagle 0.2.0 itself, where `python benchmarks/bench_peer.py` installed it.
PEER_PYTHON = ROOT / "benchmarks" / ".peer" / "venv" / "bin" / "python"
# The request bodies batchbeagle's own classes render for a stack (what `assemble` sends).
PEER_RENDER = """
import json, sys, yaml
from batchbeagle.aws.batch import ComputeEnvironment, JobDefinition, Queue
stack = yaml.safe_load(open(sys.argv[1]))
out = {}
for section, cls in (("compute_environments", ComputeEnvironment), ("queues", Queue),
                     ("job_definitions", JobDefinition)):
    for entry in stack.get(section) or []:
        out[entry["name"]] = cls(entry).render()
print(json.dumps(out, default=str))
"""
NAME_KEYS = ("computeEnvironmentName", "jobQueueName", "jobDefinitionName")

# The seed's poller and processor services, as batch-deployment's stack files write them.
SEED_STACK = """\
compute_environments:
  - name: poller-ce
    type: managed
    state: enabled
    serviceRole: arn:aws:iam::123456789012:role/service-role/AWSBatchServiceRole
    compute_resources:
      type: spot
      minvCpus: 0
      maxvCpus: 16
      desiredvCpus: ''
      instanceTypes: [optimal]
      instanceRole: arn:aws:iam::123456789012:instance-profile/ecsInstanceRole
      subnets: [subnet-0a1b2c3d]
      securityGroupIds: [sg-0a1b2c3d]
      bidPercentage: 60
      spotIamFleetRole: arn:aws:iam::123456789012:role/AmazonEC2SpotFleetRole
      tags: {Name: poller-worker}
  - name: processor-ce
    type: MANAGED
    serviceRole: ''
    compute_resources:
      type: EC2
      minvCpus: 0
      maxvCpus: 256
      instanceTypes: [c5, m5]
      instanceRole: ecsInstanceRole
      subnets: [subnet-0a1b2c3d, subnet-4e5f6a7b]
      securityGroupIds: [sg-0a1b2c3d]
      ec2KeyPair: ops
queues:
  - name: poller-queue
    state: enabled
    priority: 10
    compute_environments:
      - {name: poller-ce, order: 1}
  - name: processor-queue
    state: ENABLED
    priority: 500
    compute_environments:
      - {name: processor-ce, order: 1}
      - {name: poller-ce, order: 2}
job_definitions:
  - name: poller-def
    container:
      image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/poller:1.4.2
      memory: 512
      vcpus: 1
      command: python poll.py --since ${since}
      jobRoleArn: arn:aws:iam::123456789012:role/BatchJobRole
      environment:
        - {name: STAGE, value: prod}
      volumes:
        - {name: scratch, host: {sourcePath: /scratch}}
      mountPoints:
        - {containerPath: /scratch, readOnly: false, sourceVolume: scratch}
      ulimits:
        - {name: nofile, hardLimit: 4096, softLimit: 1024}
      privileged: false
    parameters: {since: 1h}
    retryStrategy: {attempts: 2}
  - name: processor-def
    container:
      image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/processor:1.4.2
      memory: 2048
      vcpus: 2
"""


def _write(tmp_path: Path, text: str, name: str = "stack.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs}


def test_the_seeds_stack_converts_field_for_field(tmp_path: Path) -> None:
    converted = convert(_write(tmp_path, SEED_STACK))
    docs = _by_name(converted.documents)
    assert [d["kind"] for d in converted.documents] == [
        "ComputeEnvironment",
        "ComputeEnvironment",
        "JobQueue",
        "JobQueue",
        "JobDefinition",
        "JobDefinition",
    ]
    poller = docs["poller-ce"]["spec"]
    assert poller["type"] == "MANAGED" and poller["state"] == "ENABLED"
    assert poller["serviceRole"].endswith("role/service-role/AWSBatchServiceRole")
    cr = poller["computeResources"]
    assert cr["type"] == "SPOT" and cr["bidPercentage"] == 60
    assert cr["spotIamFleetRole"].endswith("AmazonEC2SpotFleetRole")
    assert cr["tags"] == {"Name": "poller-worker"}
    assert "desiredvCpus" not in cr  # '' is not sent by batchbeagle
    processor = docs["processor-ce"]["spec"]
    assert "serviceRole" not in processor  # '': the service-linked role
    assert processor["computeResources"]["ec2KeyPair"] == "ops"
    assert docs["processor-queue"]["spec"] == {
        "priority": 500,
        "state": "ENABLED",
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": "processor-ce"},
            {"order": 2, "computeEnvironment": "poller-ce"},
        ],
    }
    poller_def = docs["poller-def"]["spec"]
    props = poller_def["containerProperties"]
    assert props["command"] == ["python", "poll.py", "--since", "Ref::since"]
    assert props["environment"] == [{"name": "STAGE", "value": "prod"}]
    assert props["volumes"] == [{"name": "scratch", "host": {"sourcePath": "/scratch"}}]
    assert props["ulimits"][0]["name"] == "nofile" and props["privileged"] is False
    assert (
        poller_def["parameters"] == {"since": "1h"} and poller_def["retryStrategy"]["attempts"] == 2
    )
    assert "command" not in docs["processor-def"]["spec"]["containerProperties"]
    assert converted.warnings == []
    assert len(converted.declared.resources) == 6


def test_the_output_is_what_validate_and_apply_read(tmp_path: Path, capsys) -> None:
    stack_file = _write(tmp_path, SEED_STACK)
    assert cli.main(["import", "beagle", stack_file]) == 0
    out = capsys.readouterr().out
    manifests = tmp_path / "out.yaml"
    manifests.write_text(out)
    declared = load_resources([str(manifests)])
    assert sorted(r.name for r in declared.resources) == sorted(
        [
            "poller-ce",
            "processor-ce",
            "poller-queue",
            "processor-queue",
            "poller-def",
            "processor-def",
        ]
    )

    into = tmp_path / "manifests"
    assert cli.main(["import", "beagle", stack_file, "-o", str(into)]) == 0
    files = sorted(p.name for p in into.iterdir())
    assert files[0] == "computeenvironment-poller-ce.yaml" and len(files) == 6
    assert len(load_resources([str(into)]).resources) == 6


def test_the_benchmarks_peer_stack_converts_to_what_the_reconciler_declares(tmp_path: Path) -> None:
    """The stack `benchmarks/bench_peer.py` gives batchbeagle is, field for field, the one
    the reconciler applies there: converted, it holds the same resources and values."""
    account = bench_peer.Account("123456789012", ["subnet-0a", "subnet-0b"], ["sg-0a"])
    shape = Shape.of(30)
    text = json.dumps(bench_peer.beagle_stack(shape, account))  # JSON is YAML
    converted = convert(_write(tmp_path, text))
    kinds = [d["kind"] for d in converted.documents]
    assert kinds.count("ComputeEnvironment") == shape.ce
    assert kinds.count("JobQueue") == shape.jq
    assert kinds.count("JobDefinition") == shape.jd
    docs = _by_name(converted.documents)
    ce = docs["ce-001"]["spec"]["computeResources"]
    assert ce["maxvCpus"] == 32 and ce["subnets"] == ["subnet-0a", "subnet-0b"]
    assert ce["instanceRole"] == account.instance_profile("ecsInstanceRole")
    jd = docs["jd-005"]["spec"]
    assert jd["containerProperties"]["image"] == "busybox:1.5"
    assert jd["containerProperties"]["jobRoleArn"] == account.role("BatchJobRole")
    assert jd["retryStrategy"] == {"attempts": 2}


@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="batchbeagle not installed (bench_peer.py)")
def test_field_for_field_what_batchbeagle_itself_sends(tmp_path: Path) -> None:
    """Our spec of each resource is the request body batchbeagle renders for it, but for the
    name (metadata.name) and the queue's environment ARNs (which batchbeagle looks up in AWS;
    ours name the environments)."""
    path = _write(tmp_path, SEED_STACK)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    rendered = subprocess.run(
        [str(PEER_PYTHON), "-c", PEER_RENDER, path],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    theirs = json.loads(rendered.stdout)
    ours = {d["metadata"]["name"]: d["spec"] for d in convert(path).documents}
    assert set(ours) == set(theirs)
    for name, body in theirs.items():
        body = {k: v for k, v in body.items() if k not in NAME_KEYS}
        spec = dict(ours[name])
        if "computeEnvironmentOrder" in spec:
            spec["computeEnvironmentOrder"] = [
                {"order": e["order"]} for e in spec["computeEnvironmentOrder"]
            ]
        assert spec == body, name


def test_what_batchbeagle_ignores_is_left_out_with_a_warning(tmp_path: Path) -> None:
    text = """\
compute_environments:
  - name: ce-a
    type: MANAGED
    serviceRole: ''
    compute_resources:
      type: EC2
      minvCpus: 0
      maxvCpus: 4
      instanceTypes: [optimal]
      instanceRole: ecsInstanceRole
      subnets: [subnet-0a]
      securityGroupIds: [sg-0a]
      bidPercentage: 50
      allocationStrategy: BEST_FIT_PROGRESSIVE
  - name: ce-u
    type: unmanaged
    serviceRole: ''
    compute_resources: {type: EC2}
"""
    converted = convert(_write(tmp_path, text))
    cr = _by_name(converted.documents)["ce-a"]["spec"]["computeResources"]
    assert "bidPercentage" not in cr and "allocationStrategy" not in cr
    assert "computeResources" not in _by_name(converted.documents)["ce-u"]["spec"]
    lines = [str(w) for w in converted.warnings]
    assert any(
        line.startswith(f"{tmp_path}/stack.yml:13: ComputeEnvironment/ce-a:")
        and "SPOT only" in line
        for line in lines
    ), lines
    assert any(":14: " in line and "batchbeagle ignores this key" in line for line in lines)
    assert any(":18: " in line and "UNMANAGED" in line for line in lines)


def test_what_cannot_be_converted_is_an_error_at_its_line_all_at_once(
    tmp_path: Path, capsys
) -> None:
    text = """\
compute_environments:
  - name: ce-a
    type: MANAGED
    serviceRole: ''
queues:
  - name: q
    state: ENABLED
    priority: 1
    compute_environments:
      - {name: elsewhere, order: 1}
  - name: q2
    state: ENABLED
    priority: 2000
    compute_environments: []
job_definitions:
  - name: jd-a
    container: {image: busybox, memory: 512}
  - name: jd-b
services:
  - name: x
"""
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        convert(path)
    shown = [str(p) for p in caught.value.problems]
    expected = [
        f"{path}:2: ComputeEnvironment/ce-a: compute_environments.0: compute_resources: required",
        f"{path}:6: JobQueue/q: spec.computeEnvironmentOrder.0.computeEnvironment: refers to "
        "unknown ComputeEnvironment 'elsewhere'",
        f"{path}:11: JobQueue/q2: spec.priority: Input should be less than or equal to 1000",
        f"{path}:16: JobDefinition/jd-a: spec.containerProperties: give vcpus",
        f"{path}:18: JobDefinition/jd-b: job_definitions.1: container: required",
        f"{path}:19: services: not a batchbeagle section",
    ]
    for want in expected:
        assert any(s.startswith(want) for s in shown), (want, shown)
    assert len(shown) == len(expected) + 1, shown  # q2's empty order too; each problem once

    assert cli.main(["import", "beagle", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert "error(s); nothing was sent to AWS." in captured.err


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "a batchbeagle stack is one YAML mapping of sections"),
        ("- a\n- b\n", "a batchbeagle stack is one YAML mapping of sections"),
        ("queues: {name: q}\n", "must be a list of entries"),
        ("queues:\n  - priority: 1\n", "each entry needs a name"),
        ("queues: [\n", "invalid YAML"),
    ],
)
def test_a_file_that_is_no_stack(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        convert(_write(tmp_path, text))
    assert message in str(caught.value)


def test_a_missing_file_is_one_error_line(tmp_path: Path, capsys) -> None:
    assert cli.main(["import", "beagle", str(tmp_path / "nope.yml")]) == 1
    assert "nope.yml" in capsys.readouterr().err


def test_commands_as_batchbeagle_splits_them() -> None:
    assert command_of("echo ${a} b") == ["echo", "Ref::a", "b"]
    assert command_of("  run   --fast ") == ["run", "--fast"]
    assert command_of(["already", "a", "list"]) == ["already", "a", "list"]


def test_yaml_round_trip_of_the_output(tmp_path: Path, capsys) -> None:
    assert cli.main(["import", "beagle", _write(tmp_path, SEED_STACK)]) == 0
    docs = list(YAML(typ="safe").load_all(capsys.readouterr().out))
    assert all(d["apiVersion"] == "reconciler.io/v1alpha1" for d in docs)
