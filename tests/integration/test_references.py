"""References between kinds, over HTTP to moto: `{role: NAME}`, `{role: NAME, instanceProfile:
true}` and `{bucket: NAME, as: url}` resolve at plan time, what is referred to is created first
and deleted last, and a role still in use is not deleted out from under its users."""

from __future__ import annotations

import json
import urllib.parse

from tests import stacks
from tests.conftest import client

ACCOUNT = "123456789012"  # moto's

BUCKET = """
apiVersion: reconciler.io/v1alpha1
kind: Bucket
metadata: {name: results-bkt}
spec: {deletionPolicy: Delete}
"""
JOB_ROLE = """
apiVersion: reconciler.io/v1alpha1
kind: Role
metadata: {name: job-role}
spec:
  trustedServices: [ecs-tasks.amazonaws.com]
  inlinePolicies:
    results:
      Statement:
        - {Effect: Allow, Action: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
           Resource: [{bucket: results-bkt}]}
"""
INSTANCE_ROLE = """
apiVersion: reconciler.io/v1alpha1
kind: Role
metadata: {name: ecs-instance}
spec:
  trustedServices: [ec2.amazonaws.com]
  managedPolicyArns: [arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]
  instanceProfile: true
"""
DEFINITION = """
apiVersion: reconciler.io/v1alpha1
kind: JobDefinition
metadata: {name: worker}
spec:
  containerProperties:
    image: busybox
    command: [echo, hi]
    vcpus: 1
    memory: 512
    jobRoleArn: {role: job-role}
    executionRoleArn: {role: job-role}
    environment:
      - {name: RESULTS, value: {bucket: results-bkt, as: url}}
      - {name: RESULTS_NAME, value: {bucket: results-bkt}}
"""


def _ce() -> str:
    return stacks.ce().replace(
        "instanceRole: ecsInstanceRole", "instanceRole: {role: ecs-instance, instanceProfile: true}"
    )


def _stack() -> str:
    return stacks.stack(BUCKET, JOB_ROLE, INSTANCE_ROLE, _ce(), stacks.jq(), DEFINITION)


def test_references_resolve_and_what_they_name_is_created_first(run, write, aws):
    path = write(_stack())
    plan = run("diff", "-f", path)
    assert plan.code == 2, plan.out + plan.err
    order = [line.split()[1] for line in plan.out.splitlines() if line.strip().startswith("+")]
    assert order.index("Bucket/results-bkt") < order.index("Role/job-role")
    assert order.index("Role/job-role") < order.index("JobDefinition/worker")
    assert order.index("Role/ecs-instance") < order.index("ComputeEnvironment/spot-ce")

    applied = run("apply", "-f", path)
    assert applied.code == 0, applied.out + applied.err

    batch = client(aws, "batch")
    [jd] = batch.describe_job_definitions(jobDefinitionName="worker", status="ACTIVE")[
        "jobDefinitions"
    ]
    cp = jd["containerProperties"]
    assert cp["jobRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/job-role"
    assert cp["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/job-role"
    env = {e["name"]: e["value"] for e in cp["environment"]}
    assert env == {"RESULTS": "s3://results-bkt", "RESULTS_NAME": "results-bkt"}

    [ce] = batch.describe_compute_environments(computeEnvironments=["spot-ce"])[
        "computeEnvironments"
    ]
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/ecs-instance"
    assert ce["computeResources"]["instanceRole"] == profile

    raw = client(aws, "iam").get_role_policy(RoleName="job-role", PolicyName="results")
    doc = raw["PolicyDocument"]
    doc = json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
    resources = doc["Statement"][0]["Resource"]
    assert sorted(resources) == ["arn:aws:s3:::results-bkt", "arn:aws:s3:::results-bkt/*"]

    again = run("apply", "-f", path)
    assert again.code == 0 and "No changes" in again.out, again.out
    writes = {k: n for k, n in again.calls.items() if not k.startswith("dynamodb:")}
    assert not any(
        k.split(":", 1)[1].startswith(("Create", "Put", "Register", "Update", "Tag", "Attach"))
        for k in writes
    ), again.calls


def test_bad_references_are_reported_before_any_call(run, write):
    missing = DEFINITION.replace("{role: job-role}", "{role: nobody}", 1)
    no_profile = INSTANCE_ROLE.replace("instanceProfile: true", "instanceProfile: false")
    path = write(stacks.stack(BUCKET, JOB_ROLE, no_profile, _ce(), stacks.jq(), missing))
    out = run("validate", "-f", path)
    assert out.code == 1
    assert "spec.containerProperties.jobRoleArn: refers to unknown Role 'nobody'" in out.err
    assert (
        "spec.computeResources.instanceRole: Role 'ecs-instance' declares no instance profile"
        in out.err
    ), out.err
    bare = _ce().replace("instanceProfile: true}", "instanceProfile: false}")
    out = run("validate", "-f", write(stacks.stack(INSTANCE_ROLE, bare), name="bare.yaml"))
    assert "an instance role is an instance profile: add instanceProfile: true" in out.err
    gone = DEFINITION.replace("{bucket: results-bkt, as: url}", "{bucket: elsewhere}")
    out = run("validate", "-f", write(stacks.stack(JOB_ROLE, BUCKET, gone), name="gone.yaml"))
    assert "refers to unknown Bucket 'elsewhere'" in out.err


def test_a_role_still_used_is_not_deleted_and_the_plan_says_by_whom(run, write, aws):
    assert run("apply", "-f", write(_stack())).code == 0
    roles_only = write(stacks.stack(BUCKET, JOB_ROLE), name="roles.yaml")
    refused = run("delete", "--yes", "-f", roles_only)
    assert refused.code == 1, refused.out + refused.err
    assert "still used by JobDefinition worker" in refused.out, refused.out
    client(aws, "iam").get_role(RoleName="job-role")  # still there

    everything = run("delete", "--yes", "-f", write(_stack(), name="all.yaml"))
    assert everything.code == 0, everything.out + everything.err
    names = [r["RoleName"] for r in client(aws, "iam").list_roles()["Roles"]]
    assert "job-role" not in names and "ecs-instance" not in names
