"""A plan as a pull-request comment (GitHub-flavoured Markdown). Pure: no AWS, no printing.

Destructive actions (replacements, deletions) and blocked ones (conflicts, refusals) are called
out at the top, where a reviewer looks first; then a count per action, then one section per
resource with its field changes as a table. Every value from manifests or AWS is escaped;
secrets never reach here (a `Change` holds `(sensitive value)` in their place).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from reconciler import __version__
from reconciler.engine.diff import Change, _fmt
from reconciler.engine.types import Action, Plan, Verb
from reconciler.models.sensitive import SENSITIVE
from reconciler.render.plans import COUNT_WORDS, plan_hash, summary_line

MARKER = "<!-- reconciler:plan -->"  # lets a workflow find (and replace) its earlier comment
# The reviewed plan's hash, for the workflow to apply exactly that plan (--expect-plan).
HASH_MARKER = "<!-- reconciler:plan-hash {} -->"
MAX_CHARS = 60_000  # GitHub rejects comments over 65,536 characters
MAX_VALUE = 300  # a longer value is cut in the table; the CLI shows it whole
MAX_LISTED = 50  # entries of the blocked and destructive lists at the top
DESTRUCTIVE = (Verb.REPLACE, Verb.DELETE)
EMOJI = {
    Verb.CREATE: "🟢",
    Verb.UPDATE: "🟡",
    Verb.ADOPT: "🟡",
    Verb.REPLACE: "🔴",
    Verb.REVISION: "🟢",
    Verb.SUBMIT: "🟢",
    Verb.DELETE: "🔴",
    Verb.RETAIN: "⚪",
    Verb.CONFLICT: "⛔",
    Verb.REFUSED: "⛔",
    Verb.NOOP: "⚪",
}
_SPECIAL = re.compile(r"([\\`*_|<>\[\]~#])")


def escape(text: Any) -> str:
    """Text safe inside Markdown, table cells included: specials escaped, one line."""
    out = _SPECIAL.sub(r"\\\1", str(text))
    return out.replace("\r\n", "\n").replace("\n", "<br>")


def value(v: Any) -> str:
    """A value for a table cell: (unset) for absent, JSON for structures, cut when long."""
    if v is None:
        return "*(unset)*"
    if v == SENSITIVE:
        return f"*{SENSITIVE}*"
    text = _fmt(v)  # as the text plan shows it
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "…"
    return escape(text)


def subject(action: Action) -> str:
    text = f"**{escape(action.kind)}/{escape(action.name)}**"
    if action.aws_name and action.aws_name != action.name:
        text += f" (AWS: {escape(action.aws_name)})"
    return text


def _what(action: Action) -> str:
    return escape(action.verb.label) + (f": {escape(action.summary)}" if action.summary else "")


def _bullet(action: Action) -> str:
    return f"- `{action.verb.symbol}` {subject(action)}: {_what(action)}"


def _bullets(actions: list[Action]) -> list[str]:
    lines = [_bullet(a) for a in actions[:MAX_LISTED]]
    if len(actions) > MAX_LISTED:
        lines.append(f"- … and {len(actions) - MAX_LISTED} more")
    return lines


def _summary_table(plan: Plan) -> list[str]:
    counts = Counter(a.verb for a in plan.actions)
    rows = [
        f"| {EMOJI[verb]} `{verb.symbol}` | {words} | {counts[verb]} |"
        for verb, words in COUNT_WORDS
        if counts[verb]
    ]
    return ["| | Action | Count |", "|---|---|---:|", *rows]


def _changes_table(changes: list[Change]) -> list[str]:
    return [
        "| Path | From | To |",
        "|---|---|---|",
        *(f"| {escape(c.path)} | {value(c.old)} | {value(c.new)} |" for c in changes),
    ]


def _section(key: tuple[str, str], actions: list[Action]) -> list[str]:
    kind, name = key
    worst = max(actions, key=lambda a: (a.verb.blocks, a.verb in DESTRUCTIVE, a.verb.writes))
    lines = [f"### {EMOJI[worst.verb]} {escape(kind)}/{escape(name)}", ""]
    for a in actions:
        lines.append(f"`{a.verb.symbol}` {subject(a)}: {_what(a)}")
        lines.append("")
        if a.changes:
            lines.extend([*_changes_table(a.changes), ""])
        for note in a.notes:
            lines.extend([f"> **Note:** {escape(note)}", ""])
    return lines


def plan_markdown(plan: Plan, title: str = "Reconciler plan") -> str:
    """The plan as a pull-request comment; ends with a line naming the stack and region."""
    changed = plan.changes
    digest = plan_hash(plan)
    lines = [MARKER, f"## {escape(title)}", ""]
    if not changed:
        lines += ["✅ **No changes**: AWS matches the manifests.", ""]
    blocked = plan.blocked
    if blocked:
        lines += ["### ⛔ Blocked: this plan cannot be applied", ""]
        for a in blocked[:MAX_LISTED]:
            lines += [_bullet(a), *(f"  - {escape(note)}" for note in a.notes)]
        if len(blocked) > MAX_LISTED:
            lines.append(f"- … and {len(blocked) - MAX_LISTED} more")
        lines.append("")
    destructive = [a for a in changed if a.verb in DESTRUCTIVE]
    if destructive:
        lines += ["### ⚠️ Destructive changes", ""]
        lines += [*_bullets(destructive), ""]
    if plan.actions:
        lines += [*_summary_table(plan), ""]
    else:
        lines += [escape(summary_line(plan)), ""]

    grouped: dict[tuple[str, str], list[Action]] = {}
    for a in changed:
        grouped.setdefault((a.kind, a.name), []).append(a)
    footer = [
        "---",
        HASH_MARKER.format(digest),
        f"<sub>Stack {escape(plan.stack)} · region {escape(plan.region)}"
        f" · plan {digest} · reconciler {__version__}</sub>",
    ]
    # Room for the line saying how many resources did not fit.
    size = sum(len(line) + 1 for line in lines + footer) + 200
    sections = [_section(key, actions) for key, actions in grouped.items()]
    shown = 0
    for section in sections:
        cost = sum(len(line) + 1 for line in section)
        if size + cost > MAX_CHARS:
            break
        lines += section
        size += cost
        shown += 1
    left = len(sections) - shown
    if left:
        lines += [
            f"*… and {left} more resource{'s' if left != 1 else ''} with changes:"
            " run `reconciler diff` for the whole plan.*",
            "",
        ]
    return "\n".join(lines + footer) + "\n"
