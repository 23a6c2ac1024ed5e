"""The run report as YAML, for programs and for rendering the page again later."""

from __future__ import annotations

import io

from ruamel.yaml import YAML

from reconciler.runs.report.data import Report


def render_yaml(report: Report) -> str:
    """Safe dumper, unsorted: the report's key order is its reading order."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    buf = io.StringIO()
    yaml.dump(report, buf)
    return buf.getvalue()
