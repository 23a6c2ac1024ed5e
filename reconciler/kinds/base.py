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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from reconciler import API_VERSION
from reconciler.aws.tags import DELETION_POLICY, ownership_tags, user_tags
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Verb, Work
from reconciler.models.common import RESERVED_TAG_PREFIX, Resource
from reconciler.models.fields import drop_local, semantics_of
from reconciler.models.written import defaulted, hide_secrets, set_at, written

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


@dataclass
class Manifest:
    """A live resource written as a manifest `apply` takes (`get -o yaml`, `export`).

    `hidden`: paths whose secret value was replaced by a placeholder (applying the manifest
    as it is would write the placeholder); `defaulted`: fields AWS has unset that a manifest
    cannot leave unset (applying it sets the model's default: the plan shows it); `problems`:
    (path, message) for what the manifest cannot express (then `data` is not a valid manifest
    and must not be written)."""

    data: dict[str, Any]
    hidden: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)  # unset in AWS; the default applies


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
    # `gc -f` deletes the stack's resources of this kind that no manifest declares any more:
    # leftovers that bill by the month (images and their snapshots), not ordinary drift.
    collected_when_undeclared: ClassVar[bool] = False

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

    def aws_name(self, ctx: Context, res: Any) -> str:
        """The name a new resource gets in AWS: its manifest name, unless the kind derives
        another (a bucket's `namePrefix`). Derived, never random, so that an interrupted
        create finds the same name again."""
        return str(res.name)

    def observe_all(self, ctx: Context) -> list[Observed]:
        """Every live resource of the kind, whoever owns it (`export --unowned`). By default
        what `observe(everything=True)` reads: kinds that list the whole account (compute
        environments, queues, policies) report others' resources there too."""
        return self.observe(ctx, [], True)

    def manifest(self, live: Observed, name: str, name_of: Callable[[str, str], str]) -> Manifest:
        """`live` as a manifest named `name`: its spec as a user writes it (models/written.py),
        its tags as `metadata.labels` (which become the same tags again; the tool's own are
        left out), a recorded deletionPolicy as the spec's, and the resources it refers to by
        the names `name_of(kind, aws_name)` gives. Applying it to the same resource is a
        no-op (with `--adopt` for one the stack does not own: then only the ownership tags
        change)."""
        spec = written(live.spec, self.spec_model)
        policy = live.tags.get(DELETION_POLICY)
        if policy in ("Retain", "Delete"):  # set by a manifest, recorded in a tag
            spec["deletionPolicy"] = policy
        tags = spec.pop("tags", None) or {}
        labels = {k: v for k, v in tags.items() if not k.startswith(RESERVED_TAG_PREFIX)}
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = labels
        data = {"apiVersion": API_VERSION, "kind": self.name, "metadata": metadata, "spec": spec}
        try:
            res = self.model.model_validate(data)
        except ValidationError as exc:
            problems = [
                (".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
            return Manifest(data, problems=problems)
        for kind, aws_name, path in res.references():
            set_at(data, path, name_of(kind, aws_name))
        unset = [f"spec.{k}" for k in defaulted(live.spec, self.spec_model) if k not in spec]
        return Manifest(data, hidden=hide_secrets(spec, res.spec), defaulted=unset)

    def matches_name(self, live: Observed, name: str) -> bool:
        """Whether `live` is the AWS resource called `name` (ignoring ownership)."""
        return live.aws_name == name

    @property
    def tracks_use(self) -> bool:
        """Whether its live resources say what they use (`observed_refs`): a delete plan then
        reads every one the stack owns, to see who still uses what is deleted."""
        return type(self).observed_refs is not Kind.observed_refs

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

    def output(self, ctx: Context, refs: Refs, name: str, what: str) -> str:
        """What another resource of the stack that refers to `name` of this kind gets (a
        role's `arn`, a bucket's `url`), computed at plan time from the AWS name the plan
        gives it; only kinds that others refer to by value implement it."""
        raise NotImplementedError(f"{self.name} gives no {what!r} to other resources")

    def deletion_policy(self, res: Resource | None, live: Observed | None) -> str:
        """What deleting this resource from the stack does: the manifest's word when there
        is a manifest, else the one recorded on the resource when it was applied, else the
        kind's default."""
        if res is not None:
            return res.deletion_policy
        recorded = live.tags.get(DELETION_POLICY) if live is not None else None
        return recorded if recorded in ("Retain", "Delete") else self.model.DELETION_POLICY

    # -- reporting ---------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        """What the custom resource's status and `reconciler get` show about the AWS side."""
        if live is None:
            return {"arn": None, "awsName": None, "awsStatus": None}
        return {"arn": live.arn or None, "awsName": live.aws_name, "awsStatus": live.status}


def desired_tags(res: Resource, stack: str, spec_tags: dict[str, str] | None) -> dict[str, str]:
    tags = {**res.metadata.labels, **(spec_tags or {}), **ownership_tags(stack, res.name)}
    policy = getattr(res.spec, "deletionPolicy", None)
    if policy:
        tags[DELETION_POLICY] = policy
    return tags


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


def resolve_environment(
    ctx: Context, refs: Refs, environment: list[dict[str, Any]] | None, kind: str
) -> None:
    """Environment values that name a resource of the stack (`{bucket: NAME, as: url}`),
    replaced in place by what that resource gives; `kind` is the kind they name."""
    for entry in environment or []:
        value = entry.get("value")
        if isinstance(value, dict):
            what = value.get("as_") or value.get("as") or "name"
            entry["value"] = refs.output(ctx, kind, value["bucket"], what)
