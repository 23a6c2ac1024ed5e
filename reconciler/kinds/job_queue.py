"""JobQueue: its AWS calls, mapping, waits, and the safe way to delete one.

AWS quirks handled here:
- computeEnvironmentOrder takes ARNs; the spec names environments by metadata.name, which the
  planner turns into the AWS name the environment will have (a blue/green replacement's too).
- Deleting a queue terminates its jobs: the plan counts unfinished jobs and refuses unless
  `--drain` (disable, wait for them) or `--force`.
- A queue must be DISABLED before DeleteJobQueue.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.aws.waiting import StatusPoller
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.errors import RetryableError, TerminalError
from reconciler.kinds.base import KindHandler, desired_tags, request_of, spec_dict, sync_tags
from reconciler.models.job_queue import JobQueue, JobQueueSpec

KIND = JobQueue.KIND
UNFINISHED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


def _poller(ctx: Context) -> StatusPoller:
    def describe(names: list[str]) -> dict[str, dict[str, Any]]:
        out = ctx.aws.client("batch").describe_job_queues(jobQueues=names)
        return {q["jobQueueName"]: q for q in out["jobQueues"]}

    return ctx.shared("poller:jq", lambda: StatusPoller(describe))


def _wait_settled(ctx: Context, name: str) -> dict[str, Any] | None:
    desc = _poller(ctx).wait(
        name,
        lambda d: d is None or d.get("status") not in ("CREATING", "UPDATING", "DELETING"),
        ctx.options.wait_timeout,
        f"job queue {name} to settle",
    )
    if desc is not None and desc.get("status") == "INVALID":
        raise TerminalError(f"job queue {name} is INVALID: {desc.get('statusReason')}")
    return desc


def unfinished_jobs(ctx: Context, queue: str, limit: int = 100) -> int:
    """How many jobs deleting the queue would kill (counting stops near `limit`).

    ListJobs takes one status at a time: the five are read concurrently.
    """
    batch = ctx.aws.client("batch")

    def count(status: str) -> int:
        page = batch.list_jobs(jobQueue=queue, jobStatus=status, maxResults=limit)
        return len(page["jobSummaryList"])

    with ThreadPoolExecutor(max_workers=len(UNFINISHED)) as pool:
        return min(limit, sum(pool.map(count, UNFINISHED)))


def ce_arn(ctx: Context, name: str) -> str:
    r = ctx.resolver
    return f"arn:aws:batch:{ctx.aws.region}:{r.account_id}:compute-environment/{name}"


class JobQueueHandler(KindHandler):
    model = JobQueue
    spec_model = JobQueueSpec

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
            kind=KIND,
            aws_name=raw["jobQueueName"],
            arn=raw["jobQueueArn"],
            spec=spec,
            owner=owner_of(raw.get("tags")),
            status=raw.get("status"),
            status_reason=raw.get("statusReason"),
        )

    def desired(self, ctx: Context, res: JobQueue, plan: Plan) -> dict[str, Any]:
        spec = spec_dict(res)
        for entry in spec["computeEnvironmentOrder"]:
            key = ("ComputeEnvironment", entry["computeEnvironment"])
            entry["computeEnvironment"] = plan.targets.get(key, entry["computeEnvironment"])
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def plan_create(
        self, ctx: Context, res: JobQueue, desired: dict[str, Any], plan: Plan
    ) -> Action:
        return Action.of(
            KIND,
            res.name,
            Verb.CREATE,
            aws_name=res.name,
            run=lambda c: self._create(c, res.name, desired),
        )

    def plan_change(
        self,
        ctx: Context,
        res: JobQueue,
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
        )
        if changes:
            action.verb = Verb.UPDATE
            action.run = lambda c: self._update(c, current, desired, changes)
        return [action]

    def plan_delete(self, ctx: Context, name: str, live: Observed, plan: Plan, why: str) -> Action:
        action = Action.of(
            KIND,
            name,
            Verb.DELETE,
            f"#delete:{live.aws_name}",
            aws_name=live.aws_name,
            summary=why,
            run=lambda c: self._delete(c, live),
        )
        jobs = unfinished_jobs(ctx, live.aws_name)
        if jobs:
            shown = f"{jobs}+" if jobs >= 100 else str(jobs)
            if ctx.options.drain:
                action.notes.append(f"{shown} unfinished jobs: draining them first (--drain)")
            elif ctx.options.force:
                action.notes.append(f"{shown} unfinished jobs will be terminated (--force)")
            else:
                action.verb = Verb.REFUSED
                action.summary = (
                    f"has {shown} unfinished jobs that deleting would kill; "
                    "use --drain to let them finish, or --force"
                )
        return action

    def link(self, plan: Plan) -> None:
        """A queue is created or changed after the environments it will point at exist."""
        ce_actions = {
            a.name: a.id
            for a in plan.actions
            if a.kind == "ComputeEnvironment" and a.verb in (Verb.CREATE, Verb.REPLACE)
        }
        for action in plan.actions:
            if action.kind != KIND or action.verb not in (Verb.CREATE, Verb.UPDATE, Verb.ADOPT):
                continue
            res = plan.desired.get((KIND, action.name))
            if res is None:
                continue
            for entry in res.spec.computeEnvironmentOrder:
                if entry.computeEnvironment in ce_actions:
                    action.after.add(ce_actions[entry.computeEnvironment])

    # -- carrying out ------------------------------------------------------------------------

    def _order(self, ctx: Context, desired: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"order": e["order"], "computeEnvironment": ce_arn(ctx, e["computeEnvironment"])}
            for e in desired["computeEnvironmentOrder"]
        ]

    def _create(self, ctx: Context, name: str, desired: dict[str, Any]) -> str:
        body = request_of(desired)
        body["computeEnvironmentOrder"] = self._order(ctx, desired)
        ctx.aws.client("batch").create_job_queue(jobQueueName=name, tags=desired["tags"], **body)
        desc = _wait_settled(ctx, name)
        if desc is None:
            raise RetryableError(f"job queue {name} was created but cannot be read back yet")
        return f"{name} {desc.get('status')}"

    def _update(
        self, ctx: Context, current: Observed, desired: dict[str, Any], changes: list[Change]
    ) -> str:
        fields = {c.path.split(".")[0] for c in changes} - {"tags"}
        if fields:
            _wait_settled(ctx, current.aws_name)
            request: dict[str, Any] = {"jobQueue": current.aws_name}
            for field in fields:
                if field == "computeEnvironmentOrder":
                    request[field] = self._order(ctx, desired)
                elif desired.get(field) is not None:
                    request[field] = desired[field]
            ctx.aws.client("batch").update_job_queue(**request)
            _wait_settled(ctx, current.aws_name)
        sync_tags(ctx, current.arn, current.tags, desired["tags"])
        return f"{current.aws_name} updated"

    def _delete(self, ctx: Context, live: Observed) -> str:
        batch = ctx.aws.client("batch")
        desc = _wait_settled(ctx, live.aws_name)
        if desc is None:
            return f"{live.aws_name} already gone"
        if desc.get("state") != "DISABLED":
            batch.update_job_queue(jobQueue=live.aws_name, state="DISABLED")
            _wait_settled(ctx, live.aws_name)
        if ctx.options.drain:
            self._drain(ctx, live.aws_name)
        batch.delete_job_queue(jobQueue=live.aws_name)
        _poller(ctx).wait(
            live.aws_name,
            lambda d: d is None or d.get("status") == "DELETED",
            ctx.options.wait_timeout,
            f"job queue {live.aws_name} to go",
        )
        return f"{live.aws_name} deleted"

    def _drain(self, ctx: Context, name: str) -> None:
        deadline = time.monotonic() + ctx.options.drain_timeout
        delay = 1.0
        while (left := unfinished_jobs(ctx, name)) > 0:
            if time.monotonic() + delay > deadline:
                raise RetryableError(
                    f"job queue {name}: {left} jobs still unfinished after "
                    f"{ctx.options.drain_timeout:.0f}s of draining"
                )
            ctx.log(f"  draining {name}: {left} unfinished jobs")
            time.sleep(delay)
            delay = min(delay * 1.5, 30.0)
