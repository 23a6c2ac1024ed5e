"""Role: the model, policy documents in their normal form, and the IAM statements it declares."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.aws import policy as iam
from reconciler.engine.diff import diff
from reconciler.kinds.role import OTHER_TRUST, _document, _services
from reconciler.models.fields import semantics_of
from reconciler.models.role import Role, RoleSpec, normal_document, trust_document


def role(name: str = "jobs-role", **spec: Any) -> Role:
    body = {"trustedServices": ["ecs-tasks.amazonaws.com"], **spec}
    return Role.model_validate(
        {
            "apiVersion": "reconciler.io/v1alpha1",
            "kind": "Role",
            "metadata": {"name": name},
            "spec": body,
        }
    )


# -- the model ---------------------------------------------------------------------------------


def test_iam_names_are_accepted_and_batch_only_rules_do_not_apply() -> None:
    assert role("svc.role+x=y,z@corp_1-2").name == "svc.role+x=y,z@corp_1-2"
    with pytest.raises(ValidationError, match="String should match pattern"):
        role("has space")
    with pytest.raises(ValidationError, match="at most 64 characters"):
        role("r" * 65)
    assert role("r" * 64).name == "r" * 64
    with pytest.raises(ValidationError, match="String should match pattern"):
        role("")


def test_defaults_and_limits() -> None:
    spec = role().spec
    assert (spec.path, spec.maxSessionDuration, spec.instanceProfile) == ("/", 3600, False)
    with pytest.raises(ValidationError, match="greater than or equal to 3600"):
        role(maxSessionDuration=60)
    with pytest.raises(ValidationError, match="less than or equal to 43200"):
        role(maxSessionDuration=50000)
    with pytest.raises(ValidationError, match="String should match pattern"):
        role(path="no-slashes")
    with pytest.raises(ValidationError, match="a value appears twice"):
        role(trustedServices=["batch.amazonaws.com", "batch.amazonaws.com"])


def test_the_path_is_immutable_and_sets_are_unordered() -> None:
    table = semantics_of(RoleSpec)
    assert table["path"].immutable
    assert table["trustedServices"].set_of_values and table["managedPolicyArns"].set_of_values


def test_a_statement_needs_an_action_and_a_resource() -> None:
    with pytest.raises(ValidationError, match="exactly one of Action and NotAction"):
        role(inlinePolicies={"p": {"Statement": [{"Effect": "Allow", "Resource": "*"}]}})
    with pytest.raises(ValidationError, match="exactly one of Resource and NotResource"):
        role(inlinePolicies={"p": {"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}})
    with pytest.raises(ValidationError, match="a policy name is 1-128"):
        role(
            inlinePolicies={
                "bad name": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            }
        )
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        role(inlinePolicies={"p": {"Statement": [{"Effect": "Allow", "Actions": "s3:*"}]}})


# -- policy documents in one normal form --------------------------------------------------------

WRITTEN = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
            "Resource": "*",
        },
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::a/*"],
            "Condition": {
                "Bool": {"aws:SecureTransport": True},
                "NumericLessThan": {"s3:max-keys": 10},
            },
        },
    ]
}
# What IAM may return for it: another order everywhere, one-item lists, values as text.
RETURNED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"],
            "Condition": {
                "NumericLessThan": {"s3:max-keys": "10"},
                "Bool": {"aws:SecureTransport": "true"},
            },
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": ["*"],
        },
    ],
}


def test_order_and_single_values_are_not_a_difference() -> None:
    assert normal_document(WRITTEN) == normal_document(RETURNED)
    assert normal_document(WRITTEN)["Version"] == "2012-10-17"


def test_a_real_difference_stays_one() -> None:
    other = json.loads(json.dumps(RETURNED))
    other["Statement"][1]["Action"].append("logs:CreateLogGroup")
    assert normal_document(WRITTEN) != normal_document(other)
    deny = json.loads(json.dumps(RETURNED))
    deny["Statement"][0]["Effect"] = "Deny"
    assert normal_document(WRITTEN) != normal_document(deny)


def test_url_encoded_documents_are_decoded() -> None:
    # GetRolePolicy answers with URL-encoded JSON; botocore usually decodes it already.
    encoded = urllib.parse.quote(json.dumps(RETURNED))
    assert normal_document(_document(encoded)) == normal_document(WRITTEN)
    assert _document(RETURNED) == RETURNED


def test_trusted_services_are_read_back_from_the_trust_policy() -> None:
    built = trust_document(["ecs-tasks.amazonaws.com", "batch.amazonaws.com"])
    assert _services(built) == ["batch.amazonaws.com", "ecs-tasks.amazonaws.com"]
    single = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "batch.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert _services(single) == ["batch.amazonaws.com"]
    # A trust policy saying more than trusted services shows as a change, to be rewritten.
    wider = json.loads(json.dumps(single))
    wider["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
        }
    )
    assert _services(wider) == ["batch.amazonaws.com", OTHER_TRUST]


def test_the_diff_sees_no_change_between_written_and_returned_forms() -> None:
    spec = {
        "trustedServices": ["ecs-tasks.amazonaws.com"],
        "inlinePolicies": {"p": normal_document(WRITTEN)},
    }
    live = {
        "trustedServices": ["ecs-tasks.amazonaws.com"],
        "inlinePolicies": {"p": normal_document(RETURNED)},
    }
    assert diff(spec, live, RoleSpec) == []
    live["inlinePolicies"] = {}
    assert [c.path for c in diff(spec, live, RoleSpec)] == ["inlinePolicies"]


# -- the IAM policy the reconciler needs -------------------------------------------------------


def test_the_kinds_iam_permissions_reach_the_policy() -> None:
    doc = iam.policy(partition="aws", account="123456789012")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert "iam:CreateRole" in by_sid["IamRoles"]["Action"]
    assert by_sid["IamRoles"]["Resource"] == ["arn:aws:iam::123456789012:role/*"]
    assert by_sid["IamInstanceProfiles"]["Resource"] == [
        "arn:aws:iam::123456789012:instance-profile/*"
    ]
    assert by_sid["IamRoleListing"] == {
        "Sid": "IamRoleListing",
        "Effect": "Allow",
        "Action": ["iam:ListRoles"],
        "Resource": ["*"],
    }


def test_a_call_of_any_service_that_no_kind_declares_is_an_error(tmp_path: Path) -> None:
    package = tmp_path / "reconciler"
    package.mkdir()
    (package / "calls.py").write_text(
        'def f(ctx):\n    ctx.aws.client("kinesis").create_stream(StreamName="s")\n'
    )
    with pytest.raises(ValueError, match="no resource scope for kinesis:CreateStream"):
        iam.policy(root=package)
