"""Fixtures shared by the pure unit tests: no network, no moto, no AWS call."""

from __future__ import annotations

import pytest

from reconciler.aws.clients import Aws, AwsConfig
from reconciler.engine.context import Context
from reconciler.engine.types import Plan


@pytest.fixture
def ctx() -> Context:
    # Creating the boto3 session (and clients, lazily) makes no AWS call.
    return Context(
        aws=Aws(AwsConfig(region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))
    )


@pytest.fixture
def plan() -> Plan:
    return Plan(stack="default", region="us-east-1")
