"""The engine's one decision, table-driven with fake kinds: every case says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from reconciler.engine.decide import decide
from reconciler.engine.diff import Change, diff
from reconciler.engine.types import Observed, Verb
from reconciler.models.fields import IMMUTABLE, SERVICE_MANAGED


class Inner(BaseModel):
    size: int | None = None
    zone: Annotated[str | None, IMMUTABLE] = None


class FakeSpec(BaseModel):
    name: Annotated[str | None, IMMUTABLE] = None
    count: int | None = None
    moved: Annotated[int | None, SERVICE_MANAGED] = None
    inner: Inner | None = None
    tags: dict[str, str] | None = None


@dataclass
class FakeKind:
    """Only what decisions read: field semantics, busy statuses and the replacement hook."""

    spec_model: type[BaseModel] = FakeSpec
    busy_statuses: tuple[str, ...] = ("CREATING", "UPDATING")
    replace_when: str | None = None  # a changed path that the hook says cannot change in place

    def requires_replacement(
        self, changes: list[Change], current: Observed, desired: dict[str, Any]
    ) -> str | None:
        if self.replace_when and any(c.path == self.replace_when for c in changes):
            return f"{self.replace_when} needs a new one"
        return None


def live(spec: dict[str, Any], status: str | None = "VALID") -> Observed:
    return Observed(kind="Fake", aws_name="f1", arn="arn:f1", spec=spec, owner=None, status=status)


BASE = {"name": "a", "count": 1, "inner": {"size": 1, "zone": "z1"}, "tags": {"team": "x"}}

CASES = [
    # (reason, kind, current spec or None, status, desired changes, expected verb)
    ("absent: create", FakeKind(), None, None, {}, Verb.CREATE),
    ("nothing changed: no-op", FakeKind(), BASE, "VALID", {}, Verb.NOOP),
    ("a mutable field: update", FakeKind(), BASE, "VALID", {"count": 2}, Verb.UPDATE),
    ("tags only: update", FakeKind(), BASE, "VALID", {"tags": {"team": "y"}}, Verb.UPDATE),
    ("an immutable field: replace", FakeKind(), BASE, "VALID", {"name": "b"}, Verb.REPLACE),
    (
        "an immutable field nested in a mutable one: replace",
        FakeKind(),
        BASE,
        "VALID",
        {"inner": {"size": 1, "zone": "z2"}},
        Verb.REPLACE,
    ),
    (
        "a mutable nested field: update",
        FakeKind(),
        BASE,
        "VALID",
        {"inner": {"size": 2, "zone": "z1"}},
        Verb.UPDATE,
    ),
    ("busy, with changes: wait first", FakeKind(), BASE, "UPDATING", {"count": 2}, Verb.WAIT),
    ("busy, no changes: wait until settled", FakeKind(), BASE, "CREATING", {}, Verb.WAIT),
    (
        "a status the kind does not call busy: act",
        FakeKind(busy_statuses=()),
        BASE,
        "UPDATING",
        {"count": 2},
        Verb.UPDATE,
    ),
    (
        "the kind's hook says the change cannot happen in place: replace",
        FakeKind(replace_when="count"),
        BASE,
        "VALID",
        {"count": 2},
        Verb.REPLACE,
    ),
    (
        "the hook is not consulted for fields it does not name: update",
        FakeKind(replace_when="count"),
        BASE,
        "VALID",
        {"tags": {"team": "y"}},
        Verb.UPDATE,
    ),
    (
        "a service-managed field AWS moved is ignored by the diff: no-op",
        FakeKind(),
        {**BASE, "moved": 5},
        "VALID",
        {"moved": 1},
        Verb.NOOP,
    ),
]


@pytest.mark.parametrize(
    ("reason", "kind", "current", "status", "change", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide(
    reason: str,
    kind: FakeKind,
    current: dict[str, Any] | None,
    status: str | None,
    change: dict[str, Any],
    expected: Verb,
) -> None:
    desired = {**(current or BASE), **change}
    observed = live(dict(current), status) if current is not None else None
    ignored = frozenset({"moved"})
    changes = diff(desired, observed.spec, kind.spec_model, ignored) if observed else []
    decision = decide(kind, observed, desired, changes)
    assert decision.verb is expected, reason


def test_a_replacement_says_which_fields_force_it() -> None:
    current = live(dict(BASE))
    desired = {**BASE, "name": "b"}
    decision = decide(FakeKind(), current, desired, diff(desired, current.spec, FakeSpec))
    assert decision.reason == "name cannot change in place"
    assert [c.path for c in decision.changes] == ["name"]


def test_a_wait_keeps_the_changes_for_the_next_plan() -> None:
    current = live(dict(BASE), "UPDATING")
    desired = {**BASE, "count": 3}
    decision = decide(FakeKind(), current, desired, diff(desired, current.spec, FakeSpec))
    assert decision.reason == "f1 is UPDATING"
    assert [c.path for c in decision.changes] == ["count"]
