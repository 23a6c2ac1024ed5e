"""Role (IAM), over HTTP to moto: trust policy, managed and inline policies, instance profile."""

from __future__ import annotations

from typing import Any

from tests.conftest import client

# moto loads no AWS managed policies by default: the tests make customer managed ones.
ACCOUNT = "123456789012"  # moto's default account
S3_READ = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
ECR_READ = f"arn:aws:iam::{ACCOUNT}:policy/ecr-read"


def role(
    name: str = "jobs-role",
    managed: str = f"[{S3_READ}]",
    inline: str = "",
    tags: str = "{team: genomics}",
    profile: str = "true",
) -> str:
    default_inline = """
    logs:
      Statement:
        - Effect: Allow
          Action: [logs:PutLogEvents, logs:CreateLogStream]
          Resource: "*"
        - Sid: Read
          Effect: Allow
          Action: s3:GetObject
          Resource: [arn:aws:s3:::data/*, arn:aws:s3:::refs/*]
          Condition: {Bool: {aws:SecureTransport: true}}
"""
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Role
metadata:
  name: {name}
spec:
  description: Role for genomics jobs
  trustedServices: [ecs-tasks.amazonaws.com, batch.amazonaws.com]
  managedPolicyArns: {managed}
  instanceProfile: {profile}
  tags: {tags}
  inlinePolicies:{inline or default_inline}
"""


# The same inline policy as the default above, written differently: statements, actions and
# resources in another order, single values as one-item lists and the reverse, Version given,
# the condition's boolean as a string.
REORDERED = """
    logs:
      Version: "2012-10-17"
      Statement:
        - Sid: Read
          Effect: Allow
          Action: [s3:GetObject]
          Resource: [arn:aws:s3:::refs/*, arn:aws:s3:::data/*]
          Condition: {Bool: {aws:SecureTransport: "true"}}
        - Effect: Allow
          Action: [logs:CreateLogStream, logs:PutLogEvents]
          Resource: ["*"]
"""

CHANGED = """
    logs:
      Statement:
        - Effect: Allow
          Action: logs:PutLogEvents
          Resource: "*"
"""


def _iam(aws: str) -> Any:
    iam = client(aws, "iam")
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",'
    doc += ' "Resource": "*"}]}'
    existing = {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    for name in {"s3-read", "ecr-read"} - existing:
        iam.create_policy(PolicyName=name, PolicyDocument=doc)
    return iam


def _tags(aws: str, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in _iam(aws).list_role_tags(RoleName=name)["Tags"]}


def _writes(calls: dict[str, int]) -> dict[str, int]:
    """The writes to IAM: the stack's lease (DynamoDB) is taken by every apply, even a no-op."""
    return {
        k: n
        for k, n in calls.items()
        if k.startswith("iam:") and not k.split(":", 1)[1].startswith(("List", "Get"))
    }


def test_create_reapply_update_and_delete(run, write, aws):
    iam = _iam(aws)
    path = write(role())
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    assert "Plan: 1 to create." in first.out
    live = iam.get_role(RoleName="jobs-role")["Role"]
    trust = live["AssumeRolePolicyDocument"]
    services = {s for st in trust["Statement"] for s in st["Principal"]["Service"]}
    assert services == {"ecs-tasks.amazonaws.com", "batch.amazonaws.com"}
    assert live["Description"] == "Role for genomics jobs"
    attached = iam.list_attached_role_policies(RoleName="jobs-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [S3_READ]
    assert iam.list_role_policies(RoleName="jobs-role")["PolicyNames"] == ["logs"]
    profile = iam.get_instance_profile(InstanceProfileName="jobs-role")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["jobs-role"]
    tags = _tags(aws, "jobs-role")
    assert tags["reconciler.io/stack"] == "default" and tags["team"] == "genomics"

    again = run("apply", "-f", path)
    assert again.code == 0 and "No changes" in again.out, again.out
    assert _writes(again.calls) == {}, again.calls

    # The same policy written in another order and form is no change either.
    reordered = write(role(inline=REORDERED), "reordered.yaml")
    same = run("diff", "-f", reordered)
    assert same.code == 0 and "No changes" in same.out, same.out
    assert _writes(run("apply", "-f", reordered).calls) == {}

    # An inline policy changed: one PutRolePolicy, nothing else.
    changed = write(role(inline=CHANGED), "changed.yaml")
    diff = run("diff", "-f", changed)
    assert diff.code == 2 and "inlinePolicies.logs" in diff.out, diff.out
    updated = run("apply", "-f", changed)
    assert updated.code == 0, updated.out + updated.err
    assert _writes(updated.calls) == {"iam:PutRolePolicy": 1}, updated.calls
    document = iam.get_role_policy(RoleName="jobs-role", PolicyName="logs")["PolicyDocument"]
    assert len(document["Statement"]) == 1

    # The managed set and the tags changed: attach, detach, tag, untag, nothing else.
    swapped = write(
        role(inline=CHANGED, managed=f"[{ECR_READ}]", tags="{project: x}"), "swapped.yaml"
    )
    updated = run("apply", "-f", swapped)
    assert updated.code == 0, updated.out + updated.err
    assert _writes(updated.calls) == {
        "iam:AttachRolePolicy": 1,
        "iam:DetachRolePolicy": 1,
        "iam:TagRole": 1,
        "iam:UntagRole": 1,
    }, updated.calls
    attached = iam.list_attached_role_policies(RoleName="jobs-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ECR_READ]
    tags = _tags(aws, "jobs-role")
    assert tags["project"] == "x" and "team" not in tags
    assert _writes(run("apply", "-f", swapped).calls) == {}

    shown = run("get", "-f", swapped, "-o", "json")
    assert shown.code == 0 and '"Role"' in shown.out

    gone = run("delete", "--yes", "-f", swapped)
    assert gone.code == 0, gone.out + gone.err
    assert gone.calls.get("iam:DeleteRole") == 1
    assert gone.calls.get("iam:DeleteInstanceProfile") == 1
    names = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "jobs-role" not in names
    profiles = [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]]
    assert "jobs-role" not in profiles


def test_dropping_the_instance_profile_and_pruning(run, write, aws):
    _iam(aws)
    path = write(role(name="ce-role"))
    assert run("apply", "-f", path).code == 0
    without = write(role(name="ce-role", profile="false"), "without.yaml")
    updated = run("apply", "-f", without)
    assert updated.code == 0, updated.out + updated.err
    assert _writes(updated.calls) == {
        "iam:RemoveRoleFromInstanceProfile": 1,
        "iam:DeleteInstanceProfile": 1,
    }, updated.calls
    assert _writes(run("apply", "-f", without).calls) == {}

    other = write(role(name="other-role", profile="false"), "other.yaml")
    pruned = run("apply", "--prune", "--yes", "-f", other)
    assert pruned.code == 0, pruned.out + pruned.err
    names = {r["RoleName"] for r in _iam(aws).list_roles()["Roles"]}
    assert "other-role" in names and "ce-role" not in names
    assert "ecsInstanceRole" in names  # the account's own roles are not ours to prune


def test_an_unowned_role_of_the_same_name_is_a_conflict_and_adopt_takes_it(run, write, aws):
    iam = _iam(aws)
    trust = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
        ' "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}'
    )
    iam.create_role(RoleName="theirs", AssumeRolePolicyDocument=trust)
    path = write(role(name="theirs", profile="false"))
    plan = run("apply", "-f", path)
    assert plan.code == 1
    assert "use --adopt to take it over" in plan.out
    assert _writes(plan.calls) == {}
    deleted = run("delete", "--yes", "-f", path)
    assert deleted.code == 0 and _writes(deleted.calls) == {}
    assert iam.get_role(RoleName="theirs")["Role"]["RoleName"] == "theirs"

    adopted = run("apply", "--adopt", "-f", path)
    assert adopted.code == 0, adopted.out + adopted.err
    assert _tags(aws, "theirs")["reconciler.io/stack"] == "default"
    assert adopted.calls.get("iam:UpdateAssumeRolePolicy") == 1  # batch.amazonaws.com added
    assert adopted.calls.get("iam:CreateRole", 0) == 0
    assert _writes(run("apply", "-f", path).calls) == {}


def test_a_role_in_someone_elses_instance_profile_is_not_deleted(run, write, aws):
    iam = _iam(aws)
    path = write(role(name="shared-role", profile="false"))
    assert run("apply", "-f", path).code == 0
    iam.create_instance_profile(InstanceProfileName="their-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="their-profile", RoleName="shared-role")

    refused = run("delete", "--yes", "-f", path)
    assert refused.code != 0
    assert "their-profile" in refused.out + refused.err
    assert _writes(refused.calls) == {}

    # --force tries anyway: IAM answers DeleteConflict, reported as an error, not a traceback.
    forced = run("delete", "--force", "--yes", "-f", path)
    assert forced.code != 0
    assert "Traceback" not in forced.out + forced.err
    assert "cannot be deleted" in forced.out + forced.err
    assert iam.get_role(RoleName="shared-role")["Role"]["RoleName"] == "shared-role"
