"""The small values the engine passes around: what was observed, what will be done."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.aws.tags import Owner
from reconciler.engine.diff import Change

if TYPE_CHECKING:
    from reconciler.engine.context import Context


@dataclass
class Observed:
    """One live AWS resource, read-only, in the shape of our spec."""

    kind: str
    aws_name: str
    arn: str
    spec: dict[str, Any]  # spec-shaped, tags included under "tags"
    owner: Owner | None
    status: str | None = None  # VALID, CREATING, ACTIVE, ...
    status_reason: str | None = None
    revision: int | None = None  # job definitions
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific facts (revisions, jobs)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.spec.get("tags") or {})

    def owned_by(self, stack: str) -> bool:
        return self.owner is not None and self.owner.stack == stack


class Verb(enum.Enum):
    CREATE = ("+", "create")
    UPDATE = ("~", "update in place")
    REPLACE = ("-/+", "replace")
    REVISION = ("+", "new revision")
    SUBMIT = ("+", "submit run")
    DELETE = ("-", "delete")
    RETAIN = ("=", "retain in AWS")  # deleted from the stack, left in AWS (deletionPolicy)
    ADOPT = ("~", "adopt")
    WAIT = ("…", "wait")
    NOOP = ("=", "no changes")
    CONFLICT = ("!", "conflict")
    REFUSED = ("!", "refused")

    @property
    def symbol(self) -> str:
        return self.value[0]

    @property
    def label(self) -> str:
        return self.value[1]

    @property
    def writes(self) -> bool:
        return self not in (Verb.NOOP, Verb.WAIT, Verb.CONFLICT, Verb.REFUSED, Verb.RETAIN)

    @property
    def runs(self) -> bool:
        """Carried out when the plan is applied: writes, and waits for busy resources."""
        return self.writes or self is Verb.WAIT

    @property
    def blocks(self) -> bool:
        """A plan holding such an action must not be applied."""
        return self in (Verb.CONFLICT, Verb.REFUSED)


@dataclass
class Pending:
    """Started, and AWS is still working on it: `check` looks again after `delay` seconds.

    Long work (an environment UPDATING for 30 minutes, an image being baked) never holds a
    thread: the CLI's executor keeps polling pending checks (batched: one describe answers all
    of a kind's), and the operator returns and is woken by a timer. A check is read-only or
    takes one more idempotent step, so re-planning from scratch converges as well.
    """

    detail: str
    check: Callable[[Context], str | Pending]
    delay: float | None = None  # None: the executor's backoff decides
    patience: float | None = None  # how long the whole action may take; None: --timeout


Step = str | Pending  # done (with a detail for the user), or still in progress
Run = Callable[["Context"], Step | None]


@dataclass
class Work:
    """What a kind will do for one decision: shown in the plan first, run when applied.

    `refused` turns the action into a refusal shown in the plan (a queue delete that would kill
    jobs, a run that could never start); `verb` is the kind's own name for the decision (a new
    revision, a submitted run); `suffix` tells several actions on one resource apart.
    """

    run: Run | None = None
    summary: str = ""
    verb: Verb | None = None
    notes: list[str] = field(default_factory=list)
    refused: str | None = None
    suffix: str = ""
    aws_name: str | None = None


@dataclass
class Action:
    """One step of a plan: shown to the user first, then run once its dependencies are done."""

    id: str  # unique in the plan, e.g. "ComputeEnvironment/spot-ce" or ".../spot-ce#retire"
    kind: str
    name: str  # metadata.name
    verb: Verb
    aws_name: str = ""
    summary: str = ""  # how AWS will carry it out ("scaling update", "blue/green as x-1a2b3c")
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    after: set[str] = field(default_factory=set)
    run: Run | None = None
    # Upkeep the spec itself asks for (revisions beyond revisionHistoryLimit): a delete that
    # removes nothing the manifests still use, so it needs no confirmation.
    routine: bool = False

    @classmethod
    def of(cls, kind: str, name: str, verb: Verb, suffix: str = "", **kw: Any) -> Action:
        """An action on `kind/name`; `suffix` tells several actions on one resource apart."""
        return cls(id=f"{kind}/{name}{suffix}", kind=kind, name=name, verb=verb, **kw)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "awsName": self.aws_name,
            "action": self.verb.name.lower(),
            "summary": self.summary,
            "changes": [c.as_dict() for c in self.changes],
            "notes": list(self.notes),
            "after": sorted(self.after),
        }


@dataclass
class Plan:
    stack: str
    region: str
    actions: list[Action] = field(default_factory=list)
    observed: dict[tuple[str, str], Observed] = field(default_factory=dict)  # current, by key
    observed_all: dict[str, list[Observed]] = field(default_factory=dict)  # everything read
    desired: dict[tuple[str, str], Any] = field(default_factory=dict)  # the models, by key
    targets: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> AWS name after

    def add(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.verb not in (Verb.NOOP, Verb.WAIT, Verb.RETAIN)]

    @property
    def blocked(self) -> list[Action]:
        return [a for a in self.actions if a.verb.blocks]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)
