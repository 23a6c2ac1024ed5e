"""The operator's service models lose their documentation and nothing else (aws/lean.py)."""

from __future__ import annotations

from typing import Any

import boto3.session

from reconciler.aws.lean import KEPT, UNREAD, lean_models, without_docs


def _session() -> Any:
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _keys(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        found |= set(data)
        for value in data.values():
            found |= _keys(value)
    elif isinstance(data, list):
        for value in data:
            found |= _keys(value)
    return found


def test_without_docs_drops_documentation_at_any_depth() -> None:
    data = {
        "documentation": "<p>x</p>",
        "shapes": {"A": {"members": {"b": {"shape": "B", "documentation": "y"}}, "min": 1}},
        "list": [{"documentationUrl": "u", "name": "n"}],
    }
    assert without_docs(data) == {
        "shapes": {"A": {"members": {"b": {"shape": "B"}}, "min": 1}},
        "list": [{"name": "n"}],
    }


def test_a_member_named_documentation_is_a_member_not_documentation() -> None:
    shape = {"members": {"documentationUrl": {"shape": "S", "documentation": "d"}}}
    assert without_docs({"shapes": {"A": shape}}) == {
        "shapes": {"A": {"members": {"documentationUrl": {"shape": "S"}}}}
    }
    # every member of every service survives (launch-wizard's documentationUrl among them)
    loader = _session()._session.get_component("data_loader")
    full = loader.load_service_model("launch-wizard", "service-2")
    lean = without_docs(full)
    for name, original in full["shapes"].items():
        assert set(lean["shapes"][name].get("members", {})) == set(original.get("members", {}))


def test_a_lean_session_has_the_same_model_without_documentation() -> None:
    full = _session()._session.get_component("data_loader").load_service_model("ec2", "service-2")
    lean = _session()
    lean_models(lean._session)
    loader = lean._session.get_component("data_loader")
    model = loader.load_service_model("ec2", "service-2")
    assert not _keys({k: v for k, v in model.items() if k not in KEPT}) & UNREAD
    assert _keys(full) & UNREAD  # what was dropped was there
    assert model == without_docs(full)  # and nothing else went
    # other data files (paginators, endpoint rules) are untouched
    assert loader.load_service_model("ec2", "paginators-1")["pagination"]
    client = lean.client("ec2")
    operation = client.meta.service_model.operation_model("DescribeSubnets")
    assert "Filters" in operation.input_shape.members
    assert operation.documentation == ""


def test_every_service_the_operator_uses_makes_clients_that_resolve_their_parameters() -> None:
    """botocore indexes some documentation itself (a client context parameter's): those stay."""
    lean = _session()
    lean_models(lean._session)
    for service in ("s3", "ec2", "batch", "iam", "sts", "resourcegroupstaggingapi", "sqs"):
        model = lean.client(service).meta.service_model
        for param in model.client_context_parameters:  # a KeyError when stripped
            assert param.name
    s3 = lean.client("s3").meta.service_model
    assert {p.name for p in s3.client_context_parameters} >= {"ForcePathStyle"}
