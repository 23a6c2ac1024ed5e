"""The Resource Groups Tagging API answers for Batch resources, as it does in AWS.

moto's GetResources walks only the backends that mix in its tagging interface, and its Batch
backend does not: Batch resources were invisible there. AWS lists compute environments, job
queues, job definitions (every revision), scheduling policies and jobs by their tags, and the
reconciler reads what a stack owns that way (one call per 100 resources instead of one per
name). The patch adds the Batch backend's resources after moto's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.batch.models import batch_backends
from moto.core.resource_tagging import TaggedResource
from moto.resourcegroupstaggingapi import models as tagging_models
from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend
from moto.utilities.tagging_service import TaggingService

from reconciler.sandbox.patching import Patcher

# Batch's collections on its moto backend, and the tagging API's resource type for each.
COLLECTIONS = (
    ("_compute_environments", "batch:compute-environment"),
    ("_job_queues", "batch:job-queue"),
    ("_job_definitions", "batch:job-definition"),
    ("_scheduling_policies", "batch:scheduling-policy"),
    ("_jobs", "batch:job"),
)


class TaggingPatches:
    def install(self, patcher: Patcher) -> None:
        self._original = patcher.replace(
            ResourceGroupsTaggingAPIBackend, "_get_resources_generator", self.resources
        )
        self._page = patcher.replace(ResourceGroupsTaggingAPIBackend, "get_resources", self.page)

    def page(self, backend: ResourceGroupsTaggingAPIBackend, **kwargs: Any) -> Any:
        # AWS: a page is bounded by ResourcesPerPage or by TagsPerPage, not both; moto applies
        # its default tag bound (100) to every page, so 100 resources of 4 tags came back 25 a
        # page. A page that asks for a resource count gets that count.
        if kwargs.get("resources_per_page", 50) != 50 and kwargs.get("tags_per_page") == 100:
            kwargs["tags_per_page"] = 10**9
        return self._page(backend, **kwargs)

    def resources(
        self,
        backend: ResourceGroupsTaggingAPIBackend,
        tag_filters: list[dict[str, Any]] | None = None,
        resource_type_filters: list[str] | None = None,
        resource_arn_list: list[str] | None = None,
    ) -> Iterator[TaggedResource]:
        yield from self._original(backend, tag_filters, resource_type_filters, resource_arn_list)
        matcher = tagging_models.make_tag_matcher(tag_filters)
        for resource in self._batch(backend.account_id, backend.region_name):
            # AWS: like every service, only tagged (or once tagged) resources are listed.
            if not resource.tags:
                continue
            if not tagging_models.match_resource_type(
                resource.resource_type, resource_type_filters
            ):
                continue
            if not matcher(resource.tags):
                continue
            if resource_arn_list and resource.arn not in resource_arn_list:
                continue
            yield resource

    def _batch(self, account_id: str, region: str) -> Iterator[TaggedResource]:
        if account_id not in batch_backends or region not in batch_backends[account_id]:
            return
        batch = batch_backends[account_id][region]
        tagger: TaggingService = batch.tagger
        for attr, resource_type in COLLECTIONS:
            for item in list(getattr(batch, attr, {}).values()):
                arn = getattr(item, "arn", None)
                if arn:
                    tags = tagger.get_tag_dict_for_resource(arn)
                    yield TaggedResource(arn=arn, tags=tags, resource_type=resource_type)
