"""The sandbox answers the Resource Groups Tagging API and `name:revision` lookups for Batch, as
AWS does; driven with plain boto3, as any other client would."""

from __future__ import annotations

from tests.conftest import client

CONTAINER = {"image": "busybox", "vcpus": 1, "memory": 128}


def test_tagged_batch_resources_are_listed_by_tag_and_type(aws):
    batch = client(aws)
    tagged = batch.register_job_definition(
        jobDefinitionName="tagged-def",
        type="container",
        containerProperties=CONTAINER,
        tags={"team": "tagging-test"},
    )
    batch.register_job_definition(
        jobDefinitionName="untagged-def", type="container", containerProperties=CONTAINER
    )
    tagging = client(aws, "resourcegroupstaggingapi")
    found = tagging.get_resources(
        TagFilters=[{"Key": "team", "Values": ["tagging-test"]}],
        ResourceTypeFilters=["batch:job-definition"],
    )["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in found] == [tagged["jobDefinitionArn"]]
    assert found[0]["Tags"] == [{"Key": "team", "Value": "tagging-test"}]
    other_type = tagging.get_resources(
        TagFilters=[{"Key": "team", "Values": ["tagging-test"]}],
        ResourceTypeFilters=["batch:job-queue"],
    )["ResourceTagMappingList"]
    assert other_type == []


def test_job_definitions_are_described_by_name_and_revision(aws):
    batch = client(aws)
    for image in ("busybox:1", "busybox:2"):
        batch.register_job_definition(
            jobDefinitionName="by-revision",
            type="container",
            containerProperties={**CONTAINER, "image": image},
        )
    found = batch.describe_job_definitions(jobDefinitions=["by-revision:2", "by-revision:9"])
    assert [
        (d["revision"], d["containerProperties"]["image"]) for d in found["jobDefinitions"]
    ] == [(2, "busybox:2")]
