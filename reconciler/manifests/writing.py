"""Manifests written out: what `get -o yaml`, `export` and `import` print, as `apply -f`
reads them back."""

from __future__ import annotations

import io
import json
from typing import Any

from ruamel.yaml import YAML


def dump_manifests(docs: list[dict[str, Any]], fmt: str) -> str:
    """YAML: one document per resource, as `apply -f` reads them. JSON: the manifest itself
    for one resource, a kubectl-style `List` of them for several."""
    docs = json.loads(json.dumps(docs, default=str))  # plain data: AWS replies hold other types
    if fmt == "json":
        if len(docs) == 1:
            return json.dumps(docs[0], indent=2) + "\n"
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2) + "\n"
    y = YAML(typ="safe")
    y.default_flow_style = False
    y.width = 4096  # an ARN on one line
    buf = io.StringIO()
    y.dump_all(docs, buf)
    return buf.getvalue()
