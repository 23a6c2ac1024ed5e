"""The limits AWS documents, on the models: absurd values are refused with the limit in the
message, the JSON Schemas and CRDs carry the limits, and the request-size estimates are never
below what botocore would really send (so a request the check lets through fits)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import botocore.session
import pytest
from pydantic import ValidationError

from reconciler import crds, schema
from reconciler.aws.tags import ownership_tags
from reconciler.engine.context import Context, Options
from reconciler.errors import ManifestError
from reconciler.limits import (
    INT32_MAX,
    JOB_DEFINITION_MAX_BYTES,
    MAX_TAGS,
    STACK_MAX,
    SUBMIT_JOB_MAX_BYTES,
)
from reconciler.manifests import validate_documents
from reconciler.manifests.loader import load_text
from reconciler.models.common import OWN_TAGS, RUN_TAGS, request_bytes
from reconciler.models.job_definition import JobDefinition, register_request_bytes
from reconciler.models.pipeline import Pipeline
from reconciler.registry import models
from reconciler.runs import identity, submit

JD = """apiVersion: reconciler.io/v1alpha1
kind: JobDefinition
metadata: {{name: jd}}
spec:
  containerProperties: {{image: {image}, vcpus: {vcpus}, memory: 512}}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        validate_documents(load_text(text, "x.yaml"))
    return [str(p) for p in caught.value.problems]


def test_a_thousand_digit_number_is_refused_at_its_line() -> None:
    assert problems_of(JD.format(image="busybox", vcpus="9" * 1000)) == [
        "x.yaml:5: JobDefinition/jd: spec.containerProperties.vcpus: Input should be less than "
        f"or equal to {INT32_MAX}"
    ]


def test_a_fifty_megabyte_image_is_refused_without_echoing_it() -> None:
    data = {
        "apiVersion": "reconciler.io/v1alpha1",
        "kind": "JobDefinition",
        "metadata": {"name": "jd"},
        "spec": {"containerProperties": {"image": "x" * 50_000_000, "vcpus": 1, "memory": 512}},
    }
    with pytest.raises(ValidationError) as caught:
        JobDefinition.model_validate(data)
    errors = caught.value.errors(include_input=False)
    assert [(e["loc"], e["msg"]) for e in errors] == [
        (("spec", "containerProperties", "image"), "String should have at most 255 characters")
    ]


def test_no_string_anywhere_is_longer_than_the_largest_request() -> None:
    text = JD.format(image="busybox", vcpus=1) + f"  parameters: {{p: {'v' * 40_000}}}\n"
    assert problems_of(text) == [
        "x.yaml:6: JobDefinition/jd: spec.parameters.p: String should have at most 30720 characters"
    ]


@pytest.mark.parametrize("kind", list(models()))
def test_the_json_schemas_and_crds_carry_the_limits(kind: str) -> None:
    text = json.dumps(schema.json_schemas()[f"{kind}.json"])
    crd = json.dumps(crds.crd(models()[kind]))
    for document in (text, crd):
        assert '"maxLength": 128' in document, "metadata.name"
        if kind == "JobDefinition":
            assert '"maxLength": 255' in document, "the image"
            assert f'"maximum": {INT32_MAX}' in document, "vcpus and memory"
        if kind in ("Pipeline", "Task"):
            assert '"maximum": 10000' in document, "array sizes"


def test_the_tool_counts_its_own_tags_right() -> None:
    assert len(ownership_tags("s", "n")) == OWN_TAGS
    run = Pipeline.model_validate(
        {
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": {"jobQueue": "q", "tasks": [{"name": "t", "jobDefinition": "jd"}]},
        }
    )
    assert len(identity.run_tags(run, "s", "t", "r")) == RUN_TAGS


def test_labels_and_spec_tags_count_together() -> None:
    labels = ", ".join(f"l{i}: v" for i in range(MAX_TAGS - OWN_TAGS))
    text = (
        "apiVersion: reconciler.io/v1alpha1\nkind: JobDefinition\n"
        f"metadata: {{name: jd, labels: {{{labels}}}}}\n"
        "spec:\n  containerProperties: {image: busybox, vcpus: 1, memory: 512}\n"
    )
    assert validate_documents(load_text(text, "x.yaml")).resources  # exactly 50 with ours
    assert problems_of(text + "  tags: {one: more}\n") == [
        "x.yaml:6: JobDefinition/jd: spec.tags: 48 tags with metadata.labels, and the tool adds "
        "3 of its own: AWS allows 50 a resource"
    ]


# -- the request-size estimates, against the bodies botocore would send ---------------------


def body_size(operation: str, params: dict[str, Any]) -> int:
    """The size of the request body botocore serialises for `operation` (no call is made)."""
    client = botocore.session.get_session().create_client(
        "batch", region_name="us-gov-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    model = client.meta.service_model.operation_model(operation)
    request = client._serializer.serialize_to_request(params, model)
    return len(request["body"])


def large_definition(env: int) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "kind": "JobDefinition",
            "metadata": {"name": "j" * 128, "labels": {f"label{i}": "v" * 200 for i in range(20)}},
            "spec": {
                "containerProperties": {
                    "image": "busybox",
                    "vcpus": 1,
                    "memory": 512,
                    "jobRoleArn": "BatchJobRole",
                    "executionRoleArn": "service-role/ecsTaskExecutionRole",
                    "environment": [{"name": f"V{i}", "value": "é" * 90} for i in range(env)],
                },
                "tags": {f"tag{i}": "w" * 256 for i in range(20)},
            },
        }
    )


@pytest.mark.parametrize("env", [0, 10, 60, 200])
def test_the_job_definition_estimate_is_never_below_the_real_request(env: int) -> None:
    res = large_definition(env)
    spec = res.spec.model_dump(mode="json", exclude_none=True)
    spec.pop("revisionHistoryLimit")
    cp = spec["containerProperties"]
    for field in ("jobRoleArn", "executionRoleArn"):  # as the resolver turns names into ARNs
        cp[field] = f"arn:aws-us-gov:iam::123456789012:role/{cp[field]}"
    tags = {**res.metadata.labels, **spec.pop("tags"), **ownership_tags("s" * STACK_MAX, res.name)}
    real = body_size("RegisterJobDefinition", {"jobDefinitionName": res.name, "tags": tags, **spec})
    estimate = register_request_bytes(res)
    assert real <= estimate <= real + 1024, (real, estimate)
    assert bool(res.request_problems()) == (estimate > JOB_DEFINITION_MAX_BYTES)


def test_the_submit_job_estimate_is_never_below_the_real_request(ctx: Context) -> None:
    ctx = Context(aws=ctx.aws, options=Options(stack="s" * STACK_MAX))
    deps = [{"task": f"d{i}"} for i in range(25)]  # more than 20: barriers stand in for them
    pipeline = Pipeline.model_validate(
        {
            "kind": "Pipeline",
            "metadata": {"name": "p" * 128, "labels": {f"l{i}": "v" * 200 for i in range(10)}},
            "spec": {
                "jobQueue": "q" * 128,
                "tasks": [
                    *({"name": f"d{i}", "jobDefinition": "jd"} for i in range(25)),
                    {
                        "name": "t" * 64,
                        "jobDefinition": "jd",
                        "dependsOn": deps,
                        "parameters": {f"p{i}": "x" * 300 for i in range(80)},
                        "tags": {f"t{i}": "y" * 256 for i in range(20)},
                        "timeout": {"attemptDurationSeconds": 600},
                    },
                ],
            },
        }
    )
    units = submit.expand(pipeline.task_list())
    ids = {u.key: str(uuid.uuid4()) for u in units}
    unit = next(u for u in units if u.key == "t" * 64)
    request = submit._request(ctx, pipeline, "0123456789", unit, "q" * 128, ids)
    real = body_size("SubmitJob", request)
    problems = pipeline.request_problems()
    assert len(problems) == 1 and problems[0][0] == "spec.tasks.25", problems
    estimate = int(problems[0][1].split("about ")[1].split(" bytes")[0].replace(",", ""))
    assert real <= estimate <= real + 2048, (real, estimate)
    assert estimate > SUBMIT_JOB_MAX_BYTES
    assert request_bytes(request) <= estimate
