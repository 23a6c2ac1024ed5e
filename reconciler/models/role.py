"""Role: an IAM role for Batch to use (service, instance, job and execution roles).

The spec is what users mean, not CreateRole's request: the trust policy is built from
`trustedServices`, and inline policies are written as YAML documents, not JSON strings. Policy
documents are brought into one normal form (`normal_document`) on both sides before the diff
compares them, so statement order, action order and a single value versus a one-item list are
never a change.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from reconciler.models.common import BucketReference, Metadata, Resource, Spec, Strict, Tags
from reconciler.models.fields import IMMUTABLE, value_set

# IAM names: 1-64 of letters, digits and +=,.@_- (narrower than Batch's in length, wider in
# characters), so the role overrides the envelope's name rule. The length is `max_length`'s,
# not a `{1,64}` in the pattern: the same names, but the regex engine compiled that repetition
# of a Unicode class in 60-90 ms, the most of any model's validator (and of `validate`).
ROLE_NAME = r"^[\w+=,.@-]+$"
POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
VERSION = "2012-10-17"
# Statement fields whose values are sets: AWS keeps what it is given, a string or a list, and the
# order means nothing.
SET_FIELDS = ("Action", "NotAction", "Resource", "NotResource")
OneOrMany = str | list[str]
# A statement's resources may name a bucket of the stack: `{bucket: results}` is the bucket's
# ARN and every object in it (ARN/*), resolved at plan time.
Resources = str | BucketReference | list[str | BucketReference]


class RoleMetadata(Metadata):
    name: str = Field(pattern=ROLE_NAME, max_length=64, description="The IAM role name.")


class PolicyStatement(Strict):
    Sid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]*$")
    Effect: Literal["Allow", "Deny"]
    Action: OneOrMany | None = None
    NotAction: OneOrMany | None = None
    Resource: Resources | None = None
    NotResource: Resources | None = None
    Condition: dict[str, dict[str, OneOrMany | bool | int]] | None = Field(
        default=None, description="operator -> condition key -> value(s)."
    )

    @field_validator("Action", "NotAction", "Resource", "NotResource")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value


class PolicyDocument(Strict):
    Version: Literal["2012-10-17", "2008-10-17"] = VERSION
    Statement: list[PolicyStatement] = Field(min_length=1)

    @field_validator("Statement")
    @classmethod
    def _complete(cls, statements: list[PolicyStatement]) -> list[PolicyStatement]:
        for i, s in enumerate(statements):
            if (s.Action is None) == (s.NotAction is None):
                raise ValueError(f"{i}: a statement needs exactly one of Action and NotAction")
            if (s.Resource is None) == (s.NotResource is None):
                raise ValueError(f"{i}: a statement needs exactly one of Resource and NotResource")
        return statements


ManagedPolicyArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/.+$")]
ServicePrincipal = Annotated[str, Field(pattern=r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$")]


class RoleSpec(Spec):
    path: Annotated[str, IMMUTABLE] = Field(
        default="/",
        max_length=512,
        pattern=r"^/([\x21-\x7e]*/)?$",
        description="The role's path; a change replaces the role.",
    )
    description: str | None = Field(default=None, max_length=1000)
    maxSessionDuration: int = Field(default=3600, ge=3600, le=43200)
    trustedServices: Annotated[list[ServicePrincipal], value_set()] = Field(
        min_length=1,
        description="Service principals that may assume the role (ecs-tasks.amazonaws.com).",
    )
    managedPolicyArns: Annotated[list[ManagedPolicyArn] | None, value_set()] = None
    inlinePolicies: dict[str, PolicyDocument] | None = Field(
        default=None, description="Policy name -> policy document, written as YAML."
    )
    instanceProfile: bool = Field(
        default=False, description="Also an instance profile of the same name holding the role."
    )
    tags: Tags | None = None

    @field_validator("trustedServices", "managedPolicyArns")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        if values and len(set(values)) != len(values):
            raise ValueError("a value appears twice")
        return values

    @field_validator("inlinePolicies")
    @classmethod
    def _policy_names(
        cls, policies: dict[str, PolicyDocument] | None
    ) -> dict[str, PolicyDocument] | None:
        # A key pattern would be `patternProperties`, which CRD schemas cannot express.
        for name in policies or {}:
            if not POLICY_NAME.match(name):
                raise ValueError(f"{name!r}: a policy name is 1-128 of letters, digits and +=,.@_-")
        return policies


class Role(Resource):
    """An IAM role, optionally with an instance profile of the same name."""

    KIND: ClassVar[str] = "Role"
    # Kubernetes has its own Role (rbac.authorization.k8s.io): `kubectl get iamroles` or the
    # short name avoids the ambiguity.
    PLURAL: ClassVar[str] = "iamroles"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("iamrole",)

    kind: Literal["Role"]
    metadata: RoleMetadata
    spec: RoleSpec

    def references(self) -> list[tuple[str, str, str]]:
        out = []
        for name, doc in (self.spec.inlinePolicies or {}).items():
            for i, st in enumerate(doc.Statement):
                for key in ("Resource", "NotResource"):
                    value = getattr(st, key)
                    items = value if isinstance(value, list) else [value]
                    at = f"spec.inlinePolicies.{name}.Statement.{i}.{key}"
                    out += [
                        ("Bucket", v.bucket, at) for v in items if isinstance(v, BucketReference)
                    ]
        return out


# -- policy documents in one normal form -------------------------------------------------------


def _values(value: Any) -> list[Any]:
    """A single value or a list, as a sorted list without duplicates."""
    items = value if isinstance(value, list) else [value]
    return sorted({json.dumps(v, sort_keys=True): v for v in items}.values(), key=str)


def _text(value: Any) -> str:
    """A condition value as IAM compares it: text, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normal_statement(statement: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if value is None or (key == "Sid" and value == ""):
            continue  # IAM treats an empty Sid as none
        if key in SET_FIELDS:
            out[key] = _values(value)
        elif key == "Condition" and isinstance(value, dict):
            out[key] = {
                op: {k: _values([_text(v) for v in _values(vs)]) for k, vs in sorted(keys.items())}
                for op, keys in sorted(value.items())
            }
        elif key == "Principal" and isinstance(value, dict):
            out[key] = {k: _values(v) for k, v in sorted(value.items())}
        else:
            out[key] = value
    return out


def normal_document(document: dict[str, Any]) -> dict[str, Any]:
    """A policy document as the diff compares it: statements and their value lists sorted,
    single values as one-item lists, condition values as strings (IAM compares them as
    strings, and returns booleans and numbers written as such unchanged or quoted), the
    Version IAM assumes when none is given."""
    statements = document.get("Statement") or []
    if isinstance(statements, dict):  # IAM accepts a single statement without a list
        statements = [statements]
    normal = [normal_statement(s) for s in statements]
    return {
        "Version": document.get("Version") or VERSION,
        "Statement": sorted(normal, key=lambda s: json.dumps(s, sort_keys=True)),
    }


def trust_document(services: list[str]) -> dict[str, Any]:
    """The trust policy a role with these trusted services has."""
    return normal_document(
        {
            "Version": VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": sorted(services)},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
