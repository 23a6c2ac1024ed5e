"""Where everything sits on the run's timeline: the axis, one row per task, array children.

Coordinates only, no markup: the shapes (shapes.py) are drawn by the template, so this layout is
tested as numbers and the template stays a picture of the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.runs.report.data import ACTIVE, FINISHED, NOT_SUBMITTED, Report, to_epoch
from reconciler.runs.report.formatting import DASH, clock, fmt_seconds
from reconciler.runs.report.shapes import (
    COLOURS,
    WAITING_COLOUR,
    Attempt,
    Band,
    BandLayer,
    Bar,
    ChildRow,
    Label,
    LegendKey,
    NowLine,
    QueueLine,
    TaskRow,
    Tick,
    Timeline,
    colour,
)

Item = dict[str, Any]

MAX_CHILD_ROWS = 200  # above this, one row per child makes a page nobody can scroll through
WIDTH, LABEL_W, RIGHT_PAD = 1160, 230, 120  # the right pad holds bar labels
AXIS_H, TASK_H, CHILD_H, BAND_H = 34, 28, 9, 56
BAND_BINS = 300
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
MAX_LABEL = 32  # characters of a task name beside its row


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


def timeline(r: Report) -> Timeline:
    """Rows stack downwards, each as tall as its children need, so the height comes last."""
    axis = _axis(r)
    y, rows = AXIS_H, []
    for i, task in enumerate(r["tasks"]):
        row = _task_row(task, axis, y, alt=bool(i % 2))
        rows.append(row)
        y += row.height
    height = y + 8
    return Timeline(
        width=WIDTH,
        height=height,
        axis_label_y=AXIS_H - 12,
        grid_top=AXIS_H - 6,
        grid_bottom=height - 4,
        ticks=[Tick(axis.x(axis.origin + sec), sec) for sec in _ticks(axis)],
        rows=rows,
        now=_now_line(r, axis, height),
        legend=_legend(r),
        max_child_rows=MAX_CHILD_ROWS,
    )


def _axis(r: Report) -> _Axis:
    """Seconds count from the run's first start; still-running work stretches to the report time."""
    now = to_epoch(r["generatedAt"]) or 0.0
    created = [to_epoch(t["createdAt"]) for t in r["tasks"] if t["createdAt"]]
    origin = to_epoch(r["startedAt"]) or min(created, default=now)
    stops = [to_epoch(s) for s in _all_stops(r)]
    if any(t["status"] in ACTIVE for t in r["tasks"]):
        stops.append(now)
    end = max([s for s in stops if s is not None], default=origin)
    return _Axis(origin=origin, end=max(end, origin + 1.0), now=now)


def _all_stops(r: Report) -> Iterator[str]:
    return (
        item["stoppedAt"] for t in r["tasks"] for item in (t, *t["children"]) if item["stoppedAt"]
    )


def _legend(r: Report) -> list[LegendKey]:
    """Only the colours this page uses: a legend of twelve keys is one more thing to read."""
    items = [item for t in r["tasks"] for item in (t, *t["children"])]
    seen = {i["status"] for i in items}
    keys = [LegendKey(s.lower().replace("_", " "), f"background:{colour(s)}") for s in sorted(seen)]
    if any(i["startedAt"] and not i["stoppedAt"] for i in items):
        hatch = f"45deg,{COLOURS['RUNNING']}99 0 4px,#ffffff99 4px 7px"
        keys.append(
            LegendKey(
                "still running at report time", f"background:repeating-linear-gradient({hatch})"
            )
        )
    if any(len(t["children"]) > MAX_CHILD_ROWS for t in r["tasks"]):
        keys.append(LegendKey("children waiting to start", f"background:{WAITING_COLOUR}"))
    return keys


def _ticks(axis: _Axis) -> list[float]:
    span = axis.end - axis.origin
    step = next((s for s in TICK_STEPS if span / s <= 10), span / 10)
    return [k * step for k in range(int(span // step) + 1)]


def _now_line(r: Report, axis: _Axis, height: int) -> NowLine | None:
    """Drawn only while something runs: then the bars that end there have not really ended."""
    if not any(t["status"] in ACTIVE for t in r["tasks"]):
        return None
    x = axis.x(axis.now)
    return NowLine(x, AXIS_H - 4, height - 4, Label(x - 4, height - 6, "report time"))


def _task_row(task: Item, axis: _Axis, y: int, alt: bool) -> TaskRow:
    name = str(task["name"])
    mid = y + TASK_H / 2
    children, band, extra = _children(task, axis, y + TASK_H)
    submitted = task["status"] != NOT_SUBMITTED
    bar_y, bar_h = y + 7, TASK_H - 14
    return TaskRow(
        y=y,
        height=TASK_H + extra,
        alt=alt,
        name=name,
        name_label=Label(10, mid + 4, _short(name)),
        not_submitted=None if submitted else Label(axis.left + 6, mid + 4, "not submitted"),
        queue=_queue_line(task, axis, mid) if submitted else None,
        bar=_bar(task, axis, bar_y, bar_h, _task_tip(task)) if submitted else None,
        failed_attempts=_failed_attempts(task, axis, bar_y, bar_h) if submitted else [],
        bar_label=_bar_label(task, axis, mid) if submitted else None,
        children=children,
        band=band,
    )


def _short(name: str) -> str:
    """Long names would run into the bars; the row's tooltip still has the whole name."""
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def _task_tip(task: Item) -> str:
    span = f"{clock(task['startedAt'])} → {clock(task['stoppedAt'])}"
    return f"{task['name']}: {task['status']}, {span} ({fmt_seconds(task['durationSeconds'])})"


def _queue_line(task: Item, axis: _Axis, mid: float) -> QueueLine | None:
    """Time between submission and start is where a run waits for capacity; worth seeing."""
    created = to_epoch(task["createdAt"])
    if created is None:
        return None
    until = to_epoch(task["startedAt"]) or to_epoch(task["stoppedAt"]) or axis.now
    x0, x1 = axis.x(created), axis.x(until)
    if x1 - x0 < 1:
        return None
    return QueueLine(x0, x1, mid, f"queued {fmt_seconds(until - created)}")


def _bar(item: Item, axis: _Axis, y: float, h: float, tip: str) -> Bar | None:
    start, stop = to_epoch(item["startedAt"]), to_epoch(item["stoppedAt"])
    if start is None:
        if stop is None:
            return None
        start = stop  # stopped without running (a failed dependency): a tick at the stop
    x0 = axis.x(start)
    x1 = axis.x(stop if stop is not None else axis.now)
    width = max(round(x1 - x0, 1), 2.0)
    return Bar(x0, y, width, h, min(h / 3, 3), colour(item["status"]), tip, stop is None)


def _failed_attempts(task: Item, axis: _Axis, y: float, h: float) -> list[Attempt]:
    """A retried job that succeeded still cost a failed attempt; show it inside the bar."""
    if len(task["attempts"]) < 2:
        return []
    out = []
    for n, a in enumerate(task["attempts"], 1):
        if a["exitCode"] in (0, None) or a["startedAt"] is None or a["stoppedAt"] is None:
            continue
        x0, x1 = axis.x(to_epoch(a["startedAt"]) or 0), axis.x(to_epoch(a["stoppedAt"]) or 0)
        tip = f"attempt {n}: exit {a['exitCode']} — {a['statusReason'] or ''}"
        out.append(Attempt(x0, y, max(x1 - x0, 2.0), h, tip))
    return out


def _bar_label(task: Item, axis: _Axis, mid: float) -> Label:
    """Duration beside the bar; placed left of it when the bar reaches the right edge."""
    start, stop = to_epoch(task["startedAt"]), to_epoch(task["stoppedAt"])
    if start is None:
        return Label(axis.left + 6, mid + 4, str(task["status"]).lower())
    x0, x1 = axis.x(start), axis.x(stop if stop is not None else axis.now)
    if stop is None:
        text = f"{fmt_seconds(axis.now - start)} so far"
    else:
        text = fmt_seconds(task["durationSeconds"])
    if len(task["attempts"]) > 1:
        text += f" · {len(task['attempts'])} attempts"
    if x1 + 8 + 7 * len(text) < WIDTH:
        return Label(x1 + 6, mid + 4, text)
    return Label(x0 - 6, mid + 4, text, end=True)


def _children(task: Item, axis: _Axis, y: int) -> tuple[list[ChildRow], Band | None, int]:
    """One row per child while that stays readable; above MAX_CHILD_ROWS, one band for all."""
    children = task["children"]
    if not children:
        return [], None, 0
    if len(children) > MAX_CHILD_ROWS:
        return [], _band(children, axis, y, to_epoch(task["createdAt"])), BAND_H + 10
    rows = []
    for i, child in enumerate(children):
        cy = y + i * CHILD_H
        tip = f"[{child['index']}] {child['status']} exit {child['exitCode']}"
        index = DASH if child["index"] is None else child["index"]
        label = Label(axis.left - 8, cy + CHILD_H - 1.5, f"[{index}]")
        rows.append(ChildRow(label, _bar(child, axis, cy + 1.5, CHILD_H - 3, tip)))
    return rows, None, len(children) * CHILD_H + 6


# ------------------------------------------------------------------------ band of many children


def _band(children: list[Item], axis: _Axis, y: int, since: float | None) -> Band:
    """Stacked counts per state over time: 10,000 rows would be 90,000 pixels of noise."""
    total = len(children)
    bottom = y + BAND_H
    layers = []
    lower = [0] * BAND_BINS
    for status, counts in _band_layers(children, axis, since):
        upper = [lo + c for lo, c in zip(lower, counts, strict=True)]
        fill = WAITING_COLOUR if status == "WAITING" else colour(status)
        layers.append(BandLayer(status, fill, _area(lower, upper, axis, bottom, total)))
        lower = upper
    return Band(
        total=total,
        top_label=Label(axis.left - 8, y + 9, f"{total:,}"),
        bottom_label=Label(axis.left - 8, bottom, "0"),
        title=Label(26, y + BAND_H / 2 + 4, f"{total:,} children, aggregated"),
        layers=layers,
    )


def _band_layers(
    children: list[Item], axis: _Axis, since: float | None
) -> list[tuple[str, list[int]]]:
    """Difference arrays keep this linear in children plus bins, whatever the array size.

    Children only wait once the array exists (`since`, its creation), not from the run start.
    """
    running = [0] * (BAND_BINS + 1)
    done = {s: [0] * (BAND_BINS + 1) for s in FINISHED}
    for c in children:
        start, stop = to_epoch(c["startedAt"]), to_epoch(c["stoppedAt"])
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
