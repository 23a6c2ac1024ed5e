"""The run report as one HTML page for people: header, task table, SVG timeline, failures.

This module decides what the page says; templates/report.html.j2 decides how it looks. The page
is a single file with inline CSS and SVG so it can be attached to a ticket or opened from an
artifact store without a network or a script. Task names, status reasons and log stream names
come from users and from AWS, so the template autoescapes everything it prints.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.runs.report.data import Report
from reconciler.runs.report.formatting import DASH, clock, elapsed, when
from reconciler.runs.report.shapes import COLOURS
from reconciler.runs.report.timeline import timeline

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
MAX_FAILURE_ROWS = 50


@dataclass(frozen=True)
class TaskLine:
    """One row of the task table, every cell already in words."""

    name: str
    job_id: str
    status: str
    array_note: str | None
    attempts: int | str
    exit_codes: str
    started: str
    duration: str
    depends_on: str
    reason: str | None


@dataclass(frozen=True)
class AttemptLine:
    """One attempt of a retried task (or array child): each run of its container."""

    task: str
    where: str
    exit_code: Any
    started: str
    duration: str
    reason: str | None
    log_stream: str | None


@dataclass(frozen=True)
class FailureLine:
    task: str
    where: str
    exit_code: Any
    reason: str | None
    log_stream: str | None


def render_html(report: Report) -> str:
    """Header, per-task table, timeline, attempts, failures: the order in which a person asks
    questions."""
    now = report["generatedAt"]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=f"{report['pipeline']} run {report['runId']}",
            report=report,
            facts=_facts(report),
            tasks=[_task_line(t, report["generatedAt"]) for t in report["tasks"]],
            timeline=timeline(report),
            attempts=[row for t in report["tasks"] for row in _attempt_lines(t, now)],
            failures=[row for t in report["tasks"] for row in _failure_lines(t)],
            colours=COLOURS,
        )
    )


@functools.cache
def _environment() -> jinja2.Environment:
    """Built once, on the first page: importing jinja2 is left to the code that draws pages."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reconciler.runs.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(css_name=css_name, dash=_dash, thousands=_thousands)
    return env


def css_name(status: Any) -> str:
    """Statuses become class names, and a status AWS adds tomorrow must not break the CSS."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(status))


def _dash(value: Any) -> Any:
    return DASH if value is None else value


def _thousands(value: int) -> str:
    return f"{value:,}"


def _facts(r: Report) -> list[tuple[str, str]]:
    return [
        ("Run id", r["runId"]),
        ("Started", when(r["startedAt"])),
        ("Stopped", when(r["stoppedAt"])),
        ("Duration", elapsed(r["startedAt"], r["stoppedAt"], r["generatedAt"])),
        ("Tasks", _task_counts(r["tasks"])),
        ("Report taken", when(r["generatedAt"])),
    ]


def _task_counts(tasks: list[dict[str, Any]]) -> str:
    counts = Counter(t["status"] for t in tasks)
    words = (f"{n} {s.lower().replace('_', ' ')}" for s, n in counts.items())
    return f"{len(tasks)}: " + ", ".join(words)


def _task_line(t: dict[str, Any], now: str) -> TaskLine:
    return TaskLine(
        name=t["name"],
        job_id=t["jobId"] or "not submitted",
        status=t["status"],
        array_note=_array_note(t),
        attempts=len(t["attempts"]) if t["attempts"] else (DASH if t["children"] else 0),
        exit_codes=_exit_codes(t),
        started=clock(t["startedAt"]),
        duration=elapsed(t["startedAt"], t["stoppedAt"], now),
        depends_on=", ".join(t["dependsOn"]) or DASH,
        reason=t["statusReason"],
    )


def _array_note(t: dict[str, Any]) -> str | None:
    summary = {s: n for s, n in (t["statusSummary"] or {}).items() if n}
    if t["arraySize"] is None and not summary:
        return None
    counts = " · ".join(f"{n} {str(s).lower()}" for s, n in summary.items())
    size = t["arraySize"] if t["arraySize"] is not None else len(t["children"])
    return f"array of {size}{': ' if counts else ''}{counts}"


def _exit_codes(t: dict[str, Any]) -> str:
    """Attempts in order for one job (1 → 0 is a retry that healed); counts for an array."""
    if t["children"]:
        counts = Counter(c["exitCode"] for c in t["children"] if c["exitCode"] is not None)
        times = "\N{NO-BREAK SPACE}\N{MULTIPLICATION SIGN}"
        return " · ".join(f"{code}{times}{n}" for code, n in sorted(counts.items())) or DASH
    codes = [str(a["exitCode"]) for a in t["attempts"] if a["exitCode"] is not None]
    return " → ".join(codes) or DASH


def _failure_lines(t: dict[str, Any]) -> list[FailureLine]:
    """Failed attempts and children, capped: the first fifty explain a failure as well as all."""
    name = t["name"]
    rows = [
        FailureLine(name, f"attempt {n}", a["exitCode"], a["statusReason"], a["logStreamName"])
        for n, a in enumerate(t["attempts"], 1)
        if a["exitCode"] not in (0, None)
    ]
    failed = [c for c in t["children"] if c["status"] == "FAILED"]
    rows += [
        FailureLine(
            name,
            f"child [{_dash(c['index'])}]",
            c["exitCode"],
            c["statusReason"],
            c.get("logStreamName"),  # reports saved before it was recorded lack it
        )
        for c in failed[:MAX_FAILURE_ROWS]
    ]
    if len(failed) > MAX_FAILURE_ROWS:
        more = f"and {len(failed) - MAX_FAILURE_ROWS:,} more failed children"
        rows.append(FailureLine(name, more, "", "", ""))
    if not rows and t["status"] == "FAILED":
        rows.append(FailureLine(name, "job", None, t["statusReason"], None))
    return rows


def _attempt_lines(t: dict[str, Any], now: str) -> list[AttemptLine]:
    """Every attempt of a task that was retried, then of its retried children (capped as the
    failures are): which run failed how, and where its log is."""

    def lines(where: str, attempts: list[dict[str, Any]]) -> list[AttemptLine]:
        return [
            AttemptLine(
                t["name"],
                f"{where}attempt {n}",
                a["exitCode"],
                clock(a["startedAt"]),
                elapsed(a["startedAt"], a["stoppedAt"], now),
                a["statusReason"],
                a["logStreamName"],
            )
            for n, a in enumerate(attempts, 1)
        ]

    rows = lines("", t["attempts"]) if len(t["attempts"]) > 1 else []
    retried = [c for c in t["children"] if len(c.get("attempts") or []) > 1]
    for c in retried[:MAX_FAILURE_ROWS]:
        rows += lines(f"child [{_dash(c['index'])}] ", c["attempts"])
    if len(retried) > MAX_FAILURE_ROWS:
        more = f"and {len(retried) - MAX_FAILURE_ROWS:,} more retried children"
        rows.append(AttemptLine(t["name"], more, "", "", "", "", ""))
    return rows
