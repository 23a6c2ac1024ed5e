"""IAM roles that an AWS service assumes: made with their trust and inline policies, and
deleted with them. One implementation for every role the tool writes: a Role of the stack
(kinds/role.py), the roles a Schedule makes for Scheduler and Step Functions
(runs/schedule_parts.py), and the Slack function's role of a Notification (notify/wiring.py).

AWS quirks handled here:
- CreateRole with Tags is authorised as iam:TagRole too (declared by the kinds that call this).
- CreateRole takes no inline policy: each is one PutRolePolicy, which replaces a same-named
  policy (so writing it again is idempotent).
- DeleteRole fails (DeleteConflict) while the role has inline policies: they go first.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from reconciler.aws.clients import Aws
from reconciler.errors import NotFoundError, ProviderError


def put_service_role(
    aws: Aws,
    name: str,
    trust: dict[str, Any],
    policies: dict[str, dict[str, Any]],
    tags: dict[str, str],
    description: str | None = None,
    *,
    path: str = "/",
    max_session: int | None = None,
    existing_ok: bool = True,
) -> dict[str, Any] | None:
    """Creates the role with `trust` and the inline `policies`; returns CreateRole's reply, or
    None if the role existed. `existing_ok`: a same-named role (an interrupted apply made it)
    is taken, its trust and policies rewritten; otherwise IAM's EntityAlreadyExists is
    raised."""
    iam = aws.client("iam")
    body: dict[str, Any] = {
        "RoleName": name,
        "Path": path,
        "AssumeRolePolicyDocument": json.dumps(trust),
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }
    if description:
        body["Description"] = description
    if max_session is not None:
        body["MaxSessionDuration"] = max_session
    try:
        created: dict[str, Any] | None = iam.create_role(**body)
    except ProviderError as exc:
        if not existing_ok or exc.code != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        created = None
    for policy, document in policies.items():
        iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document))
    return created


def put_changed_roles(
    aws: Aws,
    want: dict[str, Any] | None,
    have: dict[str, Any] | None,
    policy: str,
    tags: dict[str, str],
    description: str,
) -> None:
    """Writes each role of `want["roles"]` (name -> {trust, policy}) that differs from
    `have["roles"]`, with its one inline policy named `policy`: the roles a schedule or a
    notification makes (`want` and `have`: their desired and observed parts)."""
    had = (have or {}).get("roles") or {}
    for name, doc in ((want or {}).get("roles") or {}).items():
        if had.get(name) != doc:
            put_service_role(aws, name, doc["trust"], {policy: doc["policy"]}, tags, description)


def delete_service_role(aws: Aws, name: str, policies: list[str]) -> None:
    """Deletes the role's inline `policies`, then the role; what is gone already is skipped."""
    iam = aws.client("iam")
    for policy in policies:
        with contextlib.suppress(NotFoundError):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    with contextlib.suppress(NotFoundError):
        iam.delete_role(RoleName=name)
