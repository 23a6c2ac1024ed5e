"""Where an EC2 run keeps its working state: an S3 prefix and one SQS queue per run.

The prefix (in a bucket of the tool's per account and region, created on first use with the
ownership tags, no public access and objects expiring after `RETENTION_DAYS`) holds, per task,
what the launch sent and got back, the script when it is too big for the user data, and what
the agent keeps: stdout, stderr and the exit code. That is the durable record of the run: an
instance is visible for about an hour after it terminates, the objects for weeks, so a run is
never launched twice because its instances were forgotten, and `logs` works after the CLI left.

The queue carries the output live while someone follows the run. It is created before the
first launch (CreateQueue of an existing name with the same attributes returns it: idempotent)
and deleted when the run ends, by Ctrl-C, or by `reconciler gc` for a run that was killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from reconciler.aws.tags import MANAGED_BY, TOOL
from reconciler.engine.context import Context
from reconciler.errors import NotFoundError, PlanError, ProviderError

RETENTION_DAYS = 30
RUNS = "runs"
QUEUE_PREFIX = "reconciler-run-"
QUEUE_RETENTION = 4 * 24 * 3600  # SQS's default: the output of a run nobody follows for days
SCRATCH_TAGS = {MANAGED_BY: TOOL, "reconciler.io/scratch": "true"}  # the tool's; no stack's


def bucket_name(account: str, region: str) -> str:
    return f"reconciler-scratch-{account}-{region}"[:63]


def run_prefix(stack: str, kind: str, name: str, run: str) -> str:
    return f"{RUNS}/{stack}/{kind.lower()}/{name}/{run}/"


def resource_prefix(stack: str, kind: str, name: str) -> str:
    return f"{RUNS}/{stack}/{kind.lower()}/{name}/"


def queue_name(stack: str, kind: str, name: str, run: str) -> str:
    """At most 80 characters of letters, digits, - and _ (SQS), unique to one run."""
    digest = hashlib.sha256(f"{stack}/{kind}/{name}".encode()).hexdigest()[:16]
    return f"{QUEUE_PREFIX}{digest}-{run}"


def bucket(ctx: Context) -> str:
    return bucket_name(ctx.resolver.account_id, ctx.aws.region)


def ensure_bucket(ctx: Context) -> str:
    """The scratch bucket, created once (and said so) if the account has none yet.

    It is the tool's, not a stack's: tagged as managed by the tool and as the scratch bucket,
    with no stack, so no stack's `get` lists it and no prune touches it. A bucket of that name
    with other tags is refused; one with none is taken as a create whose reply was lost."""

    def make() -> str:
        name = bucket(ctx)
        s3 = ctx.aws.client("s3")
        try:
            s3.head_bucket(Bucket=name)
        except ProviderError as exc:  # HeadBucket has no body: its code is the HTTP status
            if exc.code in ("403", "Forbidden"):
                raise PlanError(
                    f"the scratch bucket name {name} is taken by another account"
                ) from exc
            if not (isinstance(exc, NotFoundError) or exc.code in ("404", "NotFound")):
                raise
            where = (
                {}
                if ctx.aws.region == "us-east-1"
                else {"CreateBucketConfiguration": {"LocationConstraint": ctx.aws.region}}
            )
            s3.create_bucket(Bucket=name, **where)
            ctx.log(f"created the scratch bucket {name} (run output, kept {RETENTION_DAYS} days)")
        tags = _bucket_tags(ctx, name)
        if tags == SCRATCH_TAGS:
            return name
        if tags:
            raise PlanError(f"bucket {name} exists and is not the tool's scratch bucket (its tags)")
        _set_up(ctx, name)
        return name

    return str(ctx.resolver.once("scratch-bucket", make))


def _bucket_tags(ctx: Context, name: str) -> dict[str, str]:
    try:
        found = ctx.aws.client("s3").get_bucket_tagging(Bucket=name).get("TagSet") or []
    except ProviderError as exc:
        if exc.code == "NoSuchTagSet":
            return {}
        raise
    return {t["Key"]: t["Value"] for t in found if t["Key"] in SCRATCH_TAGS}


def _set_up(ctx: Context, name: str) -> None:
    """Tags, no public access, and objects expiring after RETENTION_DAYS."""
    s3 = ctx.aws.client("s3")
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "reconciler-runs-expire",
                    "Status": "Enabled",
                    "Filter": {"Prefix": f"{RUNS}/"},
                    "Expiration": {"Days": RETENTION_DAYS},
                }
            ]
        },
    )
    tags = [{"Key": k, "Value": v} for k, v in SCRATCH_TAGS.items()]
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})  # last: it marks it done


def list_objects(ctx: Context, prefix: str) -> dict[str, dict[str, Any]]:
    """Key -> summary of everything under `prefix`; empty when the bucket does not exist."""
    pages = ctx.aws.client("s3").get_paginator("list_objects_v2")
    try:
        return {
            o["Key"]: o
            for page in pages.paginate(Bucket=bucket(ctx), Prefix=prefix)
            for o in page.get("Contents") or []
        }
    except NotFoundError:
        return {}


def read_bytes(ctx: Context, key: str) -> bytes | None:
    try:
        body = ctx.aws.client("s3").get_object(Bucket=bucket(ctx), Key=key)["Body"].read()
    except NotFoundError:
        return None
    return bytes(body)


def read_text(ctx: Context, key: str) -> str | None:
    body = read_bytes(ctx, key)
    return None if body is None else body.decode("utf-8", "replace")


def put(ctx: Context, key: str, body: bytes | str, content_type: str = "text/plain") -> None:
    data = body.encode() if isinstance(body, str) else body
    ctx.aws.client("s3").put_object(
        Bucket=bucket(ctx), Key=key, Body=data, ContentType=content_type
    )


def put_json(ctx: Context, key: str, value: Any) -> None:
    put(ctx, key, json.dumps(value, indent=1, default=str), "application/json")


def ensure_queue(ctx: Context, name: str, tags: dict[str, str]) -> str:
    """The run's queue URL; creating it again returns the same queue."""
    reply = ctx.aws.client("sqs").create_queue(
        QueueName=name,
        Attributes={
            "MessageRetentionPeriod": str(QUEUE_RETENTION),
            "ReceiveMessageWaitTimeSeconds": "1",
        },
        tags=tags,
    )
    return str(reply["QueueUrl"])


def queue_url(ctx: Context, name: str) -> str | None:
    try:
        return str(ctx.aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
    except NotFoundError:
        return None


def delete_queue(ctx: Context, url: str) -> None:
    with contextlib.suppress(NotFoundError):  # deleted already (an interrupted cleanup)
        ctx.aws.client("sqs").delete_queue(QueueUrl=url)
