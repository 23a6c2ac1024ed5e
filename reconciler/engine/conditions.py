"""Status conditions as Kubernetes conventions want them; pure functions, no kopf.

Two conditions, as crossplane has them: `Ready` (the AWS resource exists and is usable) and
`Synced` (the last reconcile of the current generation succeeded). `lastTransitionTime` moves
only when a condition's status flips; reason, message and observedGeneration follow every
change.
"""

from __future__ import annotations

import datetime
from typing import Any

READY = "Ready"
SYNCED = "Synced"

# Reasons, as they appear in conditions and events.
AVAILABLE = "Available"
RECONCILED = "ReconcileSuccess"
INVALID_SPEC = "InvalidSpec"
RECONCILE_ERROR = "ReconcileError"
DEPENDENCY_NOT_READY = "DependencyNotReady"
CONFLICT = "Conflict"
REFUSED = "Refused"
DRIFT = "Drift"
CREATING = "Creating"
UNAVAILABLE = "Unavailable"
DELETING = "Deleting"
MESSAGE_LIMIT = 1000


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def short(message: str, limit: int = MESSAGE_LIMIT) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def put(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """A new list with `type_` set; the others are kept as they are, in their order."""
    text = "True" if status else "False"
    old = find(conditions, type_)
    since = old["lastTransitionTime"] if old and old.get("status") == text else (at or now())
    new = {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": short(message),
        "lastTransitionTime": since,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    out = [dict(c) for c in conditions if c.get("type") != type_]
    index = next((i for i, c in enumerate(conditions) if c.get("type") == type_), len(out))
    out.insert(index, new)
    return out


def is_true(conditions: list[dict[str, Any]], type_: str) -> bool:
    cond = find(conditions, type_)
    return bool(cond and cond.get("status") == "True")
