"""YAML loading that remembers where every value came from.

ruamel's round-trip loader keeps line numbers on each mapping and sequence; we keep the loaded
tree beside a plain copy so that validation errors can name `file:line` for any path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from reconciler.errors import ManifestError, Problem

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass
class Document:
    file: str
    line: int  # 1-based line of the document's first key
    tree: Any  # the ruamel tree, for line look-ups
    data: Any  # plain dicts/lists/scalars

    @property
    def subject(self) -> str:
        if not isinstance(self.data, dict):
            return ""
        kind = self.data.get("kind")
        meta = self.data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(kind, str) and isinstance(name, str):
            return f"{kind}/{name}"
        return kind if isinstance(kind, str) else ""

    def line_of(self, path: Iterable[str | int]) -> int:
        """The line of the deepest node along `path` that exists in the document."""
        node, line = self.tree, self.line
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line


def plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def load_text(text: str, file: str) -> list[Document]:
    docs: list[Document] = []
    try:
        for tree in _yaml().load_all(text):
            if tree is None:
                continue
            line = tree.lc.line + 1 if hasattr(tree, "lc") else 1
            docs.append(Document(file=file, line=line, tree=tree, data=plain(tree)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = (exc.problem or exc.context or "invalid YAML").strip()
        raise ManifestError([Problem(file, line, "", "", f"invalid YAML: {what}")]) from None
    except YAMLError as exc:
        raise ManifestError([Problem(file, 1, "", "", f"invalid YAML: {exc}")]) from None
    return docs


def _expand(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix in MANIFEST_SUFFIXES and f.is_file())
    return [p]


def load_paths(paths: list[str]) -> list[Document]:
    """Loads every file (directories recursively, `-` for stdin); reports all failures at once."""
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        if path == "-":
            sources = [("<stdin>", sys.stdin.read())]
        else:
            sources = []
            for f in _expand(path):
                try:
                    sources.append((str(f), f.read_text(encoding="utf-8")))
                except FileNotFoundError:
                    problems.append(Problem(str(f), 0, "", "", "no such file or directory"))
                except (OSError, UnicodeDecodeError) as exc:
                    problems.append(Problem(str(f), 0, "", "", f"cannot read: {exc}"))
        for name, text in sources:
            try:
                docs.extend(load_text(text, name))
            except ManifestError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    return docs
