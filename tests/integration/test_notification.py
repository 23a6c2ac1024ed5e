"""Notification over HTTP to the sandbox: the wiring, and a failed job's message reaching
Slack (a local HTTP endpoint) and an SQS subscriber once per state change."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from reconciler.sandbox import moto_ext
from tests.conftest import client
from tests.integration.test_schedule import task
from tests.stacks import infra, stack


@pytest.fixture
def slack_hook():
    """A local stand-in for Slack's incoming webhook: records each POSTed payload."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", received
    server.shutdown()


@pytest.fixture
def events(aws, monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)
    extensions = moto_ext.installed()
    assert extensions is not None
    monkeypatch.setattr(extensions.clock, "endpoint", aws)
    return extensions.events


def notification(secret: str, queue_arn: str, statuses: str = "[FAILED]", extra: str = "") -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Notification
metadata:
  name: team-alerts
  labels: {{team: data}}
spec:
  statuses: {statuses}
  jobQueues: [main-queue]
  topic: {{create: true}}
  subscriptions:
    - {{protocol: sqs, endpoint: "{queue_arn}"}}
  slack: {{webhookUrlSecret: "{secret}"}}
  deadLetterQueue: {{create: true}}{extra}
"""


def _setup(aws: str, url: str) -> tuple[str, str]:
    secret = client(aws, "secretsmanager").create_secret(Name="slack/webhook", SecretString=url)
    sqs = client(aws, "sqs")
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return secret["ARN"], arn["Attributes"]["QueueArn"]


def _messages(aws: str) -> list[dict]:
    sqs = client(aws, "sqs")
    url = sqs.get_queue_url(QueueName="alerts-inbox")["QueueUrl"]
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []
        if not got:
            return out
        for m in got:
            out.append(json.loads(json.loads(m["Body"])["Message"]))  # SNS envelope
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_wiring_create_noop_and_delete(run, write, aws, slack_hook, events):
    secret, inbox = _setup(aws, slack_hook[0])
    path = write(stack(infra(), notification(secret, inbox)))
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    rules = client(aws, "events").list_rules()["Rules"]
    [rule] = [r for r in rules if r["Name"].startswith("team-alerts-batch-jobs")]
    pattern = json.loads(rule["EventPattern"])
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail-type"] == ["Batch Job State Change"]
    assert pattern["detail"]["status"] == ["FAILED"]
    assert pattern["detail"]["jobQueue"][0].endswith(":job-queue/main-queue")
    [target] = client(aws, "events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert ":sns:" in target["Arn"] and ":sqs:" in target["DeadLetterConfig"]["Arn"]
    attrs = client(aws, "sns").get_topic_attributes(TopicArn=target["Arn"])["Attributes"]
    assert "events.amazonaws.com" in attrs["Policy"]
    subs = client(aws, "sns").list_subscriptions_by_topic(TopicArn=target["Arn"])["Subscriptions"]
    assert sorted(s["Protocol"] for s in subs) == ["lambda", "sqs"]
    function = client(aws, "lambda").get_function(
        FunctionName=rule["Name"].replace("batch-jobs", "slack")
    )
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables == {"SLACK_WEBHOOK_SECRET": secret}  # the ARN, never the URL
    assert slack_hook[0] not in first.out + first.err

    again = run("apply", "-f", path)
    assert again.code == 0, again.out + again.err
    assert again.writes == 0, again.calls

    changed = write(stack(infra(), notification(secret, inbox, statuses="[FAILED, SUCCEEDED]")))
    updated = run("apply", "-f", changed)
    assert updated.code == 0, updated.out + updated.err
    assert (
        updated.calls.get("events:PutRule") == 1
        and "lambda:UpdateFunctionCode" not in updated.calls
    )
    assert run("apply", "-f", changed).writes == 0

    gone = run("delete", "--yes", "-f", changed)
    assert gone.code == 0, gone.out + gone.err
    assert not [r for r in client(aws, "events").list_rules()["Rules"] if r["Name"] == rule["Name"]]
    assert client(aws, "sns").list_topics()["Topics"] == []


def test_a_failed_job_reaches_slack_and_sqs_once_per_state_change(
    srun, write, aws, slack_hook, events
):
    url, received = slack_hook
    secret, inbox = _setup(aws, url)
    failing = task("nightly", submit_on_apply=True, fail=True)
    first = srun("apply", "-f", write(stack(infra(), notification(secret, inbox))))
    assert first.code == 0, first.out + first.err  # the rule exists before the job runs
    path = write(stack(infra(), failing, notification(secret, inbox)))
    applied = srun("apply", "-f", path, "--wait")
    assert applied.code == 1, applied.out + applied.err  # the task failed, as told
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    events.drain()
    assert len(received) == 1, received  # one FAILED state change, one message
    text = received[0]["text"]
    job = client(aws).list_jobs(jobQueue="main-queue", jobStatus="FAILED")["jobSummaryList"][0]
    assert f"*{job['jobName']}* FAILED" in text
    assert f"Job ID: `{job['jobId']}`" in text
    assert "Queue: main-queue" in text
    assert "Log stream: leader/default/" in text
    assert "Reason: Essential container in task exited" in text
    assert "Exit code: 3" in text
    messages = _messages(aws)
    assert [m["detail"]["status"] for m in messages] == ["FAILED"]
    assert messages[0]["detail"]["jobId"] == job["jobId"]
    assert messages[0]["detail-type"] == "Batch Job State Change"


def test_failed_deliveries_go_to_the_dead_letter_queue_and_show_in_get(
    srun, write, aws, slack_hook, events
):
    url, received = slack_hook
    secret, inbox = _setup(aws, url)
    notify = notification(secret, inbox, statuses="[SUCCEEDED]")
    path = write(stack(infra(), notify))
    assert srun("apply", "-f", path).code == 0
    topic = client(aws, "sns").list_topics()["Topics"][0]["TopicArn"]
    client(aws, "sns").delete_topic(TopicArn=topic)  # deleted by hand: deliveries now fail
    client(aws).submit_job(jobName="by-hand", jobQueue="main-queue", jobDefinition="leader")
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and not client(aws).list_jobs(jobQueue="main-queue", jobStatus="SUCCEEDED")[
            "jobSummaryList"
        ]
    ):
        time.sleep(0.1)
    events.drain()
    assert received == []
    got = srun("get", "-f", path, "notification/team-alerts", "-o", "json")
    assert got.code == 0, got.out + got.err
    assert '"failed": 1' in got.out, got.out
    # An apply re-creates the topic, its subscriptions and the Slack function's subscription.
    fixed = srun("apply", "-f", path)
    assert fixed.code == 0, fixed.out + fixed.err
    topic = client(aws, "sns").list_topics()["Topics"][0]["TopicArn"]
    subs = client(aws, "sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Protocol"] for s in subs) == ["lambda", "sqs"]
    assert srun("apply", "-f", path).writes == 0


def test_a_disabled_notification_sends_nothing(srun, write, aws, slack_hook, events):
    url, received = slack_hook
    secret, inbox = _setup(aws, url)
    notify = notification(secret, inbox, statuses="[SUCCEEDED]", extra="\n  state: DISABLED")
    path = write(stack(infra(), notify, task("nightly", submit_on_apply=True)))
    assert srun("apply", "-f", path, "--wait").code == 0
    events.drain()
    assert received == [] and _messages(aws) == []


def test_one_event_per_state_change_and_none_for_the_submission(
    srun, write, aws, slack_hook, events
):
    url, _ = slack_hook
    secret, inbox = _setup(aws, url)
    every = "[SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED]"
    notify = notification(secret, inbox, statuses=every)
    assert srun("apply", "-f", write(stack(infra(), notify))).code == 0  # the rule first
    path = write(stack(infra(), notify, task("nightly", submit_on_apply=True)))
    assert srun("apply", "-f", path, "--wait").code == 0
    events.drain()
    statuses = sorted(m["detail"]["status"] for m in _messages(aws))  # SQS keeps no order
    assert statuses == sorted(["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"])


def test_creating_writes_each_part_once(run, write, aws, slack_hook, events):
    secret, inbox = _setup(aws, slack_hook[0])
    out = run("apply", "-f", write(stack(infra(), notification(secret, inbox))))
    assert out.code == 0, out.out + out.err
    parts = {
        k: n
        for k, n in out.calls.items()
        if k.split(":")[0] in ("iam", "lambda", "sns", "events", "sqs")
    }
    assert parts == {
        "events:DescribeRule": parts.get("events:DescribeRule"),  # reads: however many
        "events:PutRule": 1,
        "events:PutTargets": 1,
        "iam:CreateRole": 1,
        "iam:PutRolePolicy": 1,
        "lambda:CreateFunction": 1,
        "lambda:AddPermission": 1,
        "sns:CreateTopic": 1,
        "sns:Subscribe": 2,
        "sqs:CreateQueue": 1,
    }, out.calls
