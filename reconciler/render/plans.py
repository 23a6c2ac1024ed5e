"""Plans, progress and live state as people and programs read them. Pure: no AWS, no printing."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from reconciler.engine.apply import Outcome
from reconciler.engine.diff import Change
from reconciler.engine.status import resource_fields, resource_readiness
from reconciler.engine.types import Action, Plan, Verb
from reconciler.registry import kinds
from reconciler.render.dump import dump as dump  # re-exported: render.dump(...)

COUNT_WORDS = [
    (Verb.CREATE, "to create"),
    (Verb.UPDATE, "to update"),
    (Verb.ADOPT, "to adopt"),
    (Verb.REPLACE, "to replace"),
    (Verb.REVISION, "new revision"),
    (Verb.SUBMIT, "run to submit"),
    (Verb.DELETE, "to delete"),
    (Verb.RETAIN, "retained in AWS"),
    (Verb.CONFLICT, "conflict"),
    (Verb.REFUSED, "refused"),
    (Verb.NOOP, "unchanged"),
]


# ANSI SGR codes per verb, as terraform and `kubectl diff` colour them: green adds, yellow
# changes in place, red removes or replaces; what blocks the plan is red and bold.
COLOURS = {
    Verb.CREATE: "32",
    Verb.REVISION: "32",
    Verb.SUBMIT: "32",
    Verb.UPDATE: "33",
    Verb.ADOPT: "33",
    Verb.DELETE: "31",
    Verb.REPLACE: "31",
    Verb.CONFLICT: "1;31",
    Verb.REFUSED: "1;31",
}


def paint(text: str, verb: Verb, colour: bool = True) -> str:
    """`text` in the verb's colour (when `colour`); a verb without a colour stays plain."""
    code = COLOURS.get(verb)
    return f"\033[{code}m{text}\033[0m" if colour and code else text


def _subject(action: Action) -> str:
    subject = f"{action.kind}/{action.name}"
    if action.aws_name and action.aws_name != action.name:
        subject += f" ({action.aws_name})"
    return subject


def plan_lines(plan: Plan, show_noop: bool = False, colour: bool = False) -> list[str]:
    """The plan for people; with `colour`, each action's line in its verb's colour."""
    lines = [f"Plan for stack {plan.stack!r} in {plan.region}:"]
    shown = [a for a in plan.actions if show_noop or a.verb is not Verb.NOOP]
    width = max((len(_subject(a)) for a in shown), default=0)
    for a in shown:
        what = a.verb.label + (f": {a.summary}" if a.summary else "")
        lines.append(paint(f"  {a.verb.symbol:>3} {_subject(a):<{width}}  {what}", a.verb, colour))
        lines.extend(f"        {change}" for change in a.changes)
        lines.extend(f"        note: {note}" for note in a.notes)
    if len(shown) == 0:
        lines.append("  No changes: AWS matches the manifests.")
    lines.append(summary_line(plan))
    return lines


def plan_hash(plan: Plan) -> str:
    """What a reviewer approved, in 16 hex digits: the stack, the region, every action that
    changes something (with its changes and notes, secrets already hidden in them) and the
    declared specs, so that a create of something else under the same name is another plan.
    Actions that change nothing are left out: a run's status moves on, the plan stays the same.
    The specs come from the manifests the reviewer has: the hash tells nothing they do not."""
    actions = sorted((a.as_dict() for a in plan.changes), key=lambda a: str(a["id"]))
    declared = {
        f"{kind}/{name}": res.model_dump(mode="json") if hasattr(res, "model_dump") else res
        for (kind, name), res in sorted(plan.desired.items())
    }
    data = {"stack": plan.stack, "region": plan.region, "actions": actions, "declared": declared}
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


PLURALS = {
    "run to submit": "runs to submit",
    "new revision": "new revisions",
    "conflict": "conflicts",
}


def _plural(words: str) -> str:
    return PLURALS.get(words, words)  # "to create" and the like have no noun


def summary_line(plan: Plan) -> str:
    counts = Counter(a.verb for a in plan.actions)
    parts = [
        f"{counts[v]} {_plural(words) if counts[v] > 1 else words}"
        for v, words in COUNT_WORDS
        if counts[v]
    ]
    return "Plan: " + (", ".join(parts) if parts else "nothing declared") + "."


def outcome_line(o: Outcome) -> str:
    timing = f" ({o.seconds:.1f}s)" if o.status == "done" else ""
    return f"  {o.status:<7} {o.action.verb.symbol:>3} {_subject(o.action)}: {o.detail}{timing}"


def outcome_summary(outcomes: list[Outcome], seconds: float) -> str:
    counts = Counter(o.status for o in outcomes)
    return (
        f"Apply {'complete' if not counts['failed'] and not counts['skipped'] else 'FAILED'}:"
        f" {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped"
        f" in {seconds:.1f}s."
    )


def plan_data(plan: Plan) -> dict[str, Any]:
    return {
        "stack": plan.stack,
        "region": plan.region,
        "hasChanges": plan.has_changes,
        "planHash": plan_hash(plan),
        "actions": [a.as_dict() for a in plan.actions],
    }


def state_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per declared resource: what lives in AWS and whether it matches."""
    rows = []
    for key, _res in plan.desired.items():
        kind, name = key
        actions = [a for a in plan.actions if a.kind == kind and a.name == name]
        main = next(
            (a for a in actions if a.id == f"{kind}/{name}"), actions[0] if actions else None
        )
        live = plan.observed.get(key)
        if main is None or main.verb is Verb.CREATE:
            sync = "missing"
        elif main.verb is Verb.CONFLICT:
            sync = "conflict"
        elif main.verb is Verb.NOOP and all(a.verb is Verb.NOOP for a in actions):
            sync = "in sync"
        else:
            sync = (
                f"drift ({len(main.changes)} field{'s' if len(main.changes) != 1 else ''})"
                if main.changes
                else "changes pending"
            )
        rows.append(
            {
                "kind": kind,
                "name": name,
                "awsName": live.aws_name if live else None,
                "status": live.status if live else None,
                "state": (live.spec.get("state") if live else None),
                # job definitions: the revision; pipelines and tasks: the run
                "revision": (live.revision or live.spec.get("runId")) if live else None,
                "sync": sync,
                "arn": live.arn if live else None,
                "drift": [c.as_dict() for c in main.changes] if main else [],
                "ready": resource_readiness(kind, live)[0],
                # what the kind declares for `get` and for the custom resource's status
                "fields": resource_fields(plan, key),
            }
        )
    return rows


def drift_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`get`'s drift, one line per changed field, formatted as plans are (secrets hidden)."""
    return [
        f"  {row['kind']}/{row['name']}: {Change(**change)}"
        for row in rows
        for change in row["drift"]
    ]


def kind_tables(rows: list[dict[str, Any]], wide: bool = False) -> list[str]:
    """One table per kind, as `kubectl get a,b` prints them: NAME, the columns the kind
    declares, READY and SYNC; `wide` (-o wide) adds the ARN."""
    lines: list[str] = []
    registered = kinds()
    for kind in dict.fromkeys(r["kind"] for r in rows):
        columns = registered[kind].columns
        names = ["name", *(c.name for c in columns), "ready", "sync"]
        if wide and "arn" not in names:
            names.append("arn")
        cells = [
            {
                "arn": r["arn"],
                "name": r["name"],
                **{c.name: r["fields"].get(c.field) for c in columns},
                "ready": r["ready"],
                "sync": r["sync"],
            }
            for r in rows
            if r["kind"] == kind
        ]
        if lines:
            lines.append("")
        lines.append(f"{kind}:")
        lines += table(cells, names)
    return lines


def table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    cells = [[c.upper() for c in columns]] + [
        ["-" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
