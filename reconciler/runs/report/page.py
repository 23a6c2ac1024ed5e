"""The run report as one HTML page for people: header, task table, SVG timeline, failures.

The page is a single file with inline CSS and SVG so it can be attached to a ticket or opened
from an artifact store without a network or a script.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reconciler.runs.report.data import ACTIVE, FINISHED, NOT_SUBMITTED, Report
from reconciler.runs.report.data import duration as _duration
from reconciler.runs.report.data import to_epoch as _epoch

COLOURS = {
    "SUCCEEDED": "#2e7d32",
    "FAILED": "#c62828",
    "RUNNING": "#1565c0",
    "STARTING": "#0288d1",
    "RUNNABLE": "#ef6c00",
    "PENDING": "#8d6e63",
    "SUBMITTED": "#8d6e63",
    NOT_SUBMITTED: "#90a4ae",
}
OTHER_COLOUR = "#757575"
WAITING_COLOUR = "#cfd8dc"

MAX_CHILD_ROWS = 200  # above this, one row per child makes a page nobody can scroll through
MAX_FAILURE_ROWS = 50
WIDTH, LABEL_W, RIGHT_PAD = 1160, 230, 120  # the right pad holds bar labels
AXIS_H, TASK_H, CHILD_H, BAND_H = 34, 28, 9, 56
BAND_BINS = 300
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


# --------------------------------------------------------------------------------------- HTML


def render_html(report: Report) -> str:
    """Header, per-task table, timeline, failures: the order in which a person asks questions."""
    title = f"{report['pipeline']} run {report['runId']}"
    body = "".join([_header(report), _table(report), _timeline(report), _failures(report)])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_css()}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value))


def _colour(status: str | None) -> str:
    return COLOURS.get(str(status), OTHER_COLOUR)


def _css() -> str:
    badges = "".join(f".s-{_css_name(s)}{{background:{c}}}" for s, c in COLOURS.items())
    return CSS + badges


def _css_name(status: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(status))


def _badge(status: str | None) -> str:
    return f'<span class="badge s-{_css_name(status)}">{_e(status)}</span>'


def _fmt_seconds(seconds: float | None) -> str:
    """Humans read 1h 02m faster than 3720 s; sub-minute keeps a decimal for short jobs."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _when(iso: str | None) -> str:
    return "—" if iso is None else f"{iso[:10]} {iso[11:19]} UTC"


def _clock(iso: str | None) -> str:
    return "—" if iso is None else iso[11:19]


def _elapsed(start: str | None, stop: str | None, now: str) -> str:
    """A running item's duration is measured to the report time, and says so."""
    if start is None:
        return "—"
    if stop is None:
        return f"{_fmt_seconds(_duration(start, now))} so far"
    return _fmt_seconds(_duration(start, stop))


def _header(r: Report) -> str:
    items = [
        ("Run id", _e(r["runId"])),
        ("Started", _e(_when(r["startedAt"]))),
        ("Stopped", _e(_when(r["stoppedAt"]))),
        ("Duration", _e(_elapsed(r["startedAt"], r["stoppedAt"], r["generatedAt"]))),
        ("Tasks", _e(_task_counts(r["tasks"]))),
        ("Report taken", _e(_when(r["generatedAt"]))),
    ]
    facts = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    return (
        f'<header><div class="kicker">Pipeline run</div>'
        f"<h1>{_e(r['pipeline'])} {_badge(r['status'])}</h1><dl>{facts}</dl></header>"
    )


def _task_counts(tasks: list[dict[str, Any]]) -> str:
    counts = Counter(t["status"] for t in tasks)
    words = (f"{n} {s.lower().replace('_', ' ')}" for s, n in counts.items())
    return f"{len(tasks)}: " + ", ".join(words)


# --------------------------------------------------------------------------------------- table


def _table(r: Report) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Task",
            "Status",
            "Attempts",
            "Exit codes",
            "Started",
            "Duration",
            "Depends on",
            "Status reason",
        )
    )
    rows = "".join(_table_row(t, r["generatedAt"]) for t in r["tasks"])
    return f'<section class="tasks"><h2>Tasks</h2>{_html_table(head, rows)}</section>'


def _html_table(head: str, rows: str) -> str:
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _table_row(t: dict[str, Any], now: str) -> str:
    cells = [
        f'<b>{_e(t["name"])}</b><div class="muted">{_e(t["jobId"] or "not submitted")}</div>',
        _badge(t["status"]) + _array_note(t),
        _e(len(t["attempts"]) if t["attempts"] else ("—" if t["children"] else 0)),
        _e(_exit_codes(t)),
        _e(_clock(t["startedAt"])),
        _e(_elapsed(t["startedAt"], t["stoppedAt"], now)),
        _e(", ".join(t["dependsOn"]) or "—"),
        f'<span class="reason">{_e(t["statusReason"])}</span>',
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _array_note(t: dict[str, Any]) -> str:
    summary = {s: n for s, n in (t["statusSummary"] or {}).items() if n}
    if t["arraySize"] is None and not summary:
        return ""
    counts = " · ".join(f"{n} {str(s).lower()}" for s, n in summary.items())
    size = t["arraySize"] if t["arraySize"] is not None else len(t["children"])
    return f'<div class="muted">array of {_e(size)}{": " if counts else ""}{_e(counts)}</div>'


def _exit_codes(t: dict[str, Any]) -> str:
    """Attempts in order for one job (1 → 0 is a retry that healed); counts for an array."""
    if t["children"]:
        counts = Counter(c["exitCode"] for c in t["children"] if c["exitCode"] is not None)
        times = "\N{NO-BREAK SPACE}\N{MULTIPLICATION SIGN}"
        return " · ".join(f"{code}{times}{n}" for code, n in sorted(counts.items())) or "—"
    codes = [str(a["exitCode"]) for a in t["attempts"] if a["exitCode"] is not None]
    return " → ".join(codes) or "—"


# ------------------------------------------------------------------------------------ timeline


@dataclass(frozen=True)
class _Axis:
    origin: float
    end: float
    now: float
    left: float = LABEL_W
    width: float = WIDTH - LABEL_W - RIGHT_PAD

    def x(self, t: float) -> float:
        frac = (t - self.origin) / (self.end - self.origin)
        return round(self.left + min(max(frac, 0.0), 1.0) * self.width, 1)

    def bin(self, t: float, bins: int) -> int:
        return min(max(int((t - self.origin) / (self.end - self.origin) * bins), 0), bins - 1)


def _axis(r: Report) -> _Axis:
    """Seconds count from the run's first start; still-running work stretches to the report time."""
    now = _epoch(r["generatedAt"]) or 0.0
    created = [_epoch(t["createdAt"]) for t in r["tasks"] if t["createdAt"]]
    origin = _epoch(r["startedAt"]) or min(created, default=now)
    stops = [_epoch(s) for s in _all_stops(r)]
    if any(t["status"] in ACTIVE for t in r["tasks"]):
        stops.append(now)
    end = max([s for s in stops if s is not None], default=origin)
    return _Axis(origin=origin, end=max(end, origin + 1.0), now=now)


def _all_stops(r: Report) -> list[str]:
    return [
        item["stoppedAt"] for t in r["tasks"] for item in (t, *t["children"]) if item["stoppedAt"]
    ]


def _timeline(r: Report) -> str:
    axis = _axis(r)
    y, backgrounds, parts, notes = AXIS_H, [], [], []
    for i, task in enumerate(r["tasks"]):
        rows, height = _children(task, axis, y + TASK_H)
        shade = " alt" if i % 2 else ""
        backgrounds.append(
            f'<rect x="0" y="{y}" width="{WIDTH}" height="{TASK_H + height}" class="row{shade}"/>'
        )
        parts.append(_task_row(task, axis, y) + rows)
        y += TASK_H + height
        if len(task["children"]) > MAX_CHILD_ROWS:
            notes.append(_band_note(task))
    height = y + 8
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="Timeline of the run">'
        f"{SVG_DEFS}{''.join(backgrounds)}{_grid(axis, height)}{''.join(parts)}"
        f"{_now_line(r, axis, height)}</svg>"
    )
    return (
        f"<section><h2>Timeline</h2>{_legend(r)}"
        f'<div class="chart">{svg}</div>{"".join(notes)}</section>'
    )


def _band_note(task: dict[str, Any]) -> str:
    return (
        f'<p class="note">{_e(task["name"])}: {len(task["children"]):,} children are drawn as '
        f"one aggregated band (how many are waiting, running, succeeded and failed at each "
        f"moment) instead of one row each, which only happens up to {MAX_CHILD_ROWS}.</p>"
    )


def _legend(r: Report) -> str:
    """Only the colours this page uses: a legend of twelve keys is one more thing to read."""
    items = [item for t in r["tasks"] for item in (t, *t["children"])]
    seen = {i["status"] for i in items}
    keys = [(s.lower().replace("_", " "), f"background:{_colour(s)}") for s in sorted(seen)]
    if any(i["startedAt"] and not i["stoppedAt"] for i in items):
        hatch = f"45deg,{COLOURS['RUNNING']}99 0 4px,#ffffff99 4px 7px"
        keys.append(
            ("still running at report time", f"background:repeating-linear-gradient({hatch})")
        )
    if any(len(t["children"]) > MAX_CHILD_ROWS for t in r["tasks"]):
        keys.append(("children waiting to start", f"background:{WAITING_COLOUR}"))
    items = "".join(f'<span><i style="{style}"></i>{_e(k)}</span>' for k, style in keys)
    return f'<div class="legend">{items}</div>'


def _ticks(axis: _Axis) -> list[float]:
    span = axis.end - axis.origin
    step = next((s for s in TICK_STEPS if span / s <= 10), span / 10)
    return [k * step for k in range(int(span // step) + 1)]


def _grid(axis: _Axis, height: int) -> str:
    parts = []
    for sec in _ticks(axis):
        x = axis.x(axis.origin + sec)
        parts.append(
            f'<line x1="{x}" y1="{AXIS_H - 6}" x2="{x}" y2="{height - 4}" class="grid"/>'
            f'<text x="{x}" y="{AXIS_H - 12}" class="tick">{sec:g}s</text>'
        )
    return (
        f'<text x="8" y="{AXIS_H - 12}" class="axis-title">seconds from run start</text>'
        + "".join(parts)
    )


def _now_line(r: Report, axis: _Axis, height: int) -> str:
    if not any(t["status"] in ACTIVE for t in r["tasks"]):
        return ""
    x = axis.x(axis.now)
    return (
        f'<line x1="{x}" y1="{AXIS_H - 4}" x2="{x}" y2="{height - 4}" class="now"/>'
        f'<text x="{x - 4}" y="{height - 6}" class="now-label">report time</text>'
    )


def _task_row(task: dict[str, Any], axis: _Axis, y: int) -> str:
    name = task["name"]
    label = name if len(name) <= 32 else name[:31] + "…"
    mid = y + TASK_H / 2
    parts = [f'<text x="10" y="{mid + 4}" class="task"><title>{_e(name)}</title>{_e(label)}</text>']
    if task["status"] == NOT_SUBMITTED:
        parts.append(
            f'<text x="{axis.left + 6}" y="{mid + 4}" class="muted-svg">not submitted</text>'
        )
        return "".join(parts)
    parts.append(_queue_line(task, axis, mid))
    parts.append(_bar(task, axis, y + 7, TASK_H - 14, _task_tip(task)))
    parts.extend(_failed_attempts(task, axis, y + 7, TASK_H - 14))
    parts.append(_bar_label(task, axis, mid))
    return "".join(parts)


def _task_tip(task: dict[str, Any]) -> str:
    span = f"{_clock(task['startedAt'])} → {_clock(task['stoppedAt'])}"
    return f"{task['name']}: {task['status']}, {span} ({_fmt_seconds(task['durationSeconds'])})"


def _queue_line(task: dict[str, Any], axis: _Axis, mid: float) -> str:
    """Time between submission and start is where a run waits for capacity; worth seeing."""
    created = _epoch(task["createdAt"])
    if created is None:
        return ""
    until = _epoch(task["startedAt"]) or _epoch(task["stoppedAt"]) or axis.now
    x0, x1 = axis.x(created), axis.x(until)
    if x1 - x0 < 1:
        return ""
    tip = f"queued {_fmt_seconds(until - created)}"
    line = f'<line x1="{x0}" y1="{mid}" x2="{x1}" y2="{mid}" class="queue">'
    return f"{line}<title>{tip}</title></line>"


def _bar(item: dict[str, Any], axis: _Axis, y: float, h: float, tip: str) -> str:
    start, stop = _epoch(item["startedAt"]), _epoch(item["stoppedAt"])
    colour = _colour(item["status"])
    if start is None:
        if stop is None:
            return ""
        start = stop  # stopped without running (a failed dependency): a tick at the stop
    x0 = axis.x(start)
    x1 = axis.x(stop if stop is not None else axis.now)
    w = max(round(x1 - x0, 1), 2.0)
    rect = f'<rect x="{x0}" y="{y}" width="{w}" height="{h}" rx="{min(h / 3, 3):g}"'
    if stop is not None:
        return f'<g><title>{_e(tip)}</title>{rect} fill="{colour}"/></g>'
    return (
        f'<g><title>{_e(tip)} (running)</title>{rect} fill="{colour}" fill-opacity="0.55"/>'
        f'{rect} fill="url(#hatch)"/></g>'
    )


def _failed_attempts(task: dict[str, Any], axis: _Axis, y: float, h: float) -> list[str]:
    """A retried job that succeeded still cost a failed attempt; show it inside the bar."""
    if len(task["attempts"]) < 2:
        return []
    out = []
    for n, a in enumerate(task["attempts"], 1):
        if a["exitCode"] in (0, None) or a["startedAt"] is None or a["stoppedAt"] is None:
            continue
        x0, x1 = axis.x(_epoch(a["startedAt"]) or 0), axis.x(_epoch(a["stoppedAt"]) or 0)
        tip = f"attempt {n}: exit {a['exitCode']} — {a['statusReason'] or ''}"
        out.append(
            f'<g><title>{_e(tip)}</title><rect x="{x0}" y="{y}" width="{max(x1 - x0, 2.0)}" '
            f'height="{h}" fill="{COLOURS["FAILED"]}" class="attempt"/></g>'
        )
    return out


def _bar_label(task: dict[str, Any], axis: _Axis, mid: float) -> str:
    """Duration beside the bar; placed left of it when the bar reaches the right edge."""
    start, stop = _epoch(task["startedAt"]), _epoch(task["stoppedAt"])
    if start is None:
        status = _e(task["status"].lower())
        return f'<text x="{axis.left + 6}" y="{mid + 4}" class="bar-label">{status}</text>'
    x0, x1 = axis.x(start), axis.x(stop if stop is not None else axis.now)
    if stop is None:
        text = f"{_fmt_seconds(axis.now - start)} so far"
    else:
        text = _fmt_seconds(task["durationSeconds"])
    if len(task["attempts"]) > 1:
        text += f" · {len(task['attempts'])} attempts"
    if x1 + 8 + 7 * len(text) < WIDTH:
        return f'<text x="{x1 + 6}" y="{mid + 4}" class="bar-label">{_e(text)}</text>'
    return f'<text x="{x0 - 6}" y="{mid + 4}" class="bar-label end">{_e(text)}</text>'


def _children(task: dict[str, Any], axis: _Axis, y: int) -> tuple[str, int]:
    children = task["children"]
    if not children:
        return "", 0
    if len(children) > MAX_CHILD_ROWS:
        return _band(children, axis, y, _epoch(task["createdAt"]))
    parts = []
    for i, child in enumerate(children):
        cy = y + i * CHILD_H
        tip = f"[{child['index']}] {child['status']} exit {child['exitCode']}"
        parts.append(
            f'<text x="{axis.left - 8}" y="{cy + CHILD_H - 1.5}" class="child">'
            f"[{_e(child['index'])}]</text>" + _bar(child, axis, cy + 1.5, CHILD_H - 3, tip)
        )
    return "".join(parts), len(children) * CHILD_H + 6


# ------------------------------------------------------------------------ band of many children


def _band(
    children: list[dict[str, Any]], axis: _Axis, y: int, since: float | None
) -> tuple[str, int]:
    """Stacked counts per state over time: 10,000 rows would be 90,000 pixels of noise."""
    layers = _band_layers(children, axis, since)
    total = len(children)
    bottom = y + BAND_H
    paths = []
    lower = [0] * BAND_BINS
    for status, counts in layers:
        upper = [lo + c for lo, c in zip(lower, counts, strict=True)]
        fill = WAITING_COLOUR if status == "WAITING" else _colour(status)
        paths.append(
            f'<path d="{_area(lower, upper, axis, bottom, total)}" fill="{fill}">'
            f"<title>{_e(status.lower())}</title></path>"
        )
        lower = upper
    labels = (
        f'<text x="{axis.left - 8}" y="{y + 9}" class="child">{total:,}</text>'
        f'<text x="{axis.left - 8}" y="{bottom}" class="child">0</text>'
        f'<text x="26" y="{y + BAND_H / 2 + 4}" class="band-label">'
        f"{total:,} children, aggregated</text>"
    )
    return labels + "".join(paths), BAND_H + 10


def _band_layers(
    children: list[dict[str, Any]], axis: _Axis, since: float | None
) -> list[tuple[str, list[int]]]:
    """Difference arrays keep this linear in children plus bins, whatever the array size.

    Children only wait once the array exists (`since`, its creation), not from the run start.
    """
    running = [0] * (BAND_BINS + 1)
    done = {s: [0] * (BAND_BINS + 1) for s in FINISHED}
    for c in children:
        start, stop = _epoch(c["startedAt"]), _epoch(c["stoppedAt"])
        if start is not None:
            running[axis.bin(start, BAND_BINS)] += 1
            if stop is not None:
                running[axis.bin(stop, BAND_BINS)] -= 1
        if stop is not None and c["status"] in done:
            done[c["status"]][axis.bin(stop, BAND_BINS)] += 1
    layers = [(s, _cumulative(done[s])) for s in ("SUCCEEDED", "FAILED")]
    layers.append(("RUNNING", _cumulative(running)))
    busy = [sum(v) for v in zip(*(counts for _, counts in layers), strict=True)]
    first = 0 if since is None else axis.bin(since, BAND_BINS)
    waiting = [len(children) - b if i >= first else 0 for i, b in enumerate(busy)]
    layers.append(("WAITING", waiting))
    return layers


def _cumulative(deltas: list[int]) -> list[int]:
    out, acc = [], 0
    for d in deltas[:BAND_BINS]:
        acc += d
        out.append(acc)
    return out


def _area(lower: list[int], upper: list[int], axis: _Axis, bottom: float, total: int) -> str:
    """A step outline: along the upper edge left to right, back along the lower edge."""

    def edge(values: list[int]) -> list[str]:
        points = []
        for b0, b1, v in _runs(values):
            y = round(bottom - BAND_H * v / total, 1)
            points += [f"{_bin_x(axis, b0)},{y}", f"{_bin_x(axis, b1)},{y}"]
        return points

    return "M" + " L".join(edge(upper) + edge(lower)[::-1]) + " Z"


def _bin_x(axis: _Axis, b: int) -> float:
    return round(axis.left + axis.width * b / BAND_BINS, 1)


def _runs(values: list[int]) -> list[tuple[int, int, int]]:
    """Equal neighbouring bins merged, so a flat stretch costs two points, not hundreds."""
    runs: list[tuple[int, int, int]] = []
    for b, v in enumerate(values):
        if runs and runs[-1][2] == v:
            runs[-1] = (runs[-1][0], b + 1, v)
        else:
            runs.append((b, b + 1, v))
    return runs


# ------------------------------------------------------------------------------------ failures


def _failures(r: Report) -> str:
    rows = [row for t in r["tasks"] for row in _failure_rows(t)]
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("Task", "Where", "Exit code", "Reason", "Log stream"))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<section><h2>Failures</h2>{_html_table(head, body)}</section>"


def _failure_rows(t: dict[str, Any]) -> list[list[str]]:
    """Failed attempts and children, capped: the first fifty explain a failure as well as all."""
    name = f"<b>{_e(t['name'])}</b>"
    rows = [
        [name, f"attempt {n}", _e(a["exitCode"]), _e(a["statusReason"]), _e(a["logStreamName"])]
        for n, a in enumerate(t["attempts"], 1)
        if a["exitCode"] not in (0, None)
    ]
    failed = [c for c in t["children"] if c["status"] == "FAILED"]
    rows += [
        [name, f"child [{_e(c['index'])}]", _e(c["exitCode"]), _e(c["statusReason"]), "—"]
        for c in failed[:MAX_FAILURE_ROWS]
    ]
    if len(failed) > MAX_FAILURE_ROWS:
        more = f"and {len(failed) - MAX_FAILURE_ROWS:,} more failed children"
        rows.append([name, more, "", "", ""])
    if not rows and t["status"] == "FAILED":
        rows.append([name, "job", "—", _e(t["statusReason"]), "—"])
    return rows


SVG_DEFS = (
    '<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
    'patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff" '
    'fill-opacity="0.45"/></pattern></defs>'
)

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1f2933;margin:0 auto;padding:24px 28px;max-width:1220px;background:#fff}
header{border-bottom:1px solid #e4e7eb;padding-bottom:14px;margin-bottom:8px}
.kicker{text-transform:uppercase;letter-spacing:.08em;font-size:11px;color:#7b8794}
h1{font-size:24px;margin:2px 0 10px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
h2{font-size:16px;margin:22px 0 8px}
dl{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0}
dl div{min-width:120px}
dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#7b8794}
dd{margin:0;font-variant-numeric:tabular-nums}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:1px 8px;font-size:12px;
font-weight:600;letter-spacing:.03em}
h1 .badge{font-size:15px;padding:3px 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:#52606d;border-bottom:2px solid #e4e7eb;padding:6px 8px}
td{border-bottom:1px solid #eef0f2;padding:6px 8px;vertical-align:top;
font-variant-numeric:tabular-nums}
.muted{color:#7b8794;font-size:12px}
.reason{color:#3e4c59}
.chart{overflow-x:auto}
.tasks td:nth-child(5),.tasks td:nth-child(6){white-space:nowrap}
.tasks td:first-child{min-width:150px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:#52606d;margin-bottom:6px}
.legend i{display:inline-block;width:14px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
.note{font-size:12px;color:#52606d;background:#f5f7fa;border-left:3px solid #9aa5b1;
padding:6px 10px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
svg .row{fill:#ffffff}
svg .row.alt{fill:#f7f9fb}
svg .grid{stroke:#d9dee3;stroke-width:1}
svg .tick{font-size:11px;fill:#616e7c;text-anchor:middle}
svg .axis-title{font-size:11px;fill:#9aa5b1}
svg .task{font-size:13px;font-weight:600;fill:#1f2933}
svg .child{font-size:8px;fill:#9aa5b1;text-anchor:end}
svg .band-label{font-size:11px;fill:#616e7c}
svg .muted-svg{font-size:12px;fill:#9aa5b1;font-style:italic}
svg .bar-label{font-size:11px;fill:#52606d}
svg .bar-label.end{text-anchor:end}
svg .queue{stroke:#9aa5b1;stroke-width:2;stroke-dasharray:3 3}
svg .attempt{stroke:#ffffff;stroke-width:1}
svg .now{stroke:#323f4b;stroke-width:1;stroke-dasharray:4 3}
svg .now-label{font-size:10px;fill:#323f4b;text-anchor:end}
"""
