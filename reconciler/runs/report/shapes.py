"""What the page's timeline is drawn from: positioned shapes and the colours of statuses.

timeline.py decides where each shape goes; templates/report.html.j2 turns them into SVG. The
fields are the numbers and words the template prints, so the template does no arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.runs.report.data import NOT_SUBMITTED

# The table's status badges use the same colours (page.py puts them in the CSS), so a status
# looks the same in the table, the legend and the timeline.
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


def colour(status: Any) -> str:
    return COLOURS.get(str(status), OTHER_COLOUR)


@dataclass(frozen=True)
class Bar:
    """One job's span: solid once stopped, translucent and hatched while it still runs."""

    x: float
    y: float
    width: float
    height: float
    rx: float
    colour: str
    tip: str
    running: bool


@dataclass(frozen=True)
class QueueLine:
    """From submission to start: where a run waits for capacity."""

    x0: float
    x1: float
    y: float
    tip: str


@dataclass(frozen=True)
class Attempt:
    """A failed attempt drawn over its task's bar, so a retry that healed still shows."""

    x: float
    y: float
    width: float
    height: float
    tip: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    end: bool = False  # anchored at its right edge, for text left of a bar


@dataclass(frozen=True)
class ChildRow:
    label: Label
    bar: Bar | None


@dataclass(frozen=True)
class BandLayer:
    status: str
    colour: str
    path: str


@dataclass(frozen=True)
class Band:
    """Stacked counts of children per state over time, for arrays too big for a row each."""

    total: int
    top_label: Label
    bottom_label: Label
    title: Label
    layers: list[BandLayer]


@dataclass(frozen=True)
class TaskRow:
    y: float
    height: float
    alt: bool
    name: str
    name_label: Label
    not_submitted: Label | None
    queue: QueueLine | None
    bar: Bar | None
    failed_attempts: list[Attempt]
    bar_label: Label | None
    children: list[ChildRow]
    band: Band | None


@dataclass(frozen=True)
class Tick:
    x: float
    seconds: float


@dataclass(frozen=True)
class NowLine:
    x: float
    top: float
    bottom: float
    label: Label


@dataclass(frozen=True)
class LegendKey:
    text: str
    style: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    axis_label_y: float
    grid_top: float
    grid_bottom: float
    ticks: list[Tick]
    rows: list[TaskRow]
    now: NowLine | None
    legend: list[LegendKey]
    max_child_rows: int
