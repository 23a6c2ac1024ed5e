"""`reconciler export`: manifests of existing resources, owned or not, so that adopting what
was made by hand is one command. Resources are made with plain boto3, as another client
would; then `export ... > f.yaml && apply -f f.yaml --adopt` must change tags only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import client, tags_of
from tests.stacks import ce, jq, stack

OWNERSHIP = ("reconciler.io/managed-by", "reconciler.io/stack", "reconciler.io/name")


@pytest.fixture
def by_hand(aws: str) -> dict[str, str]:
    """A compute environment, a queue on it, a job definition and a scheduling policy,
    made by hand; name -> ARN."""
    batch, ec2 = client(aws), client(aws, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = [
        s["SubnetId"]
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]
    ][:2]
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    arns = {}
    arns["hand-ce"] = batch.create_compute_environment(
        computeEnvironmentName="hand-ce",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 8,
            "instanceTypes": ["optimal"],
            "subnets": subnets,
            "securityGroupIds": [g["GroupId"] for g in groups],
            "instanceRole": "ecsInstanceRole",
        },
        tags={"team": "x"},
    )["computeEnvironmentArn"]
    arns["hand-q"] = batch.create_job_queue(
        jobQueueName="hand-q",
        priority=5,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "hand-ce"}],
    )["jobQueueArn"]
    arns["hand-jd"] = batch.register_job_definition(
        jobDefinitionName="hand-jd",
        type="container",
        containerProperties={
            "image": "busybox:1",
            "vcpus": 1,
            "memory": 256,
            "command": ["echo", "Ref::word"],
            "environment": [{"name": "MODE", "value": "fast"}],
        },
        parameters={"word": "hi"},
        retryStrategy={"attempts": 3},
        tags={"team": "x"},
    )["jobDefinitionArn"]
    arns["hand-sp"] = batch.create_scheduling_policy(
        name="hand-sp",
        fairsharePolicy={
            "shareDecaySeconds": 600,
            "shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1.0}],
        },
    )["arn"]
    return arns


def _docs(text: str) -> list[dict[str, Any]]:
    return list(YAML(typ="safe").load_all(text))


def _only_tags_change(plan_json: str) -> list[dict[str, Any]]:
    actions = json.loads(plan_json)["actions"]
    for a in actions:
        assert a["action"] in ("adopt", "update"), a
        assert {c["path"] for c in a["changes"]} == {"tags"}, a
    return actions


def test_export_then_adopt_changes_tags_only(run, write, aws, by_hand):
    exported = run("export", "computeenvironments/hand-ce")
    assert exported.code == 0, exported.err
    assert exported.writes == 0
    [doc] = _docs(exported.out)
    assert doc["kind"] == "ComputeEnvironment" and doc["metadata"] == {
        "name": "hand-ce",
        "labels": {"team": "x"},
    }
    path = write(exported.out, "ce.yaml")

    plan = run("diff", "-f", path, "--adopt", "-o", "json")
    assert plan.code == 2, plan.out + plan.err
    [action] = _only_tags_change(plan.out)
    assert action["action"] == "adopt"

    adopted = run("apply", "-f", path, "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert adopted.calls.get("batch:UpdateComputeEnvironment", 0) == 0
    assert adopted.calls.get("batch:TagResource") == 1
    tags = tags_of(aws, by_hand["hand-ce"])
    assert tags["team"] == "x" and tags["reconciler.io/stack"] == "default"
    assert run("apply", "-f", path).writes == 0
    assert "hand-ce" in run("get", "ce").out  # now the stack's own


def test_a_queue_is_exported_with_what_it_uses_and_the_whole_applies(run, write, aws, by_hand):
    exported = run("export", "jq/hand-q", "jobdefinition", "hand-jd")
    assert exported.code == 64  # one form at a time, as kubectl
    exported = run("export", "jobqueue/hand-q", "jobdefinition/hand-jd", "sp/hand-sp")
    assert exported.code == 0, exported.err
    assert "uses ComputeEnvironment/hand-ce: exported with it" in exported.err
    docs = {d["metadata"]["name"]: d for d in _docs(exported.out)}
    assert set(docs) == {"hand-ce", "hand-q", "hand-jd", "hand-sp"}
    definition = docs["hand-jd"]["spec"]
    assert definition["containerProperties"]["command"] == ["echo", "Ref::word"]
    assert definition["parameters"] == {"word": "hi"}
    assert definition["retryStrategy"] == {"attempts": 3}
    path = write(exported.out, "all.yaml")

    plan = run("diff", "-f", path, "--adopt", "-o", "json")
    assert len(_only_tags_change(plan.out)) == 4

    adopted = run("apply", "-f", path, "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert adopted.calls.get("batch:RegisterJobDefinition", 0) == 0  # re-tagged, not re-registered
    for name in ("hand-q", "hand-jd", "hand-sp"):
        assert tags_of(aws, by_hand[name])["reconciler.io/name"] == name
    again = run("apply", "-f", path)
    assert again.code == 0 and again.writes == 0, again.out


def test_scopes(run, write, aws, by_hand):
    ours = write(stack(ce("our-ce"), jq("our-q", envs=("our-ce",))))
    assert run("apply", "-f", ours).code == 0
    theirs = write(stack(ce("their-ce")), "theirs.yaml")
    assert run("apply", "-f", theirs, "--stack", "b").code == 0

    def names(*args: str) -> set[str]:
        got = run("export", *args)
        assert got.code == 0, got.err
        return {d["metadata"]["name"] for d in _docs(got.out)}

    assert names() == {"our-ce", "our-q"}
    assert names("--unowned") == {"hand-ce", "hand-q", "hand-jd", "hand-sp"}
    assert names("--unowned", "ce") == {"hand-ce"}
    assert names("--all-stacks", "ce") == {"our-ce", "their-ce", "hand-ce"}
    assert names("--unowned", "-l", "team=x") == {"hand-ce", "hand-jd"}
    table = run("export", "--all-stacks", "ce", "-o", "text")
    stacks = {line.split()[0]: line.split()[-1] for line in table.out.splitlines()[2:]}
    assert stacks == {"hand-ce": "(unowned)", "our-ce": "default", "their-ce": "b"}
    assert run("export", "--unowned", "--all-stacks").code == 64
    missing = run("export", "jq/nope")
    assert missing.code == 1 and 'jobqueue "nope" not found' in missing.err


def test_a_secret_is_never_exported(run, write, aws):
    client(aws).register_job_definition(
        jobDefinitionName="with-secret",
        type="container",
        containerProperties={
            "image": "busybox:1",
            "vcpus": 1,
            "memory": 256,
            "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}],
        },
    )
    got = run("export", "jd/with-secret")
    assert got.code == 0 and "hunter2" not in got.out + got.err
    assert "placeholder" in got.err
    refused = run("apply", "-f", write(got.out), "--adopt")
    assert refused.code == 1 and "placeholder for a secret value" in refused.err
    assert refused.calls == {}


def test_roles_and_buckets_made_by_hand_are_exported_by_name(run, write, aws):
    """Kinds outside Batch work the same way: an IAM role and an S3 bucket made by plain
    boto3, exported by name and adopted, change tags only."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = client(aws, "iam")
    iam.create_role(RoleName="hand-role", AssumeRolePolicyDocument=json.dumps(trust))
    read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName="hand-role", PolicyName="read", PolicyDocument=json.dumps(read))
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="hand-bucket")
    # As AWS makes every bucket now (moto leaves it unset).
    s3.put_bucket_encryption(
        Bucket="hand-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.create_bucket(Bucket="plain-bucket")

    exported = run("export", "iamroles/hand-role", "bucket/hand-bucket")
    assert exported.code == 0, exported.err
    docs = {d["metadata"]["name"]: d for d in _docs(exported.out)}
    assert docs["hand-role"]["spec"]["trustedServices"] == ["ecs-tasks.amazonaws.com"]
    assert docs["hand-role"]["spec"]["inlinePolicies"]["read"]["Statement"][0]["Action"]
    path = write(exported.out, "other.yaml")
    plan = run("diff", "-f", path, "--adopt", "-o", "json")
    assert len(_only_tags_change(plan.out)) == 2, plan.out
    assert run("apply", "-f", path, "--adopt").code == 0
    again = run("apply", "-f", path)
    writes = [
        k
        for k in again.calls
        if not k.split(":")[1].startswith(("Describe", "List", "Get", "Head"))
    ]
    assert again.code == 0 and writes == [], again.calls

    # Unset in AWS, but a manifest cannot say "unset": the export says the default applies.
    plain = run("export", "bucket/plain-bucket")
    assert "spec.encryption: unset in AWS; applying this manifest sets the default" in plain.err
    plan = run("diff", "-f", write(plain.out, "plain.yaml"), "--adopt")
    assert "encryption" in plan.out
