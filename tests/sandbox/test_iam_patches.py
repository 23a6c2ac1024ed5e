"""IAM on the sandbox (reconciler.sandbox.iam_patches): a request's account is found without
building an IAM backend per partition, and AWS's managed policies come out as moto makes them."""

from __future__ import annotations

from typing import Any

import boto3
from moto.iam.models import iam_backends

from reconciler.sandbox import moto_ext
from tests.conftest import client

OTHER = "111122223333"


def _partitions(account: str) -> set[str]:
    return set(dict.keys(iam_backends[account])) if account in iam_backends else set()


def test_a_requests_account_is_found_without_a_backend_per_partition(aws: str) -> None:
    client(aws, "sts").get_caller_identity()
    client(aws, "batch").describe_job_queues()
    assert _partitions("123456789012") <= {"aws"}, "moto made one per partition"


def test_an_access_key_of_another_account_still_names_that_account(aws: str) -> None:
    iam = client(aws, "iam")

    def in_other_account(request: Any, **_: Any) -> None:
        request.headers.add_header("x-moto-account-id", OTHER)

    iam.meta.events.register("before-sign.iam.*", in_other_account)
    iam.create_user(UserName="someone")
    key = iam.create_access_key(UserName="someone")["AccessKey"]
    sts = boto3.client(
        "sts",
        endpoint_url=aws,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    assert sts.get_caller_identity()["Account"] == OTHER


def _fields(policy: Any) -> tuple[object, ...]:
    [version] = policy.versions
    return (
        policy.name,
        policy.arn,
        policy.path,
        policy.default_version_id,
        policy.create_date,
        policy.update_date,
        version.document,
        version.version_id,
        version.is_default,
    )


def test_aws_managed_policies_are_those_moto_makes(aws: str) -> None:
    extensions = moto_ext.install()
    backend = iam_backends["123456789012"]["global"]
    ours = extensions.iam.aws_policies(backend)
    motos = extensions.iam._init_aws_policies(backend)
    assert len(ours) == len(motos) > 1000
    assert [_fields(p) for p in ours] == [_fields(p) for p in motos]
