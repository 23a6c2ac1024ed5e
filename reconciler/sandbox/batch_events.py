"""The sandbox's Batch events: a `Batch Job State Change` on every status change, delivered.

As in AWS, the submission itself (SUBMITTED) makes no event; every later change does.

moto emits no Batch events, and its EventBridge cannot deliver to SNS (PutEvents raises), so
a Notification could not be tried on the sandbox. `BatchEvents` (one per server, made by
`moto_ext.install()`) is told of every status change by the job scheduler and, on a thread of
its own (so delivery never slows the jobs), builds the event AWS would send (the detail is
the job as DescribeJobs shows it) and hands it to every ENABLED rule of the account's default
bus whose pattern matches (moto's own matcher):
- an SNS topic target: each subscription gets the event, as EventBridge's SNS target sends it;
  SQS, HTTP and email subscriptions through moto (SQS and HTTP(S) are real deliveries); a
  Lambda subscription that is a Notification's Slack function runs the shipped formatter in
  this process (moto's Lambda needs Docker), reading the webhook URL from the sandbox's
  Secrets Manager or SSM as the function would. A message for the sandbox's own stand-in
  webhook (seed.SLACK_SINK_URL, the example stack's secret) is kept instead of posted: in
  `slack_messages` and, for a sandbox server, as a line of `slack.jsonl` in its state directory;
- an SQS queue target: the event as the message.
A delivery that fails goes to the target's dead-letter queue, with the error, as in AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.notify import slack
from reconciler.sandbox.schedule_firing import ScheduleClock
from reconciler.sandbox.seed import SLACK_SINK_URL

SLACK_FILE = "slack.jsonl"  # in the server's state directory: messages for the stand-in

log = logging.getLogger(__name__)


@dataclass(eq=False)
class BatchEvents:
    clock: ScheduleClock  # knows the server's URL, for reading secrets as a function would
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (target, job status)
    slack_messages: list[dict[str, Any]] = field(default_factory=list)  # for the stand-in
    _queue: queue.Queue[tuple[str, str, dict[str, Any]]] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def changed(self, job: Any) -> None:
        """Called by the job scheduler (under its lock) when a job's status changes."""
        backend = job.job_queue.backend
        if not self._listening(backend.account_id, backend.region_name):
            return  # no rule to deliver to: do not describe every job of every array
        try:
            detail = job.describe()
        except Exception:  # a job half-made by a reset: no event
            return
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Batch Job State Change",
            "source": "aws.batch",
            "account": backend.account_id,
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": backend.region_name,
            "resources": [job.arn],
            "detail": detail,
        }
        self._queue.put((backend.account_id, backend.region_name, event))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="sandbox-batch-events", daemon=True
                )
                self._thread.start()

    @staticmethod
    def _listening(account: str, region: str) -> bool:
        from moto.events.models import events_backends

        # dict.get, not [...]: looking must not create a backend, under the scheduler's lock.
        backend = (dict.get(events_backends, account) or {}).get(region)
        bus = backend.event_buses.get("default") if backend is not None else None
        return bool(bus and bus.rules)

    def drain(self, timeout: float = 10.0) -> None:
        """Waits until every event so far is delivered (tests)."""
        done = threading.Event()
        self._queue.put(("", "", {"_done": done}))
        done.wait(timeout)

    def _loop(self) -> None:
        while True:
            account, region, event = self._queue.get()
            if "_done" in event:
                event["_done"].set()
                continue
            try:
                self.deliver(account, region, event)
            except Exception:
                log.exception("sandbox events: delivering %s", event.get("id"))

    def deliver(self, account: str, region: str, event: dict[str, Any]) -> None:
        from moto.events.models import events_backends

        backend = events_backends[account][region]
        bus = backend.event_buses.get("default")
        for rule in list(bus.rules.values()) if bus else []:
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):
                continue  # AWS: a DISABLED rule delivers nothing (moto's would)
            for target in list(rule.targets):
                try:
                    self._send(account, region, target["Arn"], event)
                    self.delivered.append((target["Arn"], str(event["detail"].get("status"))))
                except Exception as exc:
                    log.warning("sandbox events: %s: %s", target["Arn"], exc)
                    self._dead_letter(account, region, target, event, str(exc))

    def _send(self, account: str, region: str, arn: str, event: dict[str, Any]) -> None:
        service = arn.split(":")[2]
        if service == "sns":
            self._publish(account, region, arn, event)
        elif service == "sqs":
            from moto.sqs.models import sqs_backends

            sqs_backends[account][region].send_message(arn.rsplit(":", 1)[1], json.dumps(event))
        else:
            raise ValueError(f"the sandbox does not deliver Batch events to {service}")

    def _publish(self, account: str, region: str, topic: str, event: dict[str, Any]) -> None:
        from moto.sns.models import sns_backends

        sns = sns_backends[account][region]
        sns.get_topic(topic)  # an unknown topic fails the delivery (dead-letter queue)
        message, message_id = json.dumps(event), str(uuid.uuid4())
        subscriptions, _ = sns.list_subscriptions_by_topic(topic_arn=topic)
        for subscription in subscriptions:
            if subscription.protocol == "lambda":
                self._slack(account, region, subscription.endpoint, event)
            elif subscription.protocol in ("sqs", "http", "https"):
                subscription.publish(message, message_id)

    def _slack(self, account: str, region: str, function_arn: str, event: dict[str, Any]) -> None:
        """What the shipped Slack function does, in this process."""
        from moto.awslambda.models import lambda_backends

        try:
            function = lambda_backends[account][region].get_function(function_arn)
        except Exception:  # gone since it was subscribed: nothing runs, as in AWS
            return
        variables = function.environment_vars or {}
        secret = variables.get(slack.SECRET_ENV)
        if not secret:
            return  # not a Notification's Slack function: moto's Lambda would need Docker
        client = self.clock._client("ssm" if ":ssm:" in secret else "secretsmanager", region)
        if ":ssm:" in secret:
            name = "/" + secret.split(":parameter/", 1)[1]
            value = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        else:
            value = client.get_secret_value(SecretId=secret)["SecretString"]
        url, payload = slack.webhook_from(value), slack.message(event)
        if url != SLACK_SINK_URL:
            slack.post(url, payload)
            return
        self.slack_messages.append(payload)
        directory = self.clock.config.server_dir
        if directory:
            with (Path(directory) / SLACK_FILE).open("a") as sink:
                sink.write(json.dumps(payload) + "\n")

    def _dead_letter(
        self, account: str, region: str, target: dict[str, Any], event: dict[str, Any], error: str
    ) -> None:
        arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not arn:
            return
        from moto.sqs.models import sqs_backends

        attrs = {"ERROR_MESSAGE": {"DataType": "String", "StringValue": error[:1000]}}
        try:
            sqs_backends[account][region].send_message(
                arn.rsplit(":", 1)[1], json.dumps(event), message_attributes=attrs
            )
        except Exception as exc:
            log.warning("sandbox events: dead-letter queue %s: %s", arn, exc)
