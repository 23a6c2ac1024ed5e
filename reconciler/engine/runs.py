"""The runs a plan's kinds of work call for, to follow, report and show in status.

Kinds that declare `runs` (pipelines, tasks) answer `run_target`; this module asks them, so
the CLI (`--wait`, `get --watch`, `logs`, `report`) and the operator's status name no kind.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.context import Context
from reconciler.engine.refs import Refs
from reconciler.engine.types import Plan
from reconciler.registry import kinds


def is_run_kind(kind: str) -> bool:
    found = kinds().get(kind)
    return bool(found and found.runs)


def watch_targets(
    ctx: Context, plan: Plan, selected: set[tuple[str, str]] | None = None, run: str | None = None
) -> list[Any]:
    """The runs the plan's kinds of work call for (or `run`), with their job IDs."""
    refs = Refs(plan)
    targets = []
    for key, res in plan.desired.items():
        kind = kinds().get(key[0])
        if kind is None or not kind.runs or (selected and key not in selected):
            continue
        target = kind.run_target(ctx, res, refs, run)
        if target is not None:
            targets.append(target)
    return targets


def spec_run_id(ctx: Context, plan: Plan, key: tuple[str, str]) -> str:
    """The run the spec calls for (a hash of the spec and its job definitions; no AWS call)."""
    return str(kinds()[key[0]].run_id(plan.desired[key], Refs(plan)))
