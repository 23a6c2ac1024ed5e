"""What to do with one declared resource, decided in one place for every kind.

A straight line of early returns over the observation and the diff, using only what the kind
declares: its busy statuses, the semantics of its fields (immutable forces a replacement) and
its one conditional hook, `requires_replacement(changes, current, desired)`, for the cases a
field marker cannot say (a compute environment's infrastructure change without the
service-linked role). Kinds never choose create/update/replace themselves; they carry out
what this function chose. Pure: no AWS, no context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from reconciler.engine.diff import Change, semantics_at
from reconciler.engine.types import Observed, Verb
from reconciler.models.fields import semantics_of


class Rules(Protocol):
    """The part of a kind that decisions read."""

    spec_model: type[BaseModel]
    busy_statuses: tuple[str, ...]

    def requires_replacement(
        self, changes: list[Change], current: Observed, desired: dict[str, Any]
    ) -> str | None: ...


@dataclass(frozen=True)
class Decision:
    verb: Verb  # CREATE, WAIT, REPLACE, UPDATE or NOOP
    reason: str = ""
    changes: list[Change] = field(default_factory=list)


def tags_only(changes: list[Change]) -> bool:
    return all(c.path == "tags" or c.path.startswith("tags.") for c in changes)


def spec_changes(changes: list[Change]) -> list[Change]:
    return [c for c in changes if not (c.path == "tags" or c.path.startswith("tags."))]


def decide(
    rules: Rules, current: Observed | None, desired: dict[str, Any], changes: list[Change]
) -> Decision:
    if current is None:
        return Decision(Verb.CREATE, "not in AWS")
    if current.status in rules.busy_statuses:
        # Acting on a busy resource fails in AWS; the next plan sees it settled.
        return Decision(Verb.WAIT, f"{current.aws_name} is {current.status}", changes)
    table = semantics_of(rules.spec_model)
    immutable = [c.path for c in spec_changes(changes) if semantics_at(table, c.path).immutable]
    if immutable:
        return Decision(Verb.REPLACE, f"{', '.join(immutable)} cannot change in place", changes)
    why = rules.requires_replacement(changes, current, desired)
    if why:
        return Decision(Verb.REPLACE, why, changes)
    if changes:
        return Decision(Verb.UPDATE, "", changes)
    return Decision(Verb.NOOP)
