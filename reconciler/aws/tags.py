"""Ownership, recorded in tags: the tool touches only what carries its own stack's tags."""

from __future__ import annotations

from dataclasses import dataclass

MANAGED_BY = "reconciler.io/managed-by"
STACK = "reconciler.io/stack"
NAME = "reconciler.io/name"
TOOL = "reconciler"
# A deletionPolicy the manifest sets, recorded on the resource: `apply --prune` and `delete
# KIND/NAME` have no manifest to read it from.
DELETION_POLICY = "reconciler.io/deletion-policy"


@dataclass(frozen=True)
class Owner:
    stack: str
    name: str


def ownership_tags(stack: str, name: str) -> dict[str, str]:
    return {MANAGED_BY: TOOL, STACK: stack, NAME: name}


def owner_of(tags: dict[str, str] | None) -> Owner | None:
    tags = tags or {}
    if tags.get(MANAGED_BY) != TOOL or STACK not in tags or NAME not in tags:
        return None
    return Owner(stack=tags[STACK], name=tags[NAME])


def user_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """Tags as the user sees them: AWS's own (aws:*) left out."""
    return {k: v for k, v in (tags or {}).items() if not k.startswith("aws:")}
