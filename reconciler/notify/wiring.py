"""The AWS parts of a Notification, each written only where it differs from what was read.

Parts (kinds/notification.py names them): a dead-letter queue, the SNS topic and its policy,
the subscriptions, the Slack function with its role and its subscription, the EventBridge rule
and its target. `converge(want, have)` writes what differs (`have` is empty when creating), in
the order that lets each part refer to the ones before it; every step is idempotent, so an
interrupted apply is finished by the next.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from reconciler.aws.service_roles import delete_service_role, put_changed_roles
from reconciler.aws.tags import ownership_tags
from reconciler.engine.context import Context
from reconciler.engine.types import Pending, Step
from reconciler.errors import NotFoundError, ProviderError

ROLE_DESCRIPTION = "reconciler: posts Batch job notifications to Slack"
POLICY = "notify"  # the Slack role's inline policy
TARGET_ID = "topic"
RUNTIME = "python3.12"
HANDLER = "reconciler.aws.slack_function.handler"
ROLE_WAIT = 60.0
FORMATTER = Path(__file__).with_name("slack.py")
FUNCTION = Path(__file__).parents[1] / "aws" / "slack_function.py"


def function_zip() -> bytes:
    """The Slack function's package: its handler and the formatter, as the package lays them
    out (with empty package markers), byte-for-byte the same every time (a fixed timestamp),
    so that its CodeSha256 says whether the deployed code is current."""
    files = {
        "reconciler/__init__.py": b"",
        "reconciler/aws/__init__.py": b"",
        "reconciler/notify/__init__.py": b"",
        "reconciler/notify/slack.py": FORMATTER.read_bytes(),
        "reconciler/aws/slack_function.py": FUNCTION.read_bytes(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def code_sha256() -> str:
    """Lambda's CodeSha256 of the package: base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(function_zip()).digest()).decode()


def _tags(ctx: Context, name: str, labels: dict[str, str]) -> dict[str, str]:
    return {**labels, **ownership_tags(ctx.stack, name)}


def converge(ctx: Context, name: str, want: dict[str, Any], have: dict[str, Any]) -> Step:
    tags = _tags(ctx, name, want["labels"])
    pairs = [{"Key": k, "Value": v} for k, v in tags.items()]
    if want.get("queueName") and (not have or want["queuePolicy"] != have.get("queuePolicy")):
        ctx.aws.client("sqs").create_queue(
            QueueName=want["queueName"],
            Attributes={"Policy": json.dumps(want["queuePolicy"])},
            tags=tags,
        )
    topic = want["targetArn"]
    if want.get("topicName") and want["topicPolicy"] != have.get("topicPolicy"):
        sns = ctx.aws.client("sns")
        if have.get("topicPolicy") is None:
            sns.create_topic(
                Name=want["topicName"],
                Attributes={"Policy": json.dumps(want["topicPolicy"])},
                Tags=pairs,
            )
        else:
            sns.set_topic_attributes(
                TopicArn=topic,
                AttributeName="Policy",
                AttributeValue=json.dumps(want["topicPolicy"]),
            )
    # The function needs its role first.
    put_changed_roles(ctx.aws, want, have, POLICY, tags, ROLE_DESCRIPTION)
    if want.get("slack") and want["slack"] != have.get("slack"):
        step = _put_function(ctx, want, have, tags)
        if isinstance(step, Pending):
            return step
    _subscribe(ctx, topic, want, have)
    rule = want["ruleName"]
    events = ctx.aws.client("events")
    if not have or want["pattern"] != have.get("pattern") or want["state"] != have.get("state"):
        events.put_rule(
            Name=rule,
            EventPattern=json.dumps(want["pattern"]),
            State=want["state"],
            Description=f"reconciler: Batch job state changes for {name}",
            Tags=pairs,
        )
    if not have or (want["targetArn"], want["deadLetterArn"]) != (
        have.get("targetArn"),
        have.get("deadLetterArn"),
    ):
        target: dict[str, Any] = {"Id": TARGET_ID, "Arn": topic}
        if want.get("deadLetterArn"):
            target["DeadLetterConfig"] = {"Arn": want["deadLetterArn"]}
        events.put_targets(Rule=rule, Targets=[target])
    return f"{name} {'updated' if have else 'created'}"


def _subscribe(ctx: Context, topic: str, want: dict[str, Any], have: dict[str, Any]) -> None:
    sns = ctx.aws.client("sns")
    old = set(have.get("subscriptions") or [])
    for entry in sorted(set(want["subscriptions"]) - old):
        protocol, endpoint = entry.split(" ", 1)
        sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
    arns = have.get("subscriptionArns") or {}
    if want.get("topicName"):  # only on our own topic are the subscriptions all ours
        for entry in sorted(old - set(want["subscriptions"])):
            arn = arns.get(entry, "")
            if arn.startswith("arn:"):  # an unconfirmed one has no ARN; SNS drops it itself
                sns.unsubscribe(SubscriptionArn=arn)


def _put_function(
    ctx: Context, want: dict[str, Any], have: dict[str, Any], tags: dict[str, str]
) -> Step:
    lam = ctx.aws.client("lambda")
    slack = want["slack"]
    env = {"Variables": {"SLACK_WEBHOOK_SECRET": slack["secret"]}}
    old = have.get("slack")
    if old:
        if (old.get("secret"), old.get("role")) != (slack["secret"], slack["role"]):
            lam.update_function_configuration(
                FunctionName=slack["function"], Environment=env, Role=slack["role"]
            )
        if old.get("code") != slack["code"]:
            lam.update_function_code(FunctionName=slack["function"], ZipFile=function_zip())
        if not old.get("subscribed"):  # its topic was re-created
            ctx.aws.client("sns").subscribe(
                TopicArn=want["targetArn"], Protocol="lambda", Endpoint=slack["functionArn"]
            )
        return "updated"

    def attempt(c: Context) -> Step:
        try:
            c.aws.client("lambda").create_function(
                FunctionName=slack["function"],
                Runtime=RUNTIME,
                Role=slack["role"],
                Handler=HANDLER,
                Code={"ZipFile": function_zip()},
                Environment=env,
                Timeout=30,
                Tags=tags,
            )
        except ProviderError as exc:
            # IAM is eventually consistent: a role made a moment ago may not be assumable yet.
            if exc.code == "InvalidParameterValueException" and "role" in str(exc).lower():
                return Pending(
                    "waiting for IAM to propagate the Slack role", attempt, 5.0, ROLE_WAIT
                )
            if exc.code != "ResourceConflictException":
                raise
        with contextlib.suppress(ProviderError):  # already granted by an earlier apply
            c.aws.client("lambda").add_permission(
                FunctionName=slack["function"],
                StatementId="sns",
                Action="lambda:InvokeFunction",
                Principal="sns.amazonaws.com",
                SourceArn=want["targetArn"],
            )
        c.aws.client("sns").subscribe(
            TopicArn=want["targetArn"], Protocol="lambda", Endpoint=slack["functionArn"]
        )
        return "created"

    return attempt(ctx)


def delete(ctx: Context, live: dict[str, Any]) -> None:
    """Every part the tool made, the rule first (nothing is sent to a deleted topic)."""
    events = ctx.aws.client("events")
    rule = live["ruleName"]
    with contextlib.suppress(NotFoundError):
        events.remove_targets(Rule=rule, Ids=[TARGET_ID])
    with contextlib.suppress(NotFoundError):
        events.delete_rule(Name=rule)
    slack = live.get("slack")
    if slack:
        with contextlib.suppress(NotFoundError):
            ctx.aws.client("lambda").delete_function(FunctionName=slack["function"])
    for role in live.get("roles") or {}:
        delete_service_role(ctx.aws, role, [POLICY])
    if live.get("topicPolicy") is not None:  # our own topic: its subscriptions go with it
        ctx.aws.client("sns").delete_topic(TopicArn=live["targetArn"])
    else:
        for arn in (live.get("subscriptionArns") or {}).values():
            if arn.startswith("arn:"):
                with contextlib.suppress(NotFoundError):
                    ctx.aws.client("sns").unsubscribe(SubscriptionArn=arn)
    if live.get("queueUrl"):
        with contextlib.suppress(ProviderError):
            ctx.aws.client("sqs").delete_queue(QueueUrl=live["queueUrl"])
