"""The one interface a kind implements; everything outside a kind's two modules asks it.

A kind is a model module (`models/<kind>.py`: the manifest, its field semantics, its
references) and an AWS module (`kinds/<kind>.py`: a subclass of `Kind`). The engine, the CLI,
the operator, the CRDs, the JSON Schemas and the IAM policy learn everything about a kind from
the attributes and methods below, never from its name. `docs/adding-a-kind.md` walks through
writing one.

Four verbs and one observation: `observe` is read-only and batched; `create`, `update` and
`delete` say how to carry out what the engine decided (engine/decide.py) and return `Work`,
whose `run` returns at once: either done, or `Pending` with a check to look again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from reconciler.aws.tags import ownership_tags, user_tags
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Verb, Work
from reconciler.models.common import Resource
from reconciler.models.fields import drop_local, semantics_of

BUSY = ("CREATING", "UPDATING", "DELETING")


@dataclass(frozen=True)
class Column:
    """A column of `reconciler get` and of the CRD's printer columns.

    `field` names a status field the kind writes (`status_fields`), so both read one value.
    """

    name: str
    field: str
    type: str = "string"
    description: str = ""
    priority: int = 0  # 1: only with `kubectl get -o wide`


@dataclass(frozen=True)
class Permission:
    """IAM actions a kind's AWS calls need beyond Describe/List, and the resources they act on.

    `resources` are ARN suffixes after `arn:PARTITION:SERVICE:REGION:ACCOUNT:` (or the whole
    ARN for global services, written with `{partition}` and `{account}`). The policy generator
    checks that every write call the code makes is covered by some kind's permission.
    """

    sid: str
    service: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)


STATUS_COLUMNS = (
    Column("AWS Name", "awsName", description="The name in AWS."),
    Column("Status", "awsStatus", description="What AWS reports."),
)


class Kind(ABC):
    """One kind of AWS resource (or of work, such as a pipeline run)."""

    model: ClassVar[type[Resource]]
    spec_model: ClassVar[type[BaseModel]]
    busy_statuses: ClassVar[tuple[str, ...]] = BUSY  # decide: wait, do not act
    ready_statuses: ClassVar[tuple[str, ...]] = ()  # Ready=True in conditions
    create_before_destroy: ClassVar[bool] = False  # replace: new first, under `replacement_name`
    columns: ClassVar[tuple[Column, ...]] = STATUS_COLUMNS
    permissions: ClassVar[tuple[Permission, ...]] = ()
    runs: ClassVar[bool] = False  # a kind of work: watch, logs and report apply to it
    conflicts_by_name: ClassVar[bool] = True  # a same-named unowned resource is a conflict

    @property
    def name(self) -> str:
        return self.model.KIND

    # -- reading -----------------------------------------------------------------------------

    @abstractmethod
    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        """Live resources that may matter: the declared ones, and every owned one if
        `everything`. Read-only; as few calls as the API allows."""

    @abstractmethod
    def desired(self, ctx: Context, res: Any, refs: Refs) -> dict[str, Any]:
        """The spec with every reference resolved, in the shape `observe` reports, tags
        included. What other resources of the plan are (a replacement's new name, a job
        definition's spec) comes from `refs`, for the references the model declares."""

    def ignored(self, res: Any) -> frozenset[str]:
        """Paths not compared: fields AWS moves itself."""
        return frozenset(p for p, s in semantics_of(self.spec_model).items() if s.service_managed)

    def pick(
        self, res: Any, candidates: list[Observed], desired: dict[str, Any]
    ) -> tuple[Observed, list[Observed]]:
        """Which of several owned live resources for one name is current; the rest are
        leftovers of an interrupted replacement, deleted by the plan."""
        return candidates[0], candidates[1:]

    def matches_name(self, live: Observed, name: str) -> bool:
        """Whether `live` is the AWS resource called `name` (ignoring ownership)."""
        return live.aws_name == name

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        """(kind, AWS name) of what a live resource uses now: deleting one of those waits
        until this resource has let go of it."""
        return []

    # -- deciding ----------------------------------------------------------------------------

    def requires_replacement(
        self, changes: list[Change], current: Observed, desired: dict[str, Any]
    ) -> str | None:
        """Why these changes cannot be made in place, beyond immutable fields; None if they
        can. Pure."""
        return None

    def replacement_name(self, res: Any, desired: dict[str, Any], taken: set[str]) -> str:
        """The AWS name a create-before-destroy replacement gets."""
        return str(res.name)

    # -- carrying out ------------------------------------------------------------------------

    @abstractmethod
    def create(
        self, ctx: Context, res: Any, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work: ...

    @abstractmethod
    def update(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work: ...

    @abstractmethod
    def delete(self, ctx: Context, live: Observed, why: str) -> Work: ...

    def unchanged(self, ctx: Context, res: Any, current: Observed) -> Work:
        """What the plan says of a resource that needs nothing (a job definition's revision)."""
        return Work()

    def wait(self, ctx: Context, current: Observed) -> Work:
        """Waits for a busy resource to settle (the default reads it once more)."""
        return Work(summary=f"{current.aws_name} is {current.status}: waiting for it to settle")

    def replace(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        why: str,
        refs: Refs,
    ) -> list[Work] | None:
        """A replacement carried out the kind's own way, or None for the engine's (create the
        new one and delete the old, in the order `create_before_destroy` says)."""
        return None

    def housekeeping(self, ctx: Context, res: Any, current: Observed, main: Verb) -> list[Work]:
        """Extra work after the resource's own action, whose verb is `main` (a job
        definition's revisions beyond its history limit)."""
        return []

    # -- reporting ---------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        """What the custom resource's status and `reconciler get` show about the AWS side."""
        if live is None:
            return {"arn": None, "awsName": None, "awsStatus": None}
        return {"arn": live.arn or None, "awsName": live.aws_name, "awsStatus": live.status}


def desired_tags(res: Resource, stack: str, spec_tags: dict[str, str] | None) -> dict[str, str]:
    return {**res.metadata.labels, **(spec_tags or {}), **ownership_tags(stack, res.name)}


def spec_dict(res: Resource) -> dict[str, Any]:
    """The spec as plain JSON data, without unset and local fields (at any depth: an
    environment entry's `sensitive` flag is ours, and AWS would reject it)."""
    data: dict[str, Any] = drop_local(
        res.spec.model_dump(mode="json", exclude_none=True), type(res.spec)
    )
    return data


def request_of(desired: dict[str, Any]) -> dict[str, Any]:
    """An API request body from a desired spec: tags travel separately."""
    return {k: v for k, v in desired.items() if k != "tags"}


def sync_tags(ctx: Context, arn: str, have: dict[str, str], want: dict[str, str]) -> None:
    """TagResource/UntagResource with only what differs; works for every Batch resource."""
    batch = ctx.aws.client("batch")
    have = user_tags(have)
    add = {k: v for k, v in want.items() if have.get(k) != v}
    drop = [k for k in have if k not in want]
    if add:
        batch.tag_resource(resourceArn=arn, tags=add)
    if drop:
        batch.untag_resource(resourceArn=arn, tagKeys=drop)
