"""JobDefinition: revisions, registered only when the spec really changed.

AWS quirks handled here:
- Revisions are immutable: a changed spec registers a new one; tags alone are re-tagged in
  place on the latest revision. An unchanged spec registers nothing (batchbeagle registered on
  every run, leaving thousands of revisions).
- ACTIVE revisions beyond `revisionHistoryLimit` are deregistered, oldest first, after the
  new one exists; deregistered revisions vanish for good after 180 days.
- Read by name with status ACTIVE: one call per name, the latest revision is the current one.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import tags_only
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Verb, Work
from reconciler.kinds.base import (
    STATUS_COLUMNS,
    Column,
    Kind,
    Permission,
    desired_tags,
    request_of,
    spec_dict,
    sync_tags,
)
from reconciler.models.job_definition import JobDefinition, JobDefinitionSpec

SPEC_FIELDS = (
    "type",
    "parameters",
    "containerProperties",
    "nodeProperties",
    "retryStrategy",
    "timeout",
    "platformCapabilities",
    "propagateTags",
    "schedulingPriority",
)


def _group(raws: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in raws:
        by_name[raw["jobDefinitionName"]].append(raw)
    return by_name


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


class JobDefinitionKind(Kind):
    model = JobDefinition
    spec_model = JobDefinitionSpec
    busy_statuses = ()  # registering is instant: a revision is ACTIVE or INACTIVE
    ready_statuses = ("ACTIVE",)
    columns = (
        *STATUS_COLUMNS,
        Column("Revision", "revision", "integer", "The current ACTIVE revision."),
    )
    permissions = (
        Permission(
            "BatchInfrastructure",
            "batch",
            ("RegisterJobDefinition", "DeregisterJobDefinition"),
            ("job-definition/*",),
        ),
    )

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        pages = ctx.aws.client("batch").get_paginator("describe_job_definitions")
        if everything:
            raws = [
                d
                for p in pages.paginate(status="ACTIVE", PaginationConfig={"PageSize": 100})
                for d in p["jobDefinitions"]
            ]
        else:

            def read(name: str) -> list[dict[str, Any]]:
                return [
                    d
                    for p in pages.paginate(jobDefinitionName=name, status="ACTIVE")
                    for d in p["jobDefinitions"]
                ]

            names = [r.name for r in declared]
            with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
                raws = [d for found in pool.map(read, names) for d in found]
        return [self.from_aws(revs) for revs in _group(raws).values()]

    def from_aws(self, revisions: list[dict[str, Any]]) -> Observed:
        revisions = sorted(revisions, key=lambda d: d["revision"])
        latest = revisions[-1]
        spec = {k: latest.get(k) for k in SPEC_FIELDS}
        spec["tags"] = user_tags(latest.get("tags"))
        return Observed(
            kind=self.name,
            aws_name=latest["jobDefinitionName"],
            arn=latest["jobDefinitionArn"],
            spec=spec,
            owner=owner_of(latest.get("tags")),
            status=latest.get("status"),
            revision=latest["revision"],
            extra={"revisions": [(d["revision"], d["jobDefinitionArn"]) for d in revisions]},
        )

    def desired(self, ctx: Context, res: JobDefinition, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        cp = spec.get("containerProperties")
        if cp:
            for field in ("jobRoleArn", "executionRoleArn"):
                if cp.get(field):
                    cp[field] = ctx.resolver.role_arn(cp[field])
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    # -- carrying out ------------------------------------------------------------------------

    def create(
        self, ctx: Context, res: JobDefinition, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        return Work(run=lambda c: self._register(c, aws_name, desired), summary="revision 1")

    def update(
        self,
        ctx: Context,
        res: JobDefinition,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        # Revisions are immutable: any spec change is a new revision; tags alone are re-tagged.
        if tags_only(changes):
            return Work(
                run=lambda c: self._retag(c, current, desired),
                summary=f"tags of revision {current.revision}",
            )
        return Work(
            run=lambda c: self._register(c, res.name, desired),
            summary=f"new revision after {current.revision}",
            verb=Verb.REVISION,
        )

    def unchanged(self, ctx: Context, res: JobDefinition, current: Observed) -> Work:
        return Work(summary=f"revision {current.revision}")

    def housekeeping(
        self, ctx: Context, res: JobDefinition, current: Observed, main: Verb
    ) -> list[Work]:
        """ACTIVE revisions beyond revisionHistoryLimit, oldest first, after the new one."""
        revisions = list(current.extra["revisions"])
        limit = res.spec.revisionHistoryLimit
        registering = 1 if main is Verb.REVISION else 0
        excess = revisions[: max(0, len(revisions) + registering - limit)]
        if not excess:
            return []
        return [
            self._deregistering(current, excess, f"beyond revisionHistoryLimit {limit}", "history")
        ]

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        return self._deregistering(live, live.extra["revisions"], why, "delete")

    def _deregistering(
        self, live: Observed, revisions: list[tuple[Any, Any]], why: str, suffix: str
    ) -> Work:
        numbers = ", ".join(str(r) for r, _ in revisions)
        arns = [arn for _, arn in revisions]
        return Work(
            run=lambda c: self._deregister(c, arns),
            summary=f"deregister revision{_plural(len(arns))} {numbers} ({why})",
            suffix=f"#{suffix}",
            aws_name=live.aws_name,
        )

    def _register(self, ctx: Context, name: str, desired: dict[str, Any]) -> str:
        out = ctx.aws.client("batch").register_job_definition(
            jobDefinitionName=name, tags=desired["tags"], **request_of(desired)
        )
        return f"{name}:{out['revision']} registered"

    def _retag(self, ctx: Context, current: Observed, desired: dict[str, Any]) -> str:
        sync_tags(ctx, current.arn, current.tags, desired["tags"])
        return f"{current.aws_name}:{current.revision} re-tagged"

    def _deregister(self, ctx: Context, arns: list[str]) -> str:
        batch = ctx.aws.client("batch")
        for arn in arns:
            batch.deregister_job_definition(jobDefinition=arn)
        return f"{len(arns)} revision{_plural(len(arns))} deregistered"

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["revision"] = live.revision if live else None
        return out


KINDS = (JobDefinitionKind(),)
