"""Replies as `aws/clients.py` hands them out: a key the reply lacks is a MalformedReplyError
naming the operation and the place, and a reply botocore cannot parse is one too; neither is a
KeyError or a traceback. Stubbed with botocore's Stubber, or a tiny HTTP server for bodies
botocore must parse (tests/integration/test_replies.py goes through the CLI and moto)."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from reconciler.aws.clients import Aws, AwsConfig
from reconciler.aws.errors import translate
from reconciler.aws.lookups import Resolver
from reconciler.aws.replies import Reply, reply
from reconciler.engine.context import Context
from reconciler.errors import MalformedReplyError, RetryableError
from reconciler.models.job_definition import JobDefinition
from reconciler.registry import kinds


def test_a_missing_key_names_the_operation_and_the_place() -> None:
    out = reply({"jobs": [{"jobId": "j1", "container": {}}]}, "DescribeJobs")
    assert out["jobs"][0]["jobId"] == "j1"
    assert out["jobs"][0].get("status") is None, ".get() still tolerates absence"
    with pytest.raises(MalformedReplyError) as caught:
        out["jobs"][0]["container"]["exitCode"]
    assert str(caught.value) == (
        "DescribeJobs: the reply jobs[0].container has no 'exitCode': is the endpoint an AWS "
        "API, and did the reply arrive whole?"
    )
    assert caught.value.operation == "DescribeJobs"
    assert isinstance(caught.value, RetryableError)
    with pytest.raises(MalformedReplyError, match="DescribeJobs: the reply has no 'nextToken'"):
        out["nextToken"]


def test_a_reply_is_a_plain_dict_to_everything_else() -> None:
    data = {"a": [{"b": 1}], "c": {"d": None}}
    out = reply(data, "Op")
    assert out == data and isinstance(out, dict)
    assert json.loads(json.dumps(out)) == data
    clone = copy.deepcopy(out)
    assert clone == data and isinstance(clone, Reply)
    with pytest.raises(MalformedReplyError):
        clone["missing"]
    assert {**out} == data and dict(out) == data


@pytest.fixture
def aws() -> Aws:
    return Aws(AwsConfig(region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))


def stubbed(aws: Aws, service: str, *responses: tuple[str, dict[str, Any]]) -> Stubber:
    stub = Stubber(aws.client(service).unwrapped())
    for method, response in responses:
        stub.add_response(method, response)
    stub.activate()
    return stub


def test_calls_and_pages_both_hand_out_replies(aws: Aws) -> None:
    stubbed(aws, "batch", ("describe_job_queues", {}), ("describe_job_definitions", {}))
    batch = aws.client("batch")
    with pytest.raises(MalformedReplyError, match=r"^DescribeJobQueues: the reply has no"):
        batch.describe_job_queues()["jobQueues"]
    pages = batch.get_paginator("describe_job_definitions").paginate()
    with pytest.raises(MalformedReplyError, match=r"^DescribeJobDefinitions: the reply has no"):
        [d for p in pages for d in p["jobDefinitions"]]


def test_observing_job_definitions_from_an_empty_reply(aws: Aws) -> None:
    """The reported case: a DescribeJobDefinitions answer without `jobDefinitions` (here for a
    name the stack's tags do not list, which is read by name)."""
    stubbed(aws, "resourcegroupstaggingapi", ("get_resources", {"ResourceTagMappingList": []}))
    stubbed(aws, "batch", ("describe_job_definitions", {}))
    res = JobDefinition.model_validate(
        {
            "kind": "JobDefinition",
            "metadata": {"name": "jd"},
            "spec": {"containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512}},
        }
    )
    with pytest.raises(MalformedReplyError) as caught:
        kinds()["JobDefinition"].observe(Context(aws=aws), [res], False)
    assert "DescribeJobDefinitions: the reply has no 'jobDefinitions'" in str(caught.value)


def test_lookups_from_empty_replies(aws: Aws) -> None:
    stubbed(aws, "sts", ("get_caller_identity", {}))
    stubbed(aws, "ec2", ("describe_subnets", {}))
    resolver = Resolver(aws)
    with pytest.raises(MalformedReplyError, match="GetCallerIdentity: the reply has no 'Account'"):
        resolver.role_arn("BatchJobRole")
    # The default VPC is read from its default subnets (one call answers both).
    with pytest.raises(MalformedReplyError, match="DescribeSubnets: the reply has no 'Subnets'"):
        resolver.default_vpc()


# -- bodies botocore cannot parse, from a tiny HTTP server -----------------------------------


@pytest.fixture
def endpoint() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"body": b"{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = state["body"]
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()


def client_for(url: str) -> Aws:
    config = AwsConfig(
        region="us-east-1",
        endpoint_url=url,
        max_attempts=1,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    return Aws(config)


@pytest.mark.parametrize(
    ("service", "method", "body"),
    [
        ("batch", "describe_compute_environments", b'{"computeEnvironments": "x"}'),
        ("batch", "describe_compute_environments", b'{"computeEnvironments": [1]}'),
        ("batch", "describe_job_definitions", b'{"jobDefinitions": [{"revision": "two"}]}'),
        ("sts", "get_caller_identity", b""),
        ("sts", "get_caller_identity", b"<Response></Response>"),
        ("ec2", "describe_vpcs", b"<DescribeVpcsResponse><vpcSet>"),
    ],
    ids=["str-for-list", "int-for-map", "str-for-int", "empty-xml", "no-result", "cut-xml"],
)
def test_a_body_that_cannot_be_parsed(
    service: str, method: str, body: bytes, endpoint: dict[str, Any]
) -> None:
    endpoint["body"] = body
    client = client_for(endpoint["url"]).client(service)
    operation = client.meta.method_to_api_mapping[method]
    with pytest.raises(MalformedReplyError) as caught:
        getattr(client, method)()
    assert str(caught.value).startswith(f"{operation}: the reply could not be read (")
    assert "\n" not in str(caught.value)


def test_a_revision_without_its_name(endpoint: dict[str, Any]) -> None:
    """Items of a reply too: botocore lets even members the model requires be absent."""
    # The one body answers every call: the tagging read finds nothing of the stack's, so the
    # declared name is read by name, and its revision lacks the name.
    endpoint["body"] = b'{"ResourceTagMappingList": [], "jobDefinitions": [{"revision": 1}]}'
    ctx = Context(aws=client_for(endpoint["url"]))
    res = JobDefinition.model_validate(
        {
            "kind": "JobDefinition",
            "metadata": {"name": "jd"},
            "spec": {"containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512}},
        }
    )
    with pytest.raises(MalformedReplyError) as caught:
        kinds()["JobDefinition"].observe(ctx, [res], False)
    # The first key the reader needs is the one named (the revision's ARN, then its name).
    assert "DescribeJobDefinitions: the reply jobDefinitions[0] has no '" in str(caught.value)


def test_errors_raised_elsewhere_are_not_taken_for_bad_replies() -> None:
    try:
        {}["key"]
    except KeyError as exc:
        assert translate(exc, "DescribeJobs") is exc
