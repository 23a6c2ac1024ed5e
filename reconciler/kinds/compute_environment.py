"""ComputeEnvironment: its AWS calls, mapping, waits, and how each change is carried out.

AWS quirks handled here:
- `updatePolicy` is rejected by CreateComputeEnvironment: it is sent with updates only.
- Infrastructure changes (instance types, subnets, ...) are possible in place only with the
  service-linked role and a progressive allocation strategy; otherwise the environment is
  replaced blue/green under a derived name, so that its queues never break.
- Deleting needs the environment DISABLED and free of queues; Batch drops the queue
  relationship some time after the queue is re-pointed ("Cannot delete, found existing
  JobQueue relationship"), so the delete is tried again, as a pending step, until that clears.
- Creating, updating and deleting take minutes: every step returns Pending at once and one
  DescribeComputeEnvironments answers every environment being waited for.
- `desiredvCpus` is moved by Batch itself and is not compared unless `trackDesiredvCpus`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import spec_changes, tags_only
from reconciler.engine.diff import Change, canonical_of, diff
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Pending, Step, Work
from reconciler.errors import ProviderError, TerminalError
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
from reconciler.kinds.polling import Description, StatusPoller, after_iam, retiring
from reconciler.models.compute_environment import (
    PROGRESSIVE_STRATEGIES,
    ComputeEnvironment,
    ComputeEnvironmentSpec,
    is_infrastructure,
)
from reconciler.models.machine_image import MachineImage, built_by
from reconciler.models.role import Role

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
OBSERVED_FIELDS = (
    "type",
    "state",
    "unmanagedvCpus",
    "computeResources",
    "serviceRole",
    "updatePolicy",
)


def _poller(ctx: Context) -> StatusPoller:
    def describe(names: list[str]) -> dict[str, dict[str, Any]]:
        out = ctx.aws.client("batch").describe_compute_environments(computeEnvironments=names)
        return {e["computeEnvironmentName"]: e for e in out["computeEnvironments"]}

    return ctx.shared("poller:ce", lambda: StatusPoller(describe))


def _settled(desc: Description) -> bool:
    return desc is None or desc.get("status") not in BUSY


def _valid(name: str) -> Any:
    def then(_ctx: Context, desc: Description) -> str:
        if desc is not None and desc.get("status") == "INVALID":
            raise TerminalError(
                f"compute environment {name} is INVALID: {desc.get('statusReason')}"
            )
        return f"{name} {(desc or {}).get('status', 'gone')}"

    return then


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


def _infrastructure(changes: list[Change]) -> list[str]:
    return [c.path for c in spec_changes(changes) if is_infrastructure(c.path)]


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


class ComputeEnvironmentKind(Kind):
    model = ComputeEnvironment
    spec_model = ComputeEnvironmentSpec
    ready_statuses = ("VALID",)
    create_before_destroy = True  # blue/green: its queues never lose their environment
    columns = (
        *STATUS_COLUMNS,
        Column("State", "state", description="ENABLED or DISABLED."),
    )
    permissions = (
        Permission(
            "BatchInfrastructure",
            "batch",
            (
                "CreateComputeEnvironment",
                "UpdateComputeEnvironment",
                "DeleteComputeEnvironment",
            ),
            ("compute-environment/*",),
        ),
    )

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
        spec = {k: raw.get(k) for k in OBSERVED_FIELDS}
        cr = dict(spec.get("computeResources") or {})
        if cr.get("instanceRole"):
            cr["instanceRole"] = ctx.resolver.instance_profile_arn(cr["instanceRole"])
        spec["computeResources"] = cr or None
        spec["tags"] = user_tags(raw.get("tags"))
        return Observed(
            kind=self.name,
            aws_name=raw["computeEnvironmentName"],
            arn=raw["computeEnvironmentArn"],
            spec=spec,
            owner=owner_of(raw.get("tags")),
            status=raw.get("status"),
            status_reason=raw.get("statusReason"),
        )

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        """The roles it uses: its service role, spot fleet role and instance role (whose
        instance profile a Role of the stack names after itself)."""
        cr = live.spec.get("computeResources") or {}
        arns = [live.spec.get("serviceRole"), cr.get("instanceRole"), cr.get("spotIamFleetRole")]
        return [(Role.KIND, str(a).rsplit("/", 1)[-1]) for a in arns if a]

    def desired(self, ctx: Context, res: ComputeEnvironment, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        r = ctx.resolver

        def role(ref: Any, profile: bool) -> str | None:
            if isinstance(ref, dict):  # a Role of the stack
                what = "instanceProfile" if ref.get("instanceProfile") else "arn"
                return refs.output(ctx, Role.KIND, ref["role"], what)
            return r.instance_profile_arn(ref) if profile else r.role_arn(ref)

        if spec.get("serviceRole"):
            spec["serviceRole"] = role(spec["serviceRole"], False)
        cr = spec.get("computeResources")
        if cr:
            cr["subnets"] = r.subnets(cr["subnets"])
            if cr.get("securityGroupIds"):
                cr["securityGroupIds"] = r.security_groups(cr["securityGroupIds"])
            if cr.get("instanceRole"):
                cr["instanceRole"] = role(cr["instanceRole"], True)
            if cr.get("spotIamFleetRole"):
                cr["spotIamFleetRole"] = role(cr["spotIamFleetRole"], False)
            for config in cr.get("ec2Configuration") or []:
                image = config.get("imageIdOverride")
                if isinstance(image, dict):  # a MachineImage of the stack: its image after the plan
                    name = image["machineImage"]
                    config["imageIdOverride"] = refs.output(ctx, MachineImage.KIND, name, "imageId")
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def ignored(self, res: ComputeEnvironment) -> frozenset[str]:
        return frozenset() if res.spec.trackDesiredvCpus else super().ignored(res)

    def pick(
        self, res: ComputeEnvironment, candidates: list[Observed], desired: dict[str, Any]
    ) -> tuple[Observed, list[Observed]]:
        def rank(o: Observed) -> tuple[int, int, str]:
            changes = spec_changes(diff(desired, o.spec, ComputeEnvironmentSpec, self.ignored(res)))
            return (len(changes) > 0, o.aws_name != res.name, o.aws_name)

        if len(candidates) == 1:
            return candidates[0], []
        ordered = sorted(candidates, key=rank)
        return ordered[0], ordered[1:]

    # -- deciding ----------------------------------------------------------------------------

    def requires_replacement(
        self, changes: list[Change], current: Observed, desired: dict[str, Any]
    ) -> str | None:
        if _infrastructure(changes) and not _can_update_infrastructure(current, desired):
            return (
                "in-place infrastructure updates need the service-linked role and a "
                "progressive allocation strategy"
            )
        return None

    def replacement_name(
        self, res: ComputeEnvironment, desired: dict[str, Any], taken: set[str]
    ) -> str:
        return derived_name(res.name, desired, taken)

    # -- carrying out ------------------------------------------------------------------------

    def create(
        self,
        ctx: Context,
        res: ComputeEnvironment,
        desired: dict[str, Any],
        aws_name: str,
        refs: Refs,
    ) -> Work:
        def run(c: Context) -> Step:
            body = request_of(_built(c, refs, desired))
            body.pop("updatePolicy", None)  # AWS rejects updatePolicy on create
            c.aws.client("batch").create_compute_environment(
                computeEnvironmentName=aws_name, tags=desired["tags"], **body
            )
            check = _poller(c).until(
                aws_name,
                lambda d: d is not None and d.get("status") in ("VALID", "INVALID"),
                f"compute environment {aws_name}",
                then=_valid(aws_name),
            )
            return Pending(f"creating {aws_name}", check)

        return Work(run=after_iam(run, f"creating {aws_name}"))

    def update(
        self,
        ctx: Context,
        res: ComputeEnvironment,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        spec = spec_changes(changes)
        if tags_only(changes):
            summary = "tags only"
        elif _infrastructure(changes):
            summary = (
                "infrastructure update in place: AWS replaces the instances, "
                "which takes tens of minutes"
            )
        elif all(c.path in SCALING_PATHS for c in spec):
            summary = "scaling update (quick)"
        else:
            summary = "update in place"
        return Work(
            run=lambda c: self._update(c, current, _built(c, refs, desired), spec), summary=summary
        )

    def _update(
        self, ctx: Context, current: Observed, desired: dict[str, Any], spec: list[Change]
    ) -> Step:
        if spec:
            request: dict[str, Any] = {"computeEnvironment": current.aws_name}
            resources: dict[str, Any] = {}
            for change in spec:
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
        if not spec:
            return f"{current.aws_name} re-tagged"
        check = _poller(ctx).until(
            current.aws_name,
            _settled,
            f"compute environment {current.aws_name}",
            then=_valid(current.aws_name),
        )
        return Pending(f"updating {current.aws_name}", check)

    def wait(self, ctx: Context, current: Observed) -> Work:
        name = current.aws_name

        def run(c: Context) -> Step:
            check = _poller(c).until(name, _settled, f"compute environment {name}", _valid(name))
            return check(c)

        return Work(run=run, summary=f"{name} is {current.status}: waiting for it to settle")

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        return Work(run=self._deleting(live.aws_name), summary=why, aws_name=live.aws_name)

    def _deleting(self, name: str) -> Any:
        def disable(ctx: Context) -> None:
            ctx.aws.client("batch").update_compute_environment(
                computeEnvironment=name, state="DISABLED"
            )

        def delete(ctx: Context, again: Any) -> Step | None:
            try:
                ctx.aws.client("batch").delete_compute_environment(computeEnvironment=name)
            except ProviderError as exc:
                # Batch drops a queue relationship some time after the queue is re-pointed.
                if "relationship" not in str(exc).lower():
                    raise
                return Pending(f"waiting for Batch to let go of {name}'s queues", again)
            return None

        return retiring(_poller, name, "compute environment", disable, delete)

    # -- reporting ---------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["state"] = live.spec.get("state") if live else None
        return out


def _built(ctx: Context, refs: Refs, desired: dict[str, Any]) -> dict[str, Any]:
    """`desired` with the images that builds of this plan made put in for their placeholders
    (the plan could only show them as a MachineImage's new image)."""
    configs = (desired.get("computeResources") or {}).get("ec2Configuration") or []
    if not any(built_by(c.get("imageIdOverride")) for c in configs):
        return desired
    out = copy.deepcopy(desired)
    for config in out["computeResources"]["ec2Configuration"]:
        name = built_by(config.get("imageIdOverride"))
        if name:
            config["imageIdOverride"] = refs.output(ctx, MachineImage.KIND, name, "builtImageId")
    return out


KINDS = (ComputeEnvironmentKind(),)
