"""The IAM policy: derived from the calls the code makes, and no broader than AWS requires."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from reconciler.aws import policy as iam
from reconciler.models.common import RoleRef
from reconciler.registry import kinds, models

ROOT = Path(__file__).resolve().parents[2]

# What the reconciler cannot work without, listed by hand: a scan that stops seeing a call
# (a refactor the scanner does not follow) must not silently drop a permission.
CRITICAL = {
    "batch:CreateComputeEnvironment",
    "batch:UpdateComputeEnvironment",
    "batch:DeleteComputeEnvironment",
    "batch:DescribeComputeEnvironments",
    "batch:CreateJobQueue",
    "batch:UpdateJobQueue",
    "batch:DeleteJobQueue",
    "batch:DescribeJobQueues",
    "batch:RegisterJobDefinition",
    "batch:DeregisterJobDefinition",
    "batch:DescribeJobDefinitions",
    "batch:SubmitJob",
    "batch:DescribeJobs",
    "batch:ListJobs",
    "batch:TerminateJob",
    "batch:TagResource",
    "batch:UntagResource",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstanceTypes",
    "logs:GetLogEvents",
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
}


def test_the_policy_allows_every_call_the_code_makes() -> None:
    found = iam.scanned_actions()
    assert found, "the scan found no AWS call at all"
    assert found <= iam.actions(iam.policy())


def test_the_policy_allows_the_critical_actions() -> None:
    assert iam.actions(iam.policy()) >= CRITICAL
    assert CRITICAL - {"iam:PassRole", "iam:CreateServiceLinkedRole"} <= iam.scanned_actions()


def test_nothing_beyond_the_scan_but_the_roles() -> None:
    extra = iam.actions(iam.policy()) - iam.scanned_actions()
    # dynamodb:TagResource: CreateTable's tags (the stack lock's table) are authorised so.
    assert extra == {"iam:PassRole", "iam:CreateServiceLinkedRole", "dynamodb:TagResource"}


def test_get_caller_identity_is_called_but_needs_no_permission() -> None:
    assert "sts:GetCallerIdentity" in {c.action for c in iam.scan()}
    assert not any(a.startswith("sts:") for a in iam.actions(iam.policy()))


def _declared_star() -> set[str]:
    """Actions a kind's own `permissions` scope to "*" (where AWS supports no narrower one)."""
    return {
        f"{p.service}:{a}"
        for k in kinds().values()
        for p in k.permissions
        if "*" in p.resources
        for a in p.actions
    }


def _declared_sids() -> set[str]:
    """Statements the kinds declare for services other than Batch (whose are listed below)."""
    return {p.sid for k in kinds().values() for p in k.permissions if p.service != "batch"}


def test_no_wildcard_actions_and_star_resources_only_where_aws_requires() -> None:
    doc = iam.policy()
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in a and "?" not in a for a in statement["Action"])
        if "*" in statement["Resource"]:
            # Batch's and EC2's Describe*/List*, and tag:GetResources, support no
            # resource-level permissions.
            assert statement["Resource"] == ["*"]
            names = [a.split(":", 1)[1] for a in statement["Action"]]
            assert all(n.startswith(("Describe", "List", "Get")) for n in names), statement
            # ...and the reads a kind declares with "*" itself (iam:ListRoles).
            assert all(
                a.startswith(("batch:", "ec2:", "tag:")) or a in _declared_star()
                for a in statement["Action"]
            )
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid) == _declared_sids() | {
        "BatchRead",
        "BatchInfrastructure",
        "BatchJobs",
        "BatchTags",
        "Ec2Lookups",
        "JobLogs",
        "PassRolesToBatch",
        "ServiceLinkedRoles",
        "StackLocks",
        "TaggedReads",
    }
    assert by_sid["StackLocks"]["Resource"] == ["arn:aws:dynamodb:*:*:table/reconciler-locks"]
    assert by_sid["TaggedReads"]["Action"] == ["tag:GetResources"]
    assert by_sid["BatchJobs"]["Resource"] == [
        "arn:aws:batch:*:*:job-queue/*",
        "arn:aws:batch:*:*:job-definition/*",
        "arn:aws:batch:*:*:job/*",
    ]
    assert "arn:aws:batch:*:*:job/*" in by_sid["BatchTags"]["Resource"]  # tags at SubmitJob
    assert by_sid["JobLogs"]["Resource"] == [
        "arn:aws:logs:*:*:log-group:/aws/batch/job:log-stream:*"
    ]
    slr = by_sid["ServiceLinkedRoles"]
    assert "batch.amazonaws.com" in slr["Condition"]["StringEquals"]["iam:AWSServiceName"]
    assert slr["Resource"] == ["arn:aws:iam::*:role/aws-service-role/*"]


def test_the_policy_fits_in_managed_policies_and_whole_in_an_inline_one() -> None:
    """A managed policy holds 6,144 characters, an inline role policy 10,240: the document's
    parts each fit the first and together are the whole; the whole fits the second."""
    doc = iam.policy()
    pieces = iam.parts(doc)
    assert all(len(json.dumps(p, separators=(",", ":"))) <= 6144 for p in pieces)
    assert [s for p in pieces for s in p["Statement"]] == doc["Statement"]
    assert len(json.dumps(doc, separators=(",", ":"))) < 10240


def test_partition_account_and_region_narrow_the_arns() -> None:
    doc = iam.policy(partition="aws-cn", region="cn-north-1", account="123456789012")
    arns = [r for s in doc["Statement"] for r in s["Resource"] if r != "*"]
    assert arns and all(r.startswith("arn:aws-cn:") for r in arns)
    # S3 bucket ARNs name no account (bucket names are global), nor do the public images an
    # EC2 task may launch from (Amazon's), nor AWS's public SSM parameters a MachineImage's base
    # may name; every other ARN does.
    public = {
        "arn:aws-cn:ec2:cn-north-1::image/*",
        "arn:aws-cn:ssm:cn-north-1::parameter/aws/service/*",
    }
    assert all(
        "123456789012" in r
        for r in arns
        if not r.startswith("arn:aws-cn:s3:::") and r not in public
    )
    assert "arn:aws-cn:batch:cn-north-1:123456789012:job-queue/*" in arns


def test_pass_role_narrows_to_the_roles_given() -> None:
    doc = iam.policy(
        roles=[
            "ecsInstanceRole",
            "service-role/AWSBatchServiceRole",
            "arn:aws:iam::123456789012:role/BatchJobRole",
            "arn:aws:iam::123456789012:instance-profile/profiled",
        ]
    )
    [pass_role] = [s for s in doc["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert pass_role["Resource"] == [
        "arn:aws:iam::*:role/ecsInstanceRole",
        "arn:aws:iam::*:role/service-role/AWSBatchServiceRole",
        "arn:aws:iam::123456789012:role/BatchJobRole",
        "arn:aws:iam::123456789012:role/profiled",
    ]
    by_sid = {s["Sid"]: s for s in iam.policy()["Statement"]}
    assert by_sid["PassRolesToBatch"]["Resource"] == ["arn:aws:iam::*:role/*"]


def test_roles_in_the_example_manifests() -> None:
    resources = [
        models()[d["kind"]].model_validate(d)
        for path in sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]
    # The example's roles are the stack's own, named by reference ({role: NAME}).
    assert iam.roles_in(resources) == [
        "ec2-agent",
        "stress-execution",
        "stress-instance",
        "stress-job",
    ]


def test_role_fields_are_the_models_role_references() -> None:
    pattern = TypeAdapter(RoleRef).json_schema()["pattern"]

    def role_fields(node: object, name: str = "") -> set[str]:
        if isinstance(node, list):
            return set().union(*(role_fields(n, name) for n in node))
        if not isinstance(node, dict):
            return set()
        out = {name} if node.get("pattern") == pattern else set()
        for key, sub in node.items():
            if key == "properties":
                for field, schema in sub.items():
                    out |= role_fields(schema, field)
            elif key in ("anyOf", "items", "$defs"):
                out |= role_fields(sub if key != "$defs" else list(sub.values()), name)
        return out

    found = set().union(*(role_fields(m.model_json_schema()) for m in models().values()))
    assert found == iam.ROLE_FIELDS


# -- the scanner -------------------------------------------------------------------------------


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_the_scanner_follows_chains_names_paginators_and_closures(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    write(
        pkg,
        "a.py",
        """
        import boto3

        def chained(ctx):
            return ctx.aws.client("batch").describe_job_queues(jobQueues=[])

        def bound(ctx):
            batch = ctx.aws.client("batch")
            pages = ctx.aws.client("ec2").get_paginator("describe_subnets")

            def inner():
                return batch.submit_job(jobName="x")

            waiter = batch.get_waiter("x")
            return inner, pages.paginate(), waiter

        class Handler:
            def method(self, ctx):
                logs = ctx.aws.client("logs")
                try:
                    return logs.get_log_events(logGroupName="g")
                except logs.exceptions.ResourceNotFoundException:
                    return None

            def attribute(self, ctx):
                self._batch = ctx.aws.client("batch")
                return self._batch.terminate_job(jobId="x")

        def other(service):
            return boto3.client(service).anything()  # not a literal service: not ours to say

        def unrelated(batch):
            return batch.cancel_job(jobId="x")  # a parameter, not a client we can see
        """,
    )
    write(pkg, "sandbox/s.py", 'def f(c):\n    return c.client("batch").delete_job_queue()\n')
    found = {(c.action, c.where) for c in iam.scan(pkg)}
    assert found == {
        ("batch:DescribeJobQueues", "pkg/a.py:5"),
        ("ec2:DescribeSubnets", "pkg/a.py:9"),
        ("batch:SubmitJob", "pkg/a.py:12"),
        ("logs:GetLogEvents", "pkg/a.py:21"),
        ("batch:TerminateJob", "pkg/a.py:27"),
    }


def test_the_scanner_rejects_what_is_not_an_operation(tmp_path: Path) -> None:
    write(tmp_path / "pkg", "a.py", 'def f(c):\n    return c.client("batch").submit_jobs()\n')
    [call] = iam.scan(tmp_path / "pkg")
    with pytest.raises(ValueError, match="submit_jobs"):
        call.action  # noqa: B018


def test_a_new_call_without_a_scope_fails_loudly(tmp_path: Path) -> None:
    write(
        tmp_path / "pkg",
        "a.py",
        'def f(c):\n    return c.client("batch").create_quota_share()\n',
    )
    with pytest.raises(ValueError, match="batch:CreateQuotaShare"):
        iam.policy(root=tmp_path / "pkg")


def test_action_names_come_from_the_service_models() -> None:
    assert iam.action_of("batch", "describe_compute_environments") == (
        "batch:DescribeComputeEnvironments"
    )
    assert iam.action_of("ec2", "describe_instance_types") == "ec2:DescribeInstanceTypes"
    assert iam.action_of("logs", "get_log_events") == "logs:GetLogEvents"


def test_render_is_the_json_document() -> None:
    doc = iam.policy()
    assert json.loads(iam.render(doc)) == doc
