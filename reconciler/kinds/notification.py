"""Notification: an EventBridge rule on Batch job state changes, to SNS and Slack; AWS calls.

What one Notification owns (`_names`): the rule (tagged: the rule's tags are the ownership),
a created topic (with a policy letting events.amazonaws.com publish to it), the subscriptions,
the Slack function (reconciler/notify/slack.py, zipped) and its role (may read the webhook
secret and write its logs, nothing else), a created dead-letter queue (EventBridge may send to
it, for this rule only). Writing is `notify.wiring.converge`: only what differs.

AWS quirks handled here:
- An email subscription stays "PendingConfirmation" (no ARN) until its owner confirms it: it
  is compared by protocol and endpoint, never by ARN.
- The Slack function is deployed from this package's files (notify/wiring.py `function_zip`).
- SNS's Lambda subscription and the function's resource policy are the Slack part's own:
  they are not listed among `subscriptions`.
- `reconciler get` shows how many events the dead-letter queue holds (failed deliveries).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from reconciler.aws.lookups import partition_of
from reconciler.aws.tags import NAME, owner_of
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Work
from reconciler.errors import NotFoundError, ProviderError
from reconciler.kinds.base import Column, Kind, Permission
from reconciler.models.job_queue import JobQueue
from reconciler.models.notification import Notification
from reconciler.models.role import normal_document, trust_document
from reconciler.notify import wiring

LAMBDA, EVENTS = "lambda.amazonaws.com", "events.amazonaws.com"
RULE_SUFFIX = "-batch-jobs"


class NotificationView(BaseModel):
    """What is compared."""

    pattern: dict[str, Any] | None = None
    state: str | None = None
    targetArn: str | None = None
    deadLetterArn: str | None = None
    topicPolicy: dict[str, Any] | None = None
    queuePolicy: dict[str, Any] | None = None
    subscriptions: list[str] | None = None
    slack: dict[str, Any] | None = None
    roles: dict[str, Any] | None = None


def _short(text: str, limit: int, stack: str) -> str:
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    return f"{text[: limit - 7]}-{digest}"


def _names(stack: str, name: str) -> dict[str, str]:
    return {
        "rule": _short(name + RULE_SUFFIX, 64, stack),
        "topic": _short(name + RULE_SUFFIX, 256, stack),
        "queue": _short(f"{name}-dlq", 80, stack),
        "slack": _short(f"{name}-slack", 64, stack),
    }


def _document(raw: Any) -> dict[str, Any]:
    return dict(json.loads(raw) if isinstance(raw, str) else raw or {})


class NotificationKind(Kind):
    model = Notification
    spec_model = NotificationView
    busy_statuses = ()
    ready_statuses = ("ENABLED", "DISABLED")
    columns = (
        Column("Statuses", "statuses", description="Job states notified."),
        Column("State", "state", description="The rule: ENABLED or DISABLED."),
        Column("Failed", "failed", "integer", "Events the dead-letter queue holds."),
        Column("Topic", "topic", description="The SNS topic.", priority=1),
    )
    permissions = (
        Permission(
            "NotificationRules",
            "events",
            (
                "DescribeRule",
                "ListTargetsByRule",
                "ListTagsForResource",
                "PutRule",
                "PutTargets",
                "RemoveTargets",
                "DeleteRule",
                "TagResource",  # PutRule with Tags
            ),
            ("rule/*",),
        ),
        # ListRules (--prune finds owned rules) supports no resource-level permissions.
        Permission("NotificationRuleListing", "events", ("ListRules",), ("*",)),
        Permission(
            "NotificationTopics",
            "sns",
            (
                "CreateTopic",
                "GetTopicAttributes",
                "SetTopicAttributes",
                "DeleteTopic",
                "Subscribe",
                "Unsubscribe",
                "ListSubscriptionsByTopic",
                "TagResource",
            ),
            ("*-batch-jobs-*",),  # the topics this kind names (_names) and their subscriptions
        ),
        Permission(
            "NotificationFunctions",
            "lambda",
            (
                "GetFunction",
                "CreateFunction",
                "UpdateFunctionCode",
                "UpdateFunctionConfiguration",
                "DeleteFunction",
                "AddPermission",
                "TagResource",
            ),
            ("function:*-slack-*",),
        ),
        Permission(
            "NotificationRoles",
            "iam",
            (
                "GetRole",
                "GetRolePolicy",
                "CreateRole",
                "TagRole",
                "PutRolePolicy",
                "UpdateAssumeRolePolicy",
                "DeleteRolePolicy",
                "DeleteRole",
            ),
            ("arn:{partition}:iam::{account}:role/*-slack-*",),
        ),
        Permission(
            "NotificationQueues",
            "sqs",
            ("CreateQueue", "GetQueueUrl", "GetQueueAttributes", "DeleteQueue", "TagQueue"),
            ("*-dlq-*",),
        ),
    )

    # -- reading -------------------------------------------------------------------------------

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        names = {r.name: r for r in declared}
        if everything:
            events = ctx.aws.client("events")
            for page in events.get_paginator("list_rules").paginate():
                for rule in page["Rules"]:
                    name, _, _ = rule["Name"].rpartition(RULE_SUFFIX)
                    if name and rule["Name"] == _names(ctx.stack, name)["rule"]:
                        names.setdefault(name, None)
        with ThreadPoolExecutor(max_workers=max(1, ctx.options.parallelism)) as pool:
            found = pool.map(lambda n: self._read(ctx, n, names[n]), sorted(names))
            return [o for o in found if o is not None]

    def _read(self, ctx: Context, name: str, res: Notification | None) -> Observed | None:
        events, parts = ctx.aws.client("events"), _names(ctx.stack, name)
        try:
            rule = events.describe_rule(Name=parts["rule"])
        except NotFoundError:
            return None
        ctx.resolver.learn_account(rule["Arn"])
        tags = {
            t["Key"]: t["Value"]
            for t in events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags") or []
        }
        targets = events.list_targets_by_rule(Rule=parts["rule"]).get("Targets") or []
        target = next((t for t in targets if t.get("Id") == wiring.TARGET_ID), {})
        topic = target.get("Arn")
        spec: dict[str, Any] = {
            "pattern": _document(rule.get("EventPattern")),
            "state": rule.get("State"),
            "targetArn": topic,
            "deadLetterArn": (target.get("DeadLetterConfig") or {}).get("Arn"),
            "ruleName": parts["rule"],
        }
        own_topic = bool(topic) and topic.endswith(":" + parts["topic"])
        wanted = {f"{s.protocol} {s.endpoint}" for s in res.spec.subscriptions} if res else set()
        try:
            subs, slack_subscribed = self._topic(ctx, spec, topic, own_topic, wanted, parts)
        except ProviderError as exc:
            # SNS answers a missing topic with the code "NotFound" (not ...NotFoundException):
            # deleted by hand, it is drift that an apply re-creates.
            if not (isinstance(exc, NotFoundError) or exc.code == "NotFound"):
                raise
            subs, slack_subscribed = {}, False
        spec["subscriptions"] = sorted(subs)
        spec["subscriptionArns"] = subs
        spec["slack"], spec["roles"] = self._slack(ctx, parts["slack"])
        if spec["slack"]:
            spec["slack"]["subscribed"] = slack_subscribed
        spec.update(self._queue(ctx, parts["queue"], spec["deadLetterArn"]))
        return Observed(
            kind=self.name,
            aws_name=name,
            arn=rule["Arn"],
            spec=spec,
            owner=owner_of(tags),
            status=rule.get("State"),
        )

    def _topic(
        self,
        ctx: Context,
        spec: dict[str, Any],
        topic: str | None,
        own_topic: bool,
        wanted: set[str],
        parts: dict[str, str],
    ) -> tuple[dict[str, str], bool]:
        """The topic's policy (ours only) into `spec`; its subscriptions that are ours, and
        whether the Slack function is subscribed."""
        if not topic:
            return {}, False
        sns = ctx.aws.client("sns")
        if own_topic:
            attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
            spec["topicPolicy"] = _document(attrs.get("Policy"))
        subs: dict[str, str] = {}
        slack_subscribed = False
        slack_arn = f"function:{parts['slack']}"
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
            for s in page["Subscriptions"]:
                entry = f"{s['Protocol']} {s['Endpoint']}"
                if s["Protocol"] == "lambda" and s["Endpoint"].endswith(slack_arn):
                    slack_subscribed = True
                elif own_topic or entry in wanted:
                    subs[entry] = s["SubscriptionArn"]
        return subs, slack_subscribed

    def _slack(
        self, ctx: Context, name: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        try:
            config = ctx.aws.client("lambda").get_function(FunctionName=name)["Configuration"]
        except NotFoundError:
            return None, None
        iam = ctx.aws.client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
            policy = iam.get_role_policy(RoleName=name, PolicyName=wiring.POLICY)["PolicyDocument"]
            roles = {
                name: {
                    "trust": normal_document(_document(role.get("AssumeRolePolicyDocument"))),
                    "policy": normal_document(_document(policy)),
                }
            }
        except NotFoundError:
            roles = None
        variables = (config.get("Environment") or {}).get("Variables") or {}
        slack = {
            "function": name,
            "functionArn": config["FunctionArn"],
            "role": config.get("Role"),
            "secret": variables.get("SLACK_WEBHOOK_SECRET"),
            "code": config.get("CodeSha256"),
        }
        return slack, roles

    def _queue(self, ctx: Context, queue: str, dead_letter: str | None) -> dict[str, Any]:
        if not dead_letter:
            return {}
        sqs = ctx.aws.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=dead_letter.rsplit(":", 1)[-1])["QueueUrl"]
        except ProviderError:
            return {}
        names = ["ApproximateNumberOfMessages", "Policy"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        out: dict[str, Any] = {"failed": int(attrs.get("ApproximateNumberOfMessages") or 0)}
        if dead_letter.endswith(":" + queue):
            out["queueUrl"] = url
            out["queuePolicy"] = _document(attrs.get("Policy"))
        return out

    # -- desired -------------------------------------------------------------------------------

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        """The queues its rule listens to: deleting one is refused while the rule names it."""
        detail = (live.spec.get("pattern") or {}).get("detail") or {}
        return [(JobQueue.KIND, str(q).rsplit("/", 1)[-1]) for q in detail.get("jobQueue") or []]

    def desired(self, ctx: Context, res: Notification, refs: Refs) -> dict[str, Any]:
        spec, parts = res.spec, _names(ctx.stack, res.name)
        region, partition = ctx.aws.region, partition_of(ctx.aws.region)
        account = ctx.resolver.account_id
        arn = f"arn:{partition}:{{}}:{region}:{account}:{{}}"
        rule_arn = arn.format("events", f"rule/{parts['rule']}")
        detail: dict[str, Any] = {"status": list(spec.statuses)}
        if spec.jobQueues:
            detail["jobQueue"] = [
                arn.format("batch", f"job-queue/{refs.aws_name(JobQueue.KIND, q)}")
                for q in spec.jobQueues
            ]
        if spec.pipelines:
            detail["tags"] = {NAME: list(spec.pipelines)}
        pattern = {
            "source": ["aws.batch"],
            "detail-type": ["Batch Job State Change"],
            "detail": detail,
        }
        created = spec.topic.create
        topic = arn.format("sns", parts["topic"]) if created else str(spec.topic.arn)
        topic_policy = None
        if created:
            topic_policy = normal_document(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgePublishes",
                            "Effect": "Allow",
                            "Principal": {"Service": EVENTS},
                            "Action": "sns:Publish",
                            "Resource": topic,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                }
            )
        dlq = queue_policy = None
        if spec.deadLetterQueue is not None:
            dlq = spec.deadLetterQueue.arn or arn.format("sqs", parts["queue"])
            if spec.deadLetterQueue.create:
                queue_policy = normal_document(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "EventBridgeDeadLetters",
                                "Effect": "Allow",
                                "Principal": {"Service": EVENTS},
                                "Action": "sqs:SendMessage",
                                "Resource": dlq,
                                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                            }
                        ],
                    }
                )
        slack = roles = None
        if spec.slack is not None:
            secret = spec.slack.webhookUrlSecret
            read = ["ssm:GetParameter"] if ":ssm:" in secret else ["secretsmanager:GetSecretValue"]
            resources = [secret] if ":ssm:" in secret else [secret, secret + "-??????"]
            logs = arn.format("logs", f"log-group:/aws/lambda/{parts['slack']}:*")
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    # A secret's ARN ends in six random characters; a policy names it
                    # with "-??????" (AWS's advice) when the manifest gives the ARN without.
                    {"Effect": "Allow", "Action": read, "Resource": resources},
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                        ],
                        "Resource": logs,
                    },
                ],
            }
            role_arn = f"arn:{partition}:iam::{account}:role/{parts['slack']}"
            roles = {
                parts["slack"]: {
                    "trust": trust_document([LAMBDA]),
                    "policy": normal_document(policy),
                }
            }
            slack = {
                "function": parts["slack"],
                "functionArn": arn.format("lambda", f"function:{parts['slack']}"),
                "role": role_arn,
                "secret": secret,
                "code": wiring.code_sha256(),
                "subscribed": True,
            }
        return {
            "pattern": pattern,
            "state": spec.state,
            "targetArn": topic,
            "deadLetterArn": dlq,
            "topicPolicy": topic_policy,
            "queuePolicy": queue_policy,
            "subscriptions": sorted(f"{s.protocol} {s.endpoint}" for s in spec.subscriptions),
            "slack": slack,
            "roles": roles,
            # Not compared: what carrying out needs.
            "ruleName": parts["rule"],
            "topicName": parts["topic"] if created else None,
            "queueName": parts["queue"] if queue_policy else None,
            "labels": dict(res.metadata.labels),
        }

    # -- carrying out --------------------------------------------------------------------------

    def create(
        self, ctx: Context, res: Notification, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        return Work(run=lambda c: wiring.converge(c, res.name, desired, {}))

    def update(
        self,
        ctx: Context,
        res: Notification,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        fields = sorted({c.path.split(".", 1)[0] for c in changes})
        have = current.spec
        return Work(
            run=lambda c: wiring.converge(c, res.name, desired, have), summary=", ".join(fields)
        )

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        def run(c: Context) -> str:
            wiring.delete(c, live.spec)
            return f"{live.aws_name} deleted"

        return Work(run=run, summary=why, aws_name=live.aws_name)

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["statuses"] = ",".join(res.spec.statuses) if res is not None else None
        out["state"] = live.spec.get("state") if live else None
        out["failed"] = live.spec.get("failed", 0) if live else None
        out["topic"] = live.spec.get("targetArn") if live else None
        return out


KINDS = (NotificationKind(),)
