"""JobDefinition: revisions, registered only when the spec really changed.

AWS quirks handled here:
- Revisions are immutable: a changed spec registers a new one; tags alone are re-tagged in
  place on the latest revision. An unchanged spec registers nothing (batchbeagle registered on
  every run, leaving thousands of revisions).
- ACTIVE revisions beyond `revisionHistoryLimit` are deregistered, oldest first, after the
  new one exists, and lose the ownership tags (else the tagging API lists them, and a no-op
  reads them, for 180 days, when deregistered revisions vanish for good).
- Read by name with status ACTIVE: one call per name, the latest revision is the current one.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.aws import tags
from reconciler.aws.once import write_once
from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import tags_only
from reconciler.engine.diff import Change, diff
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Verb, Work
from reconciler.errors import ProviderError
from reconciler.kinds.base import (
    STATUS_COLUMNS,
    Column,
    Kind,
    Permission,
    desired_tags,
    request_of,
    resolve_environment,
    spec_dict,
    sync_tags,
)
from reconciler.models.bucket import Bucket
from reconciler.models.job_definition import JobDefinition, JobDefinitionSpec
from reconciler.models.role import Role

BATCH = 100  # job definitions per DescribeJobDefinitions
OWNERSHIP_KEYS = tuple(tags.ownership_tags("", ""))  # dropped from retired revisions
BY_NAME_AT_MOST = 10  # more names not found by tags: list the account's ACTIVE definitions
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


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])


def _group(raws: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in raws:
        by_name[raw["jobDefinitionName"]].append(raw)
    return by_name


def _last_revisions(ctx: Context) -> dict[str, int]:
    """Name -> the highest revision observed in this context, INACTIVE ones included: AWS
    numbers a new revision on from it, even after every revision was deregistered."""
    return ctx.shared("job-definition-last-revisions", dict)  # type: ignore[no-any-return]


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


class JobDefinitionKind(Kind):
    model = JobDefinition
    api_shapes = {"": ("batch", "RegisterJobDefinitionRequest")}
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
        """The ACTIVE revisions of the declared names (of every owned name if `everything`).

        What this stack owns is found by its tags (Resource Groups Tagging API, 100 ARNs a
        page) and read by ARN (DescribeJobDefinitions, 100 a call), so a no-op re-apply costs
        a few calls whatever else the account holds. Names not found that way (new, or owned by
        someone else: a conflict to report) are read by name, or by listing the account's
        ACTIVE definitions when there are many of them.
        """
        names = {r.name for r in declared}
        owned = self._owned_revisions(ctx)
        if not everything:
            owned = {n: arns for n, arns in owned.items() if n in names}
        raws = self._by_arn(ctx, owned)
        found = {d["jobDefinitionName"] for d in raws}
        missing = sorted(names - found)
        if missing:
            raws += self._by_name(ctx, missing)
        unique = {d["jobDefinitionArn"]: d for d in raws}
        seen = _last_revisions(ctx)
        for d in unique.values():  # INACTIVE ones too: AWS numbers on from the last of any
            seen[d["jobDefinitionName"]] = max(seen.get(d["jobDefinitionName"], 0), d["revision"])
        active = [d for d in unique.values() if d.get("status") == "ACTIVE"]
        return [self.from_aws(revs) for revs in _group(active).values()]

    def observe_all(self, ctx: Context) -> list[Observed]:
        """Every ACTIVE definition in the account, whoever registered it (`export
        --unowned`): listed 100 a page."""
        pages = ctx.aws.client("batch").get_paginator("describe_job_definitions")
        active = [
            d
            for p in pages.paginate(status="ACTIVE", PaginationConfig={"PageSize": 100})
            for d in p["jobDefinitions"]
        ]
        return [self.from_aws(revs) for revs in _group(active).values()]

    def _owned_revisions(self, ctx: Context) -> dict[str, list[str]]:
        """Name -> ARNs of every revision tagged as this stack's (deregistered ones too)."""
        pages = ctx.aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
        filters = [
            {"Key": tags.MANAGED_BY, "Values": [tags.TOOL]},
            {"Key": tags.STACK, "Values": [ctx.stack]},
        ]
        out: dict[str, list[str]] = defaultdict(list)
        for page in pages.paginate(
            TagFilters=filters,
            ResourceTypeFilters=["batch:job-definition"],
            ResourcesPerPage=100,
        ):
            for item in page["ResourceTagMappingList"]:
                name, _, _rev = item["ResourceARN"].rsplit("/", 1)[-1].partition(":")
                out[name].append(item["ResourceARN"])
        return out

    def _by_arn(self, ctx: Context, owned: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The owned revisions, read 100 at a time. The tagging index may lag behind a revision
        registered moments ago, so each name's next revision is asked for too: found, it is
        read (and the one after), so the current revision is never missed."""
        batch = ctx.aws.client("batch")
        latest = {n: max(_revision(a) for a in arns) for n, arns in owned.items()}
        todo = [a for arns in owned.values() for a in arns]
        todo += [f"{n}:{r + 1}" for n, r in latest.items()]
        out: list[dict[str, Any]] = []
        while todo:
            chunk, todo = todo[:BATCH], todo[BATCH:]
            found = batch.describe_job_definitions(jobDefinitions=chunk)["jobDefinitions"]
            for d in found:
                out.append(d)
                name, rev = d["jobDefinitionName"], d["revision"]
                if rev > latest.get(name, rev):
                    latest[name] = rev
                    todo.append(f"{name}:{rev + 1}")
        return out

    def _by_name(self, ctx: Context, names: list[str]) -> list[dict[str, Any]]:
        pages = ctx.aws.client("batch").get_paginator("describe_job_definitions")
        if len(names) > BY_NAME_AT_MOST:
            wanted = set(names)
            return [
                d
                for p in pages.paginate(status="ACTIVE", PaginationConfig={"PageSize": 100})
                for d in p["jobDefinitions"]
                if d["jobDefinitionName"] in wanted
            ]

        def read(name: str) -> list[dict[str, Any]]:
            # Every status: a name deregistered earlier still decides the next revision's
            # number (observe keeps only the ACTIVE ones as the live definition).
            return [d for p in pages.paginate(jobDefinitionName=name) for d in p["jobDefinitions"]]

        with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
            return [d for found in pool.map(read, names) for d in found]

    def from_aws(self, revisions: list[dict[str, Any]]) -> Observed:
        revisions = sorted(revisions, key=lambda d: d["revision"])
        latest = revisions[-1]
        spec = {k: latest.get(k) for k in SPEC_FIELDS}
        spec["tags"] = user_tags(latest.get("tags"))
        # A revision registered by hand on top of ours carries no ownership tags: the
        # definition is still ours (its latest owned revision says so); the hand-made revision
        # is drift, and the next apply registers ours on top of it.
        owners = [o for d in reversed(revisions) if (o := owner_of(d.get("tags")))]
        return Observed(
            kind=self.name,
            aws_name=latest["jobDefinitionName"],
            arn=latest["jobDefinitionArn"],
            spec=spec,
            owner=owners[0] if owners else None,
            status=latest.get("status"),
            revision=latest["revision"],
            extra={
                "revisions": [(d["revision"], d["jobDefinitionArn"]) for d in revisions],
                "foreign": owners and owner_of(latest.get("tags")) is None,
            },
        )

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        """The roles the latest revision runs its jobs with."""
        cp = live.spec.get("containerProperties") or {}
        arns = [cp.get("jobRoleArn"), cp.get("executionRoleArn")]
        return [(Role.KIND, str(a).rsplit("/", 1)[-1]) for a in arns if a]

    def desired(self, ctx: Context, res: JobDefinition, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        cp = spec.get("containerProperties")
        if cp:
            for field in ("jobRoleArn", "executionRoleArn"):
                if isinstance(cp.get(field), dict):
                    cp[field] = refs.output(ctx, Role.KIND, cp[field]["role"], "arn")
                elif cp.get(field):
                    cp[field] = ctx.resolver.role_arn(cp[field])
            resolve_environment(ctx, refs, cp.get("environment"), Bucket.KIND)
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    # -- carrying out ------------------------------------------------------------------------

    def create(
        self, ctx: Context, res: JobDefinition, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        last = _last_revisions(ctx).get(aws_name, 0)
        return Work(
            run=lambda c: self._register(c, aws_name, desired, last),
            summary=f"revision {last + 1}"
            + (f" (AWS numbers on from deregistered revision {last})" if last else ""),
        )

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
        after = current.revision or 0
        last = max(after, _last_revisions(ctx).get(current.aws_name, 0))
        work = Work(
            run=lambda c: self._register(c, res.name, desired, after),
            summary=f"revision {last + 1} (after {after})",
            verb=Verb.REVISION,
        )
        if current.extra.get("foreign"):
            work.notes.append(
                f"revision {current.revision} was registered outside reconciler: "
                "registering the declared spec on top of it"
            )
        return work

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
        work = self._deregistering(
            current, excess, f"beyond revisionHistoryLimit {limit}", "history", disown=True
        )
        return [work]

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        return self._deregistering(live, live.extra["revisions"], why, "delete")

    def _deregistering(
        self,
        live: Observed,
        revisions: list[tuple[Any, Any]],
        why: str,
        suffix: str,
        disown: bool = False,
    ) -> Work:
        numbers = ", ".join(str(r) for r, _ in revisions)
        arns = [arn for _, arn in revisions]
        return Work(
            run=lambda c: self._deregister(c, arns, disown),
            summary=f"deregister revision{_plural(len(arns))} {numbers} ({why})",
            suffix=f"#{suffix}",
            aws_name=live.aws_name,
        )

    def _register(self, ctx: Context, name: str, desired: dict[str, Any], after: int) -> str:
        """Registers a revision after `after`. RegisterJobDefinition is not idempotent: a lost
        reply is checked (is there a newer revision with exactly this spec?) before sending
        again, so it never leaves an extra revision."""
        once = ctx.aws.client("batch", retries=False)

        def registered() -> dict[str, Any] | None:
            pages = ctx.aws.client("batch").get_paginator("describe_job_definitions")
            for p in pages.paginate(jobDefinitionName=name, status="ACTIVE"):
                for d in p["jobDefinitions"]:
                    spec = {k: d.get(k) for k in SPEC_FIELDS}
                    spec["tags"] = user_tags(d.get("tags"))
                    if d["revision"] > after and not diff(desired, spec, self.spec_model):
                        return {"revision": d["revision"]}
            return None

        out = write_once(
            lambda: once.register_job_definition(
                jobDefinitionName=name, tags=desired["tags"], **request_of(desired)
            ),
            registered,
        )
        return f"{name}:{out['revision']} registered"

    def _retag(self, ctx: Context, current: Observed, desired: dict[str, Any]) -> str:
        sync_tags(ctx, current.arn, current.tags, desired["tags"])
        return f"{current.aws_name}:{current.revision} re-tagged"

    def _deregister(self, ctx: Context, arns: list[str], disown: bool) -> str:
        """With `disown`, a revision retired from the history also loses its ownership tags,
        after it is deregistered: the tagging API lists deregistered revisions for as long as
        they carry them, so every later plan would read each one again, and a definition
        updated a thousand times would cost a no-op a thousand reads. One write each, once.
        (A delete keeps them: the stack's last revision numbers are still found by its tags.)
        Should AWS refuse to untag a deregistered revision, it stays as it was: read, not lost."""
        batch = ctx.aws.client("batch")
        for arn in arns:
            batch.deregister_job_definition(jobDefinition=arn)
            if disown:
                try:
                    batch.untag_resource(resourceArn=arn, tagKeys=list(OWNERSHIP_KEYS))
                except ProviderError as e:
                    if e.code != "ClientException":
                        raise
        return f"{len(arns)} revision{_plural(len(arns))} deregistered"

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["revision"] = live.revision if live else None
        return out


KINDS = (JobDefinitionKind(),)
