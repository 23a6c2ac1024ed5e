"""What each kind implements, and the helpers all kinds share (tags, request building)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel

from reconciler.aws.tags import ownership_tags, user_tags
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Observed, Plan
from reconciler.models.common import Resource
from reconciler.models.fields import local_fields, semantics_of


class KindHandler(ABC):
    """observe (read-only, batched) / create / change / delete for one kind of AWS resource."""

    model: type[Resource]
    spec_model: type[BaseModel]

    @abstractmethod
    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        """Live resources that may matter: the declared ones, and every owned one if
        `everything`."""

    @abstractmethod
    def desired(self, ctx: Context, res: Any, plan: Plan) -> dict[str, Any]:
        """The spec with every reference resolved, in API shape, tags included."""

    @abstractmethod
    def plan_create(
        self, ctx: Context, res: Any, desired: dict[str, Any], plan: Plan
    ) -> Action: ...

    @abstractmethod
    def plan_change(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        plan: Plan,
    ) -> list[Action]:
        """Actions for a resource that exists; NOOP when `changes` is empty."""

    @abstractmethod
    def plan_delete(
        self, ctx: Context, name: str, live: Observed, plan: Plan, why: str
    ) -> Action: ...

    def ignored(self, res: Any) -> frozenset[str]:
        """Paths not compared: fields AWS moves itself."""
        return frozenset(p for p, s in semantics_of(self.spec_model).items() if s.service_managed)

    def pick(
        self, res: Any, candidates: list[Observed], desired: dict[str, Any]
    ) -> tuple[Observed, list[Observed]]:
        """Which of several live resources for one name is current; the rest are leftovers."""
        return candidates[0], candidates[1:]

    def link(self, plan: Plan) -> None:
        """Adds the dependencies between this kind's actions and other kinds' actions."""

    def matches_name(self, live: Observed, name: str) -> bool:
        """Whether `live` is the AWS resource called `name` (ignoring ownership)."""
        return live.aws_name == name


def desired_tags(res: Resource, stack: str, spec_tags: dict[str, str] | None) -> dict[str, str]:
    return {**res.metadata.labels, **(spec_tags or {}), **ownership_tags(stack, res.name)}


def spec_dict(res: Resource) -> dict[str, Any]:
    """The spec as plain JSON data, without unset and local fields."""
    data = res.spec.model_dump(mode="json", exclude_none=True)
    for path in local_fields(type(res.spec)):
        if "." not in path:
            data.pop(path, None)
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


def tag_changes_only(changes: list[Change]) -> bool:
    return all(c.path == "tags" or c.path.startswith("tags.") for c in changes)
