"""Times and durations as a person reads them, shared by the page's table and its timeline.

A missing value reads as a dash everywhere, so an empty cell never looks like a rendering bug.
"""

from __future__ import annotations

from reconciler.runs.report.data import duration

DASH = "—"


def fmt_seconds(seconds: float | None) -> str:
    """Humans read 1h 02m faster than 3720 s; sub-minute keeps a decimal for short jobs."""
    if seconds is None:
        return DASH
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def when(iso: str | None) -> str:
    """Date and time without the milliseconds, and said to be UTC so nobody guesses."""
    return DASH if iso is None else f"{iso[:10]} {iso[11:19]} UTC"


def clock(iso: str | None) -> str:
    """Time of day only: one run rarely spans days, and the header gives the date."""
    return DASH if iso is None else iso[11:19]


def elapsed(start: str | None, stop: str | None, now: str) -> str:
    """A running item's duration is measured to the report time, and says so."""
    if start is None:
        return DASH
    if stop is None:
        return f"{fmt_seconds(duration(start, now))} so far"
    return fmt_seconds(duration(start, stop))
