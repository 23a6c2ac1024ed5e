"""JSON and YAML of plain data: what `-o json|yaml` prints. Its own module, importing neither
the engine nor AWS code, so that `validate -o json` starts as fast as `validate` does."""

from __future__ import annotations

import io
import json
from typing import Any

from ruamel.yaml import YAML


def dump(data: Any, fmt: str) -> str:
    if fmt == "markdown":
        raise ValueError("markdown output is for plans: use it with diff, apply or delete")
    if fmt == "json":
        return json.dumps(data, indent=2, default=str)
    y = YAML(typ="safe")
    y.default_flow_style = False
    buf = io.StringIO()
    y.dump(json.loads(json.dumps(data, default=str)), buf)
    return buf.getvalue()
