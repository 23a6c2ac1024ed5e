"""Batch job state changes, formatted for Slack and posted to an incoming webhook.

Standard library only: this module is shipped in the Lambda function a Notification deploys
(with reconciler/aws/slack_function.py, its handler, which reads the webhook URL), and the
sandbox runs the same `message` and `post` in-process. The fields are the seed's: job name,
status, job ID, queue, log stream, and for a failure the reason and the exit code.

The same `fields` serve `apply --wait` / `get --watch` and the operator when they follow a
run (`line`: one line of text for a terminal or a Kubernetes event): a job followed there
is a DescribeJobs description, which is what an event's `detail` is (`of_job`).

The webhook URL is a secret: it is read at run time from Secrets Manager or SSM Parameter
Store (`SLACK_WEBHOOK_SECRET` holds the ARN, never the URL), and it is never logged.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

SECRET_ENV = "SLACK_WEBHOOK_SECRET"
TIMEOUT = 10.0
ICONS = {"SUCCEEDED": ":white_check_mark:", "FAILED": ":x:", "RUNNING": ":arrow_forward:"}


def fields(event: dict[str, Any]) -> dict[str, Any]:
    """What the message shows, from a `Batch Job State Change` event."""
    detail = event.get("detail") or {}
    attempts = detail.get("attempts") or []
    container = detail.get("container") or {}
    last = (attempts[-1].get("container") or {}) if attempts else {}
    out: dict[str, Any] = {
        "jobName": detail.get("jobName"),
        "status": detail.get("status"),
        "jobId": detail.get("jobId"),
        "jobQueue": str(detail.get("jobQueue") or "").rsplit("/", 1)[-1],
        "logStreamName": container.get("logStreamName") or last.get("logStreamName"),
    }
    if detail.get("status") == "FAILED":
        out["statusReason"] = detail.get("statusReason")
        code = container.get("exitCode", last.get("exitCode"))
        out["exitCode"] = code
    return out


def message(event: dict[str, Any]) -> dict[str, Any]:
    """The Slack payload: one line of summary, then the fields."""
    f = fields(event)
    icon = ICONS.get(str(f["status"]), ":information_source:")
    lines = [
        f"{icon} *{f['jobName']}* {f['status']}",
        f"Job ID: `{f['jobId']}`",
        f"Queue: {f['jobQueue']}",
        f"Log stream: {f['logStreamName'] or '(none yet)'}",
    ]
    if "statusReason" in f:
        lines.append(f"Reason: {f['statusReason'] or '(none)'}")
        lines.append(f"Exit code: {f['exitCode'] if f['exitCode'] is not None else '(none)'}")
    return {"text": "\n".join(lines)}


def of_job(job: dict[str, Any]) -> dict[str, Any]:
    """A DescribeJobs description as the event AWS sends for its state (its `detail`)."""
    return {"detail-type": "Batch Job State Change", "source": "aws.batch", "detail": job}


def line(event: dict[str, Any]) -> str:
    """The message's fields on one line, for a terminal or a Kubernetes event."""
    f = fields(event)
    text = (
        f"{f['status']} job {f['jobName']} ({f['jobId']}), queue {f['jobQueue']}, "
        f"log stream {f['logStreamName'] or '(none yet)'}"
    )
    if "statusReason" in f:
        code = f["exitCode"] if f["exitCode"] is not None else "(none)"
        text += f"; reason: {f['statusReason'] or '(none)'}; exit code: {code}"
    return text


def post(url: str, payload: dict[str, Any]) -> int:
    """POSTs the payload to the webhook; returns the HTTP status. The URL is never logged."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("the webhook secret does not hold an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
        return int(reply.status)


def webhook_from(value: str) -> str:
    """The URL from a secret's value: the URL itself, or JSON with a `url`/`webhookUrl` key."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        return str(data.get("url") or data.get("webhookUrl") or "")
    return value
