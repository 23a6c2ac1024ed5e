"""Files generated from the models (JSON Schemas, CRDs): written by the CLI, checked by tests."""

from __future__ import annotations

from pathlib import Path


def write(files: dict[str, str], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def stale(files: dict[str, str], directory: Path) -> list[str]:
    """Names in `files` whose copy in `directory` is missing or differs."""
    return [
        name
        for name, text in files.items()
        if not (directory / name).exists() or (directory / name).read_text() != text
    ]
