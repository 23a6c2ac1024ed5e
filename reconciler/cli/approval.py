"""Approving a plan before it is carried out, as `terraform apply` does.

A plan that deletes or replaces something (a run's cancellation included: a replaced run is
cancelled first) is shown, then confirmed on a terminal: only `yes` goes ahead. `--yes` is the
confirmation given in advance; without a terminal (CI, a pipe, `-f -`), such a plan goes ahead
only with it, so a script never deletes what its author did not see coming. A plan that only
creates or updates needs no confirmation. The operator and the engine's library calls never
get here: they have no one to ask.

A reviewed plan can be pinned instead: `--expect-plan HASH` (the hash `diff` prints) or
`--plan FILE` (a saved `diff -o json`) refuses to apply a plan that differs from it, and a
matching plan needs no further confirmation: it is the one that was approved.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from reconciler.errors import PlanError, UsageError

if TYPE_CHECKING:
    from reconciler.engine.types import Action, Plan

PROMPT = "Do you want to perform these actions?"
PLAN_FILE_MAX = 64 * 1024 * 1024  # a saved plan of a 10,000-task pipeline is a few MiB


@dataclass(frozen=True)
class Approval:
    """What the command line said about approving the plan, and how to show it."""

    yes: bool = False
    expected_hash: str | None = None
    colour: bool = False
    pinnable: bool = True  # the command takes --expect-plan: the plan shows its hash


def colour_wanted(no_color: bool) -> bool:
    """Colours only for a person at a terminal: not with --no-color, not with NO_COLOR set to
    anything but empty (no-color.org), not when stdout is a pipe or a file."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return _is_terminal(sys.stdout)


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def destructive(plan: Plan) -> list[Action]:
    from reconciler.engine.types import Verb

    return [a for a in plan.actions if a.verb in (Verb.DELETE, Verb.REPLACE) and not a.routine]


def unconfirmable(plan: Plan, approval: Approval) -> bool:
    """A destructive plan that nobody can confirm here: no --yes, no reviewed plan, no
    terminal. `approve` refuses it; knowing it first spares taking the stack's lease."""
    return (
        approval.expected_hash is None
        and not approval.yes
        and bool(destructive(plan))
        and not plan.blocked
        and not _is_terminal(sys.stdin)
    )


def approve(plan: Plan, approval: Approval, log_to_stderr: bool) -> None:
    """Returns when the plan may be carried out; raises PlanError (exit 1) when it may not.
    Called after the plan was shown, and only for a plan with work to do."""
    if approval.expected_hash is not None:
        from reconciler.render.plans import plan_hash

        now = plan_hash(plan)
        if now != approval.expected_hash:
            raise PlanError(
                f"the plan changed since it was reviewed: it was {approval.expected_hash}, it is "
                f"{now} (shown above); nothing was changed. Review the new plan and apply it."
            )
        return  # the reviewed plan: approved when it was reviewed
    risky = destructive(plan)
    if not risky or approval.yes:
        return
    what = f"{len(risky)} destructive action{'s' if len(risky) != 1 else ''}"
    what += " (deletions, replacements or run cancellations)"
    if not _is_terminal(sys.stdin):
        raise PlanError(
            f"the plan has {what} and there is no terminal to confirm them on: "
            "pass --yes to carry it out; nothing was changed"
        )
    stream = sys.stderr if log_to_stderr else sys.stdout
    bold = (lambda s: f"\033[1m{s}\033[0m") if approval.colour else (lambda s: s)
    print(
        f"\n{bold(PROMPT)}\n  The plan above will be carried out, with {what}.\n"
        "  Only 'yes' will be accepted to approve.\n",
        file=stream,
        flush=True,
    )
    print("  Enter a value: ", end="", file=stream, flush=True)
    answer = sys.stdin.readline()
    if answer.strip() != "yes":
        print(file=stream, flush=True)
        raise PlanError("apply cancelled: nothing was changed")


def saved_plan_hash(path: str) -> str:
    """The hash of a plan saved with `diff -o json > plan.json` (or `-o yaml`)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(PLAN_FILE_MAX + 1)
    except OSError as exc:
        raise UsageError(f"--plan: cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > PLAN_FILE_MAX:
        raise UsageError(f"--plan: {path} is larger than {PLAN_FILE_MAX // 2**20} MiB")
    try:
        data = json.loads(raw)
    except ValueError:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        try:
            data = YAML(typ="safe").load(raw)
        except (YAMLError, ValueError) as exc:
            raise UsageError(f"--plan: {path} is not a saved plan (JSON or YAML)") from exc
    found = data.get("planHash") if isinstance(data, dict) else None
    if not isinstance(found, str) or not found:
        raise UsageError(
            f"--plan: {path} has no planHash: save it with `reconciler diff ... -o json > {path}`"
        )
    return found


yes_option = click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="carry out deletions and replacements without asking (required without a terminal)",
)
no_color_option = click.option(
    "--no-color",
    is_flag=True,
    help="no colours (also NO_COLOR, or when the output is not a terminal)",
)
