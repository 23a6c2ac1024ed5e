"""JobQueue: its AWS calls, mapping, waits, and the safe way to delete one.

AWS quirks handled here:
- computeEnvironmentOrder takes ARNs; the spec names environments by metadata.name, which the
  planner turns into the AWS name the environment will have (a blue/green replacement's too).
- Deleting a queue terminates its jobs: the plan counts unfinished jobs and refuses unless
  `--drain` (disable, wait for them) or `--force`.
- A queue must be DISABLED before DeleteJobQueue.
- Draining is a pending step like any other wait: it holds no thread.
"""

from __future__ import annotations

import time
from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import spec_changes
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Pending, Step, Work
from reconciler.errors import RetryableError, TerminalError
from reconciler.kinds.base import (
    BUSY,
    STATUS_COLUMNS,
    Column,
    Kind,
    Permission,
    desired_tags,
    request_of,
    spec_dict,
    sync_tags,
)
from reconciler.kinds.polling import Description, StatusPoller, retiring
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.job_queue import JobQueue, JobQueueSpec

UNFINISHED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
# A job-name prefix filter that matches every job: with a filter, ListJobs returns all statuses.
EVERY_JOB = {"name": "JOB_NAME", "values": ["*"]}


def _poller(ctx: Context) -> StatusPoller:
    def describe(names: list[str]) -> dict[str, dict[str, Any]]:
        out = ctx.aws.client("batch").describe_job_queues(jobQueues=names)
        return {q["jobQueueName"]: q for q in out["jobQueues"]}

    return ctx.shared("poller:jq", lambda: StatusPoller(describe))


def _settled(desc: Description) -> bool:
    return desc is None or desc.get("status") not in BUSY


def _valid(name: str) -> Any:
    def then(_ctx: Context, desc: Description) -> str:
        if desc is None:
            raise RetryableError(f"job queue {name} was written but cannot be read back yet")
        if desc.get("status") == "INVALID":
            raise TerminalError(f"job queue {name} is INVALID: {desc.get('statusReason')}")
        return f"{name} {desc.get('status')}"

    return then


def unfinished_jobs(ctx: Context, queue: str, limit: int = 100) -> int:
    """How many jobs deleting the queue would kill (counting stops near `limit`).

    One ListJobs with a name filter returns jobs in every status, so a queue with at most one
    page of jobs costs one call. A busier queue is counted status by status (ListJobs takes one
    at a time), read in the order jobs move through them: a job that moves on between two
    reads is then seen in a later status (perhaps twice), never missed.
    """
    batch = ctx.aws.client("batch")
    page = batch.list_jobs(jobQueue=queue, filters=[EVERY_JOB], maxResults=limit)
    if not page.get("nextToken"):
        summaries = page.get("jobSummaryList") or []
        return sum(1 for j in summaries if j.get("status") in UNFINISHED)
    total = 0
    for status in UNFINISHED:
        page = batch.list_jobs(jobQueue=queue, jobStatus=status, maxResults=limit)
        total += len(page.get("jobSummaryList") or [])
        if total >= limit:
            break
    return min(limit, total)


def ce_arn(ctx: Context, name: str) -> str:
    r = ctx.resolver
    return f"arn:aws:batch:{ctx.aws.region}:{r.account_id}:compute-environment/{name}"


class JobQueueKind(Kind):
    model = JobQueue
    spec_model = JobQueueSpec
    ready_statuses = ("VALID",)
    columns = (*STATUS_COLUMNS, Column("State", "state", description="ENABLED or DISABLED."))
    permissions = (
        Permission(
            "BatchInfrastructure",
            "batch",
            ("CreateJobQueue", "UpdateJobQueue", "DeleteJobQueue"),
            ("job-queue/*", "compute-environment/*"),
        ),
    )

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        pages = ctx.aws.client("batch").get_paginator("describe_job_queues")
        return [
            self.from_aws(raw)
            for page in pages.paginate(PaginationConfig={"PageSize": 100})
            for raw in page["jobQueues"]
        ]

    def from_aws(self, raw: dict[str, Any]) -> Observed:
        order = [
            {"order": e["order"], "computeEnvironment": e["computeEnvironment"].split("/")[-1]}
            for e in raw.get("computeEnvironmentOrder") or []
        ]
        spec = {
            "priority": raw.get("priority"),
            "state": raw.get("state"),
            "computeEnvironmentOrder": order,
            "schedulingPolicyArn": raw.get("schedulingPolicyArn"),
            "jobStateTimeLimitActions": raw.get("jobStateTimeLimitActions"),
            "tags": user_tags(raw.get("tags")),
        }
        return Observed(
            kind=self.name,
            aws_name=raw["jobQueueName"],
            arn=raw["jobQueueArn"],
            spec=spec,
            owner=owner_of(raw.get("tags")),
            status=raw.get("status"),
            status_reason=raw.get("statusReason"),
        )

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        return [
            (ComputeEnvironment.KIND, e["computeEnvironment"])
            for e in live.spec.get("computeEnvironmentOrder") or []
        ]

    def desired(self, ctx: Context, res: JobQueue, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        for entry in spec["computeEnvironmentOrder"]:
            # The name the environment has after the plan: a blue/green replacement's new one.
            entry["computeEnvironment"] = refs.aws_name(
                ComputeEnvironment.KIND, entry["computeEnvironment"]
            )
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    # -- carrying out ------------------------------------------------------------------------

    def _order(self, ctx: Context, desired: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"order": e["order"], "computeEnvironment": ce_arn(ctx, e["computeEnvironment"])}
            for e in desired["computeEnvironmentOrder"]
        ]

    def _settling(self, ctx: Context, name: str, what: str) -> Pending:
        check = _poller(ctx).until(name, _settled, f"job queue {name}", then=_valid(name))
        return Pending(what, check)

    def create(
        self, ctx: Context, res: JobQueue, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        def run(c: Context) -> Step:
            body = request_of(desired)
            body["computeEnvironmentOrder"] = self._order(c, desired)
            c.aws.client("batch").create_job_queue(
                jobQueueName=aws_name, tags=desired["tags"], **body
            )
            return self._settling(c, aws_name, f"creating {aws_name}")

        return Work(run=run)

    def update(
        self,
        ctx: Context,
        res: JobQueue,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        fields = {c.path.split(".")[0] for c in spec_changes(changes)}

        def run(c: Context) -> Step:
            sync_tags(c, current.arn, current.tags, desired["tags"])
            if not fields:
                return f"{current.aws_name} re-tagged"
            request: dict[str, Any] = {"jobQueue": current.aws_name}
            for field in fields:
                if field == "computeEnvironmentOrder":
                    request[field] = self._order(c, desired)
                elif desired.get(field) is not None:
                    request[field] = desired[field]
            c.aws.client("batch").update_job_queue(**request)
            return self._settling(c, current.aws_name, f"updating {current.aws_name}")

        return Work(run=run)

    def wait(self, ctx: Context, current: Observed) -> Work:
        name = current.aws_name
        return Work(
            run=lambda c: self._settling(c, name, f"{name} is settling").check(c),
            summary=f"{name} is {current.status}: waiting for it to settle",
        )

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        work = Work(run=self._deleting(live.aws_name), summary=why, aws_name=live.aws_name)
        jobs = unfinished_jobs(ctx, live.aws_name)
        if jobs:
            shown = f"{jobs}+" if jobs >= 100 else str(jobs)
            if ctx.options.drain:
                work.notes.append(f"{shown} unfinished jobs: draining them first (--drain)")
            elif ctx.options.force:
                work.notes.append(f"{shown} unfinished jobs will be terminated (--force)")
            else:
                work.refused = (
                    f"has {shown} unfinished jobs that deleting would kill; "
                    "use --drain to let them finish, or --force"
                )
        return work

    def _deleting(self, name: str) -> Any:
        def disable(ctx: Context) -> None:
            ctx.aws.client("batch").update_job_queue(jobQueue=name, state="DISABLED")

        def delete(ctx: Context, again: Any) -> Step | None:
            if ctx.options.drain:
                left = unfinished_jobs(ctx, name)
                if left:
                    # The drain has its own deadline (--drain-timeout), longer than a settle.
                    return self._draining(ctx, name, left, again)
            ctx.aws.client("batch").delete_job_queue(jobQueue=name)
            return None

        return retiring(_poller, name, "job queue", disable, delete)

    def _draining(self, ctx: Context, name: str, left: int, then: Any) -> Pending:
        key = f"drain-deadline:{name}"
        deadline = ctx.shared(key, lambda: time.monotonic() + ctx.options.drain_timeout)
        if time.monotonic() > deadline:
            raise RetryableError(
                f"job queue {name}: {left} jobs still unfinished after "
                f"{ctx.options.drain_timeout:.0f}s of draining"
            )
        ctx.log(f"  draining {name}: {left} unfinished jobs")
        patience = ctx.options.drain_timeout + ctx.options.wait_timeout
        return Pending(f"draining {name}: {left} unfinished jobs", then, None, patience)

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["state"] = live.spec.get("state") if live else None
        return out


KINDS = (JobQueueKind(),)
