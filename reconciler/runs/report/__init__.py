"""One pipeline run as a report: plain data, YAML for programs, one HTML page for people.

data.py builds the report from what AWS returned; yaml_text.py writes it as YAML; page.py says
what the page shows, timeline.py lays out its SVG timeline (as shapes.py shapes), and
templates/report.html.j2 draws both. Callers import from here, so that split stays inside.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.runs.report.data import (
    ACTIVE,
    FINISHED,
    NOT_SUBMITTED,
    Job,
    Report,
    TaskJobs,
    build_report,
    run_status,
)
from reconciler.runs.report.page import render_html
from reconciler.runs.report.yaml_text import render_yaml

__all__ = [
    "ACTIVE",
    "FINISHED",
    "NOT_SUBMITTED",
    "Job",
    "Report",
    "TaskJobs",
    "build_report",
    "render_html",
    "render_yaml",
    "run_status",
    "write_report",
]


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    """Both files side by side under fixed names, so a run's directory is its report."""
    directory.mkdir(parents=True, exist_ok=True)
    yaml_path, html_path = directory / "report.yaml", directory / "report.html"
    yaml_path.write_text(render_yaml(report), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return yaml_path, html_path
