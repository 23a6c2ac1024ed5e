"""The Notification's Lambda handler: SNS messages holding Batch events, posted to Slack.

It runs in AWS Lambda, under the function's own role (kinds/notification.py grants it the
webhook secret and its logs, nothing else), never in the reconciler's process: that is why
the policy the reconciler needs leaves its calls out (aws/policy.py EXCLUDED). The package
the function is deployed from holds this module and reconciler/notify/slack.py, the
standard-library formatter (notify/wiring.py `function_zip`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from reconciler.notify import slack


def webhook_url(arn: str) -> str:
    """The URL the secret (Secrets Manager) or the SecureString parameter (SSM) holds."""
    if ":ssm:" in arn:
        name = "/" + arn.split(":parameter/", 1)[1]
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
        return slack.webhook_from(value["Parameter"]["Value"])
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    return slack.webhook_from(secret["SecretString"])


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    url = webhook_url(os.environ[slack.SECRET_ENV])
    sent = 0
    for record in event.get("Records") or []:
        slack.post(url, slack.message(json.loads(record["Sns"]["Message"])))
        sent += 1
    return {"sent": sent}
