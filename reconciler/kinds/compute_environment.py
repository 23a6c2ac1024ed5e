"""ComputeEnvironment: its AWS calls, mapping, waits, and how each change is carried out.

AWS quirks handled here:
- `updatePolicy` is rejected by CreateComputeEnvironment: it is sent with updates only.
- Infrastructure changes (instance types, subnets, ...) are possible in place only with the
  service-linked role and a progressive allocation strategy; otherwise the environment is
  replaced blue/green under a derived name, so that its queues never break.
- Deleting needs the environment DISABLED and free of queues; Batch drops the queue
  relationship some time after the queue is re-pointed ("Cannot delete, found existing
  JobQueue relationship"), so the delete is retried until that clears.
- `desiredvCpus` is moved by Batch itself and is not compared unless `trackDesiredvCpus`.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.aws.waiting import StatusPoller
from reconciler.engine.context import Context
from reconciler.engine.diff import Change, canonical_of, diff, semantics_at
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.errors import ProviderError, TerminalError
from reconciler.kinds.base import (
    KindHandler,
    desired_tags,
    request_of,
    spec_dict,
    sync_tags,
    tag_changes_only,
)
from reconciler.models.compute_environment import (
    PROGRESSIVE_STRATEGIES,
    ComputeEnvironment,
    ComputeEnvironmentSpec,
)
from reconciler.models.fields import semantics_of

KIND = ComputeEnvironment.KIND
SERVICE_LINKED_ROLE = "aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
SCALING_PATHS = frozenset(
    {
        "state",
        "unmanagedvCpus",
        "computeResources.minvCpus",
        "computeResources.maxvCpus",
        "computeResources.desiredvCpus",
    }
)


def _poller(ctx: Context) -> StatusPoller:
    def describe(names: list[str]) -> dict[str, dict[str, Any]]:
        out = ctx.aws.client("batch").describe_compute_environments(computeEnvironments=names)
        return {e["computeEnvironmentName"]: e for e in out["computeEnvironments"]}

    return ctx.shared("poller:ce", lambda: StatusPoller(describe))


def _settled(desc: dict[str, Any] | None) -> bool:
    return desc is None or desc.get("status") not in ("CREATING", "UPDATING", "DELETING")


def wait_settled(ctx: Context, name: str) -> dict[str, Any] | None:
    desc = _poller(ctx).wait(
        name, _settled, ctx.options.wait_timeout, f"compute environment {name} to settle"
    )
    if desc is not None and desc.get("status") == "INVALID":
        raise TerminalError(f"compute environment {name} is INVALID: {desc.get('statusReason')}")
    return desc


def derived_name(name: str, desired: dict[str, Any], taken: set[str]) -> str:
    """The AWS name of a blue/green replacement: stable for one spec, unique in the account."""
    digest = hashlib.sha256(
        json.dumps(
            canonical_of(request_of(desired), ComputeEnvironmentSpec), sort_keys=True
        ).encode()
    ).hexdigest()
    base = name[: 128 - 7]
    for i in range(0, len(digest) - 6):
        candidate = f"{base}-{digest[i : i + 6]}"
        if candidate not in taken:
            return candidate
    raise TerminalError(f"cannot derive a free name for compute environment {name}")


def _can_update_infrastructure(current: Observed, desired: dict[str, Any]) -> bool:
    def service_linked(role: str | None) -> bool:
        return role is None or role.endswith(SERVICE_LINKED_ROLE)

    def progressive(spec: dict[str, Any]) -> bool:
        cr = spec.get("computeResources") or {}
        return (
            cr.get("type", "").startswith("FARGATE")
            or cr.get("allocationStrategy") in PROGRESSIVE_STRATEGIES
        )

    return (
        service_linked(desired.get("serviceRole"))
        and service_linked(current.spec.get("serviceRole"))
        and progressive(desired)
        and progressive(current.spec)
    )


class ComputeEnvironmentHandler(KindHandler):
    model = ComputeEnvironment
    spec_model = ComputeEnvironmentSpec

    # -- observing ---------------------------------------------------------------------------

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        # Listing every environment (100 a page) finds blue/green replacements under derived
        # names and owned leftovers, in as few calls as describing ours by name would take.
        pages = ctx.aws.client("batch").get_paginator("describe_compute_environments")
        return [
            self.from_aws(ctx, raw)
            for page in pages.paginate(PaginationConfig={"PageSize": 100})
            for raw in page["computeEnvironments"]
        ]

    def from_aws(self, ctx: Context, raw: dict[str, Any]) -> Observed:
        spec = {
            k: raw.get(k)
            for k in (
                "type",
                "state",
                "unmanagedvCpus",
                "computeResources",
                "serviceRole",
                "updatePolicy",
            )
        }
        cr = dict(spec.get("computeResources") or {})
        if cr.get("instanceRole"):
            cr["instanceRole"] = ctx.resolver.instance_profile_arn(cr["instanceRole"])
        spec["computeResources"] = cr or None
        spec["tags"] = user_tags(raw.get("tags"))
        return Observed(
            kind=KIND,
            aws_name=raw["computeEnvironmentName"],
            arn=raw["computeEnvironmentArn"],
            spec=spec,
            owner=owner_of(raw.get("tags")),
            status=raw.get("status"),
            status_reason=raw.get("statusReason"),
        )

    # -- desired state -----------------------------------------------------------------------

    def desired(self, ctx: Context, res: ComputeEnvironment, plan: Plan) -> dict[str, Any]:
        spec = spec_dict(res)
        r = ctx.resolver
        if spec.get("serviceRole"):
            spec["serviceRole"] = r.role_arn(spec["serviceRole"])
        cr = spec.get("computeResources")
        if cr:
            cr["subnets"] = r.subnets(cr["subnets"])
            if cr.get("securityGroupIds"):
                cr["securityGroupIds"] = r.security_groups(cr["securityGroupIds"])
            if cr.get("instanceRole"):
                cr["instanceRole"] = r.instance_profile_arn(cr["instanceRole"])
            if cr.get("spotIamFleetRole"):
                cr["spotIamFleetRole"] = r.role_arn(cr["spotIamFleetRole"])
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def ignored(self, res: ComputeEnvironment) -> frozenset[str]:
        return frozenset() if res.spec.trackDesiredvCpus else super().ignored(res)

    def pick(
        self, res: ComputeEnvironment, candidates: list[Observed], desired: dict[str, Any]
    ) -> tuple[Observed, list[Observed]]:
        def rank(o: Observed) -> tuple[int, int, str]:
            changes = [
                c
                for c in diff(desired, o.spec, ComputeEnvironmentSpec, self.ignored(res))
                if not c.path.startswith("tags")
            ]
            return (len(changes) > 0, o.aws_name != res.name, o.aws_name)

        if len(candidates) == 1:
            return candidates[0], []
        ordered = sorted(candidates, key=rank)
        return ordered[0], ordered[1:]

    # -- deciding ----------------------------------------------------------------------------

    def plan_create(
        self, ctx: Context, res: ComputeEnvironment, desired: dict[str, Any], plan: Plan
    ) -> Action:
        plan.targets[res.key] = res.name
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
        res: ComputeEnvironment,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        plan: Plan,
    ) -> list[Action]:
        plan.targets[res.key] = current.aws_name
        base = Action.of(
            KIND,
            res.name,
            Verb.NOOP,
            aws_name=current.aws_name,
            changes=changes,
        )
        if not changes:
            return [base]
        table = semantics_of(ComputeEnvironmentSpec)
        spec_changes = [c for c in changes if not c.path.startswith("tags")]
        immutable = [c.path for c in spec_changes if semantics_at(table, c.path).immutable]
        infra = [c.path for c in spec_changes if semantics_at(table, c.path).infrastructure]
        if immutable or (infra and not _can_update_infrastructure(current, desired)):
            return self._replace(
                ctx,
                res,
                current,
                desired,
                base,
                plan,
                why=(
                    f"{', '.join(immutable)} cannot change in place"
                    if immutable
                    else "in-place infrastructure updates need the "
                    "service-linked role and a progressive allocation "
                    "strategy"
                ),
            )
        base.verb = Verb.UPDATE
        if tag_changes_only(changes):
            base.summary = "tags only"
        elif infra:
            base.summary = (
                "infrastructure update in place: AWS replaces the instances, "
                "which takes tens of minutes"
            )
        elif all(c.path in SCALING_PATHS for c in spec_changes):
            base.summary = "scaling update (quick)"
        else:
            base.summary = "update in place"
        base.run = lambda c: self._update(c, current, desired, spec_changes)
        return [base]

    def _replace(
        self,
        ctx: Context,
        res: ComputeEnvironment,
        current: Observed,
        desired: dict[str, Any],
        base: Action,
        plan: Plan,
        why: str,
    ) -> list[Action]:
        taken = {o.aws_name for o in plan.observed_all.get(KIND, [])}
        new_name = derived_name(res.name, desired, taken | {current.aws_name})
        plan.targets[res.key] = new_name
        base.verb = Verb.REPLACE
        base.aws_name = new_name
        base.summary = (
            f"blue/green: create {new_name}, re-point queues, then delete "
            f"{current.aws_name} ({why})"
        )
        base.run = lambda c: self._create(c, new_name, desired)
        retire = self.plan_delete(ctx, res.name, current, plan, f"replaced by {new_name}")
        retire.after.add(base.id)
        return [base, retire]

    def plan_delete(self, ctx: Context, name: str, live: Observed, plan: Plan, why: str) -> Action:
        return Action.of(
            KIND,
            name,
            Verb.DELETE,
            f"#delete:{live.aws_name}",
            aws_name=live.aws_name,
            summary=why,
            run=lambda c: self._delete(c, live),
        )

    def link(self, plan: Plan) -> None:
        """Deleting an environment waits for every queue action that stops using it."""
        uses = {
            q.aws_name: {
                e["computeEnvironment"] for e in q.spec.get("computeEnvironmentOrder") or []
            }
            for q in plan.observed_all.get("JobQueue", [])
        }
        queue_actions = [a for a in plan.actions if a.kind == "JobQueue" and a.verb.writes]
        for action in plan.actions:
            if action.kind == KIND and action.verb is Verb.DELETE:
                action.after.update(
                    q.id for q in queue_actions if action.aws_name in uses.get(q.aws_name, set())
                )

    # -- carrying out ------------------------------------------------------------------------

    def _create(self, ctx: Context, aws_name: str, desired: dict[str, Any]) -> str:
        body = request_of(desired)
        body.pop("updatePolicy", None)  # AWS rejects updatePolicy on create
        ctx.aws.client("batch").create_compute_environment(
            computeEnvironmentName=aws_name, tags=desired["tags"], **body
        )
        desc = _poller(ctx).wait(
            aws_name,
            lambda d: d is not None and d.get("status") in ("VALID", "INVALID"),
            ctx.options.wait_timeout,
            f"compute environment {aws_name}",
        )
        if desc is not None and desc["status"] == "INVALID":
            raise TerminalError(f"{aws_name} is INVALID: {desc.get('statusReason')}")
        return f"{aws_name} VALID"

    def _update(
        self, ctx: Context, current: Observed, desired: dict[str, Any], spec_changes: list[Change]
    ) -> str:
        wait_settled(ctx, current.aws_name)
        if spec_changes:
            request: dict[str, Any] = {"computeEnvironment": current.aws_name}
            resources: dict[str, Any] = {}
            for change in spec_changes:
                top, _, rest = change.path.partition(".")
                if top == "computeResources" and rest:
                    field = rest.split(".")[0]
                    resources[field] = (desired.get("computeResources") or {}).get(field)
                else:
                    request[top] = desired.get(top)
            if resources:
                request["computeResources"] = {k: v for k, v in resources.items() if v is not None}
            ctx.aws.client("batch").update_compute_environment(
                **{k: v for k, v in request.items() if v is not None}
            )
        sync_tags(ctx, current.arn, current.tags, desired["tags"])
        wait_settled(ctx, current.aws_name)
        return f"{current.aws_name} updated"

    def _delete(self, ctx: Context, live: Observed) -> str:
        batch = ctx.aws.client("batch")
        desc = wait_settled(ctx, live.aws_name)
        if desc is None:
            return f"{live.aws_name} already gone"
        if desc.get("state") != "DISABLED":
            batch.update_compute_environment(computeEnvironment=live.aws_name, state="DISABLED")
            wait_settled(ctx, live.aws_name)
        deadline = time.monotonic() + ctx.options.wait_timeout
        delay = 0.5
        while True:
            try:
                batch.delete_compute_environment(computeEnvironment=live.aws_name)
                break
            except ProviderError as exc:
                # Batch drops a queue relationship some time after the queue is re-pointed.
                if "relationship" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 1.6, 15.0)
        _poller(ctx).wait(
            live.aws_name,
            lambda d: d is None or d.get("status") == "DELETED",
            ctx.options.wait_timeout,
            f"compute environment {live.aws_name} to go",
        )
        return f"{live.aws_name} deleted"
