"""The status being worked out for one custom resource, and the patch that writes it.

A handler reads the status as served, changes conditions and fields on a copy, and writes one
JSON merge patch at the end, only if something changed. No kopf here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.engine import conditions as c

STATUS_FIELDS = (
    "observedGeneration",
    "conditions",
    "arn",
    "awsName",
    "awsStatus",
    "state",
    "revision",
    "runId",
    "runStatus",
    "jobs",
    "tasks",
)


def merge_delta(
    old: dict[str, Any], new: dict[str, Any], sent: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new` (None removes a key).

    `sent` is what an earlier patch may have written that `old` does not show yet: keys it has
    and `new` has not are removed too (a map such as job counts loses keys as states move).
    """
    sent = sent or {}
    out: dict[str, Any] = {}
    for key in old.keys() | new.keys() | sent.keys():
        before, after, earlier = old.get(key), new.get(key), sent.get(key)
        if isinstance(after, dict) and isinstance(before, dict | None):
            inner = merge_delta(before or {}, after, earlier if isinstance(earlier, dict) else None)
            if inner or before is None:
                out[key] = inner
        elif key not in new:
            if key in old or key in sent:
                out[key] = None
        elif before != after or key not in old:
            out[key] = after
    return out


@dataclass
class Draft:
    """The status being worked out for one object; written once, and only if it changed."""

    before: dict[str, Any]  # as served
    after: dict[str, Any]
    generation: int | None
    sent: dict[str, Any] | None = None  # as last written, if that may not be served yet

    @property
    def conditions(self) -> list[dict[str, Any]]:
        return list(self.after.get("conditions") or [])

    def put(self, type_: str, status: bool, reason: str, message: str) -> bool:
        """Sets a condition; True if its status, reason or message changed."""
        old = c.find(self.conditions, type_) or {}
        self.after["conditions"] = c.put(
            self.conditions, type_, status, reason, message, self.generation
        )
        new = c.find(self.after["conditions"], type_) or {}
        return any(old.get(k) != new.get(k) for k in ("status", "reason", "message"))

    def ready(self) -> bool:
        return c.is_true(self.conditions, c.READY)

    def synced(self) -> bool:
        return c.is_true(self.conditions, c.SYNCED)

    def observed(self) -> None:
        self.after["observedGeneration"] = self.generation

    @property
    def current(self) -> bool:
        return self.after.get("observedGeneration") == self.generation

    def delta(self) -> dict[str, Any]:
        return merge_delta(self.before, self.after, self.sent)
