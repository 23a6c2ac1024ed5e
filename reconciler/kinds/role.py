"""Role: an IAM role, its policies and its instance profile; the AWS calls and the mapping.

AWS quirks handled here:
- IAM returns policy documents URL-encoded (RFC 3986) JSON strings; botocore decodes them into
  dicts, but `_document` decodes a string too, so the comparison never depends on it.
- Policy documents come back as written: statement and value order, a single value or a list.
  Both sides are compared in one normal form (models/role.py `normal_document`).
- ListRoles returns no tags, so finding every owned role (--prune) costs one ListRoleTags per
  role of the account; declared roles are read by name (GetRole returns their tags).
- CreateRole with Tags is authorised as iam:TagRole as well (declared in `permissions`).
- DeleteRole fails (DeleteConflict) while the role has policies or is in an instance profile:
  policies are detached and deleted, and the role's own instance profile emptied and deleted,
  first. A role in someone else's instance profile is refused in the plan (unless --force),
  and a DeleteConflict AWS still answers becomes a clear error, not a traceback.
- IAM is eventually consistent: a role just created (or a trust policy just changed) may not be
  assumable, nor passable to Batch, for a few seconds. Nothing here waits for it: whoever uses
  the role (a compute environment, a job) must retry, bounded, on such a failure.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.aws.lookups import partition_of
from reconciler.aws.service_roles import put_service_role
from reconciler.aws.tags import owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Work
from reconciler.errors import NotFoundError, ProviderError, TerminalError
from reconciler.kinds.base import Column, Kind, Permission, desired_tags, spec_dict
from reconciler.models.role import Role, RoleSpec, normal_document, trust_document

ROLE_ARNS = "arn:{partition}:iam::{account}:role/*"
PROFILE_ARNS = "arn:{partition}:iam::{account}:instance-profile/*"
# What observe reports as a trusted service when the trust policy holds more than statements
# built from trusted services (an AWS principal, a condition): it shows as a change, and the
# update writes the trust policy the spec describes.
OTHER_TRUST = "(other trust statements)"


def _with_buckets(ctx: Context, refs: Refs, document: dict[str, Any]) -> dict[str, Any]:
    """A policy document whose statements' `{bucket: NAME}` resources are the bucket's ARN and
    the ARN of every object in it."""
    out = dict(document)
    statements = []
    for statement in document.get("Statement") or []:
        st = dict(statement)
        for key in ("Resource", "NotResource"):
            value = st.get(key)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            arns: list[str] = []
            for item in items:
                if isinstance(item, dict):
                    arn = refs.output(ctx, "Bucket", item["bucket"], "arn")
                    arns += [arn, f"{arn}/*"]
                else:
                    arns.append(item)
            st[key] = arns if isinstance(value, list) or len(arns) > 1 else arns[0]
        statements.append(st)
    out["Statement"] = statements
    return out


def _document(raw: Any) -> dict[str, Any]:
    """A policy document as IAM returned it: a dict (botocore decoded it) or URL-encoded JSON."""
    if isinstance(raw, str):
        return dict(json.loads(urllib.parse.unquote(raw)))
    return dict(raw or {})


def _services(document: dict[str, Any]) -> list[str]:
    """The trusted services of a trust policy, and OTHER_TRUST if it says more than those."""
    found: set[str] = set()
    for s in document.get("Statement") or []:
        principal = s.get("Principal") or {}
        if s.get("Effect") == "Allow" and isinstance(principal, dict) and "Service" in principal:
            service = principal["Service"]
            found.update(service if isinstance(service, list) else [service])
    services = sorted(found)
    if not services or normal_document(document) != trust_document(services):
        services.append(OTHER_TRUST)
    return services


def _tags(pairs: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in pairs or []}


def _changed_fields(changes: list[Change]) -> set[str]:
    return {c.path.split(".", 1)[0] for c in changes}


class RoleKind(Kind):
    model = Role
    spec_model = RoleSpec
    busy_statuses = ()
    ready_statuses = ("ACTIVE",)
    columns = (
        Column("AWS Name", "awsName", description="The IAM role name."),
        Column("Profile", "instanceProfile", "boolean", "An instance profile holds the role."),
        Column("ARN", "arn", description="The role's ARN.", priority=1),
    )
    permissions = (
        Permission(
            "IamRoles",
            "iam",
            (
                "CreateRole",
                "DeleteRole",
                "UpdateRole",
                "UpdateAssumeRolePolicy",
                "AttachRolePolicy",
                "DetachRolePolicy",
                "PutRolePolicy",
                "DeleteRolePolicy",
                "TagRole",  # CreateRole with Tags is authorised as TagRole too
                "UntagRole",
                "GetRole",
                "GetRolePolicy",
                "ListAttachedRolePolicies",
                "ListRolePolicies",
                "ListRoleTags",
                "ListInstanceProfilesForRole",
            ),
            (ROLE_ARNS,),
        ),
        Permission(
            "IamInstanceProfiles",
            "iam",
            (
                "CreateInstanceProfile",
                "DeleteInstanceProfile",
                "AddRoleToInstanceProfile",
                "RemoveRoleFromInstanceProfile",
            ),
            (PROFILE_ARNS,),
        ),
        # ListRoles supports no resource-level permissions: "*" is what AWS requires.
        Permission("IamRoleListing", "iam", ("ListRoles",), ("*",)),
    )

    # -- reading -------------------------------------------------------------------------------

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        iam = ctx.aws.client("iam")
        names = {r.name for r in declared}
        if everything:
            listed = [
                r["RoleName"]
                for page in iam.get_paginator("list_roles").paginate()
                for r in page["Roles"]
            ]

            def owned(name: str) -> bool:
                # ListRoles returns no tags: one ListRoleTags per undeclared role.
                pages = iam.get_paginator("list_role_tags").paginate(RoleName=name)
                return owner_of(_tags([t for p in pages for t in p["Tags"]])) is not None

            others = [n for n in listed if n not in names]
            with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
                names |= {
                    n for n, ours in zip(others, pool.map(owned, others), strict=True) if ours
                }
        with ThreadPoolExecutor(max_workers=ctx.options.parallelism) as pool:
            found = pool.map(lambda n: self._read(ctx, n), sorted(names))
            return [o for o in found if o is not None]

    def _read(self, ctx: Context, name: str) -> Observed | None:
        """One role by name, with its policies and instance profiles; None if absent."""
        iam = ctx.aws.client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except NotFoundError:
            return None
        attached = [
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
            for p in page["AttachedPolicies"]
        ]
        inline_names = [
            n
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for n in page["PolicyNames"]
        ]
        inline = {
            n: normal_document(
                _document(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"])
            )
            for n in inline_names
        }
        profiles = [
            p["InstanceProfileName"]
            for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name)
            for p in page["InstanceProfiles"]
        ]
        tags = _tags(role.get("Tags"))  # GetRole returns the role's tags (ListRoles does not)
        return Observed(
            kind=self.name,
            aws_name=role["RoleName"],
            arn=role["Arn"],
            spec={
                "path": role.get("Path") or "/",
                "description": role.get("Description") or None,
                "maxSessionDuration": role.get("MaxSessionDuration") or 3600,
                "trustedServices": _services(_document(role.get("AssumeRolePolicyDocument"))),
                "managedPolicyArns": sorted(attached),
                "inlinePolicies": inline,
                "instanceProfile": name in profiles,
                "tags": user_tags(tags),
            },
            owner=owner_of(tags),
            status="ACTIVE",  # IAM reports no status: a role that is read exists
            extra={"profiles": profiles},
        )

    def desired(self, ctx: Context, res: Role, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        spec["trustedServices"] = sorted(spec["trustedServices"])
        spec["inlinePolicies"] = {
            n: normal_document(_with_buckets(ctx, refs, d))
            for n, d in (spec.get("inlinePolicies") or {}).items()
        }
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def output(self, ctx: Context, refs: Refs, name: str, what: str) -> str:
        """The role's ARN, or its instance profile's (`instanceProfile`): IAM ARNs follow from
        the account, the path and the name, so they are known before the role exists."""
        declared = refs.resource(self.name, name)
        path = declared.spec.path if declared is not None else "/"
        kind = "instance-profile" if what == "instanceProfile" else "role"
        partition = partition_of(ctx.aws.region)
        aws_name = refs.aws_name(self.name, name)
        return f"arn:{partition}:iam::{ctx.resolver.account_id}:{kind}{path}{aws_name}"

    # -- writing -------------------------------------------------------------------------------

    def create(
        self, ctx: Context, res: Role, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        def run(c: Context) -> str:
            # The engine planned a create: the role is absent, and a same-named one made
            # meanwhile by someone else is not taken over (existing_ok=False).
            reply = put_service_role(
                c.aws,
                aws_name,
                trust_document(desired["trustedServices"]),
                desired.get("inlinePolicies") or {},
                desired["tags"],
                desired.get("description"),
                path=desired.get("path", "/"),
                max_session=desired.get("maxSessionDuration", 3600),
                existing_ok=False,
            )
            arn = str((reply or {})["Role"]["Arn"])  # existing_ok=False: it was created
            iam = c.aws.client("iam")
            for policy_arn in desired.get("managedPolicyArns") or []:
                iam.attach_role_policy(RoleName=aws_name, PolicyArn=policy_arn)
            if desired.get("instanceProfile"):
                _add_profile(c, aws_name, desired.get("path", "/"))
            return arn

        return Work(run=run)

    def update(
        self,
        ctx: Context,
        res: Role,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        fields = _changed_fields(changes)
        name = current.aws_name
        have, want = current.spec, desired

        def run(c: Context) -> str:
            iam = c.aws.client("iam")
            if "trustedServices" in fields:
                document = trust_document(want["trustedServices"])
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(document))
            if fields & {"description", "maxSessionDuration"}:
                iam.update_role(
                    RoleName=name,
                    Description=want.get("description") or "",
                    MaxSessionDuration=want.get("maxSessionDuration", 3600),
                )
            if "managedPolicyArns" in fields:
                old, new = (
                    set(have.get("managedPolicyArns") or []),
                    set(want.get("managedPolicyArns") or []),
                )
                for arn in sorted(new - old):
                    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
                for arn in sorted(old - new):
                    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            if "inlinePolicies" in fields:
                old_p, new_p = have.get("inlinePolicies") or {}, want.get("inlinePolicies") or {}
                for policy, document in sorted(new_p.items()):
                    if old_p.get(policy) != document:
                        iam.put_role_policy(
                            RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document)
                        )
                for policy in sorted(set(old_p) - set(new_p)):
                    iam.delete_role_policy(RoleName=name, PolicyName=policy)
            if "instanceProfile" in fields:
                if want.get("instanceProfile"):
                    _add_profile(c, name, want.get("path", "/"))
                else:
                    _drop_profile(c, name)
            if "tags" in fields:
                _sync_tags(c, name, current.tags, want["tags"])
            return f"{name} updated"

        return Work(run=run, summary=", ".join(sorted(fields)))

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        name = live.aws_name
        foreign = [p for p in live.extra.get("profiles", []) if p != name]
        if foreign and not ctx.options.force:
            # DeleteRole would fail (DeleteConflict): the role is in instance profiles this
            # plan did not make, which may be in use by instances or compute environments.
            return Work(
                refused=(
                    f"role {name} is in instance profiles {', '.join(foreign)} that this stack "
                    "does not manage; remove it from them first (or --force to try anyway)"
                ),
                aws_name=name,
            )

        def run(c: Context) -> str:
            iam = c.aws.client("iam")
            try:
                for page in iam.get_paginator("list_attached_role_policies").paginate(
                    RoleName=name
                ):
                    for p in page["AttachedPolicies"]:
                        iam.detach_role_policy(RoleName=name, PolicyArn=p["PolicyArn"])
                for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                    for policy in page["PolicyNames"]:
                        iam.delete_role_policy(RoleName=name, PolicyName=policy)
                if live.spec.get("instanceProfile"):
                    _drop_profile(c, name)
                iam.delete_role(RoleName=name)
            except NotFoundError:
                return f"{name} already gone"
            except ProviderError as exc:
                if exc.code != "DeleteConflict":
                    raise
                # IAM refuses to delete a role still in an instance profile (or with policies
                # attached since the plan read it): say so instead of a bare AWS error.
                raise TerminalError(
                    f"role {name} cannot be deleted: it is still in use ({exc}); remove it "
                    "from its instance profiles and detach its policies, then delete again"
                ) from exc
            return f"{name} deleted"

        return Work(run=run, summary=why, aws_name=name)

    # -- reporting -----------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["instanceProfile"] = bool(live.spec.get("instanceProfile")) if live else None
        return out


def _add_profile(ctx: Context, name: str, path: str) -> None:
    """An instance profile of the role's name, holding the role."""
    iam = ctx.aws.client("iam")
    try:
        iam.create_instance_profile(InstanceProfileName=name, Path=path)
    except ProviderError as exc:
        # A same-named empty profile (left by an interrupted apply) is taken as it is; one
        # holding another role makes AddRoleToInstanceProfile fail (LimitExceeded) below.
        if exc.code != "EntityAlreadyExists":
            raise
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def _drop_profile(ctx: Context, name: str) -> None:
    """Removes the role from its same-named instance profile and deletes the profile: IAM
    deletes no profile that still holds a role."""
    iam = ctx.aws.client("iam")
    with contextlib.suppress(NotFoundError):  # not in it (any more)
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
    with contextlib.suppress(NotFoundError):  # already gone
        iam.delete_instance_profile(InstanceProfileName=name)


def _sync_tags(ctx: Context, name: str, have: dict[str, str], want: dict[str, str]) -> None:
    """TagRole/UntagRole with only what differs (IAM's own tag calls, not Batch's)."""
    iam = ctx.aws.client("iam")
    have = user_tags(have)
    add = {k: v for k, v in want.items() if have.get(k) != v}
    drop = [k for k in have if k not in want]
    if add:
        iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in add.items()])
    if drop:
        iam.untag_role(RoleName=name, TagKeys=drop)


KINDS = (RoleKind(),)
