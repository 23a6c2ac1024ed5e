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
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.kinds.base import (
    KindHandler,
    desired_tags,
    request_of,
    spec_dict,
    sync_tags,
    tag_changes_only,
)
from reconciler.models.job_definition import JobDefinition, JobDefinitionSpec

KIND = JobDefinition.KIND
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


class JobDefinitionHandler(KindHandler):
    model = JobDefinition
    spec_model = JobDefinitionSpec

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
            kind=KIND,
            aws_name=latest["jobDefinitionName"],
            arn=latest["jobDefinitionArn"],
            spec=spec,
            owner=owner_of(latest.get("tags")),
            status=latest.get("status"),
            revision=latest["revision"],
            extra={"revisions": [(d["revision"], d["jobDefinitionArn"]) for d in revisions]},
        )

    def desired(self, ctx: Context, res: JobDefinition, plan: Plan) -> dict[str, Any]:
        spec = spec_dict(res)
        cp = spec.get("containerProperties")
        if cp:
            for field in ("jobRoleArn", "executionRoleArn"):
                if cp.get(field):
                    cp[field] = ctx.resolver.role_arn(cp[field])
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def plan_create(
        self, ctx: Context, res: JobDefinition, desired: dict[str, Any], plan: Plan
    ) -> Action:
        return Action.of(
            KIND,
            res.name,
            Verb.CREATE,
            aws_name=res.name,
            summary="revision 1",
            run=lambda c: self._register(c, res.name, desired),
        )

    def plan_change(
        self,
        ctx: Context,
        res: JobDefinition,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        plan: Plan,
    ) -> list[Action]:
        action = Action.of(
            KIND,
            res.name,
            Verb.NOOP,
            aws_name=current.aws_name,
            changes=changes,
            summary=f"revision {current.revision}",
        )
        revisions = list(current.extra["revisions"])
        if changes and tag_changes_only(changes):
            action.verb = Verb.UPDATE
            action.summary = f"tags of revision {current.revision}"
            action.run = lambda c: self._retag(c, current, desired)
        elif changes:
            action.verb = Verb.REVISION
            action.summary = f"new revision after {current.revision}"
            action.run = lambda c: self._register(c, res.name, desired)
            revisions.append((None, None))  # the one about to be registered
        actions = [action]
        excess = revisions[: max(0, len(revisions) - res.spec.revisionHistoryLimit)]
        if excess:
            history = self._deregister_action(
                res.name,
                current,
                [r for r in excess if r[0] is not None],
                f"beyond revisionHistoryLimit {res.spec.revisionHistoryLimit}",
                suffix="history",
            )
            if action.verb.writes:
                history.after.add(action.id)
            actions.append(history)
        return actions

    def plan_delete(self, ctx: Context, name: str, live: Observed, plan: Plan, why: str) -> Action:
        return self._deregister_action(name, live, live.extra["revisions"], why, suffix="delete")

    def _deregister_action(
        self, name: str, live: Observed, revisions: list[tuple[Any, Any]], why: str, suffix: str
    ) -> Action:
        numbers = ", ".join(str(r) for r, _ in revisions)
        arns = [arn for _, arn in revisions]
        return Action.of(
            KIND,
            name,
            Verb.DELETE,
            f"#{suffix}",
            aws_name=live.aws_name,
            summary=f"deregister revision{'s' if len(arns) > 1 else ''} {numbers} ({why})",
            run=lambda c: self._deregister(c, arns),
        )

    # -- carrying out ------------------------------------------------------------------------

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
        return f"{len(arns)} revision{'s' if len(arns) != 1 else ''} deregistered"
