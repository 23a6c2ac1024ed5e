"""JSON Schemas generated from the models: one file per kind in `schemas/`, checked by a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler import API_VERSION, generated
from reconciler.registry import models


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for kind, model in models().items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://reconciler.io/schemas/{API_VERSION}/{kind}.json"
        out[f"{kind}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    return generated.write(files(), directory)


def stale(directory: Path) -> list[str]:
    """Files in `directory` that differ from what the models generate now."""
    return generated.stale(files(), directory)


def files() -> dict[str, str]:
    return {name: render(schema) for name, schema in json_schemas().items()}
