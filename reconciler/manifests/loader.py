"""YAML loading that remembers where every value came from.

ruamel's round-trip loader keeps line numbers on each mapping and sequence; we keep the loaded
tree beside a plain copy so that validation errors can name `file:line` for any path.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, merge_attrib
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.reader import ReaderError

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
            key: Any
            if isinstance(node, CommentedMap) and part in node:
                key = part
            elif isinstance(node, CommentedSeq) and str(part).isdigit() and int(part) < len(node):
                key = int(part)  # "0" too: paths come as dotted text
            else:
                break
            line = _line_in(node, key) or line
            node = node[key]
        return line


def _line_in(node: CommentedMap | CommentedSeq, key: Any) -> int | None:
    """The 1-based line of a key or item, also of a key merged in with `<<:`; None if unknown."""
    positions = node.lc.data or {}
    if key in positions:
        return int(positions[key][0]) + 1
    merged = getattr(node, merge_attrib, []) if isinstance(node, CommentedMap) else []
    for item in merged:  # (index, map) pairs in older ruamel releases, maps in newer ones
        source = item[1] if isinstance(item, tuple) else item
        if isinstance(source, CommentedMap) and key in source:
            return _line_in(source, key)
    return None


def _root_line(tree: Any, fallback: int) -> int:
    line = getattr(getattr(tree, "lc", None), "line", None)  # a tagged scalar has lc.line None
    return line + 1 if isinstance(line, int) else fallback


MAX_NODES = 100_000  # aliases share nodes; expanding them must not take forever


class _Unplain(Exception):
    """A tree that has no plain form: a recursive alias, or too many nodes once expanded."""

    def __init__(self, node: Any, message: str):
        super().__init__(message)
        self.line = _root_line(node, 1)
        self.message = message


def plain(node: Any) -> Any:
    return _plain(node, (), [MAX_NODES])


def _plain(node: Any, parents: tuple[Any, ...], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unplain(node, f"more than {MAX_NODES} values once aliases are expanded")
    if not isinstance(node, dict | list):
        return node
    if any(node is p for p in parents):
        raise _Unplain(node, "an alias refers to a node that contains it")
    inner = (*parents, node)
    if isinstance(node, dict):
        return {
            str(k) if not isinstance(k, str) else k: _plain(v, inner, budget)
            for k, v in node.items()
        }
    return [_plain(v, inner, budget) for v in node]


def single_line(text: str) -> str:
    """Escapes line breaks and other unprintable characters so that one problem is one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def printable(problem: Problem) -> Problem:
    return Problem(
        single_line(problem.file),
        problem.line,
        single_line(problem.subject),
        single_line(problem.path),
        single_line(problem.message),
    )


_BAD_VALUE = (ValueError, TypeError, KeyError, AttributeError, IndexError, AssertionError)


class _Constructor(RoundTripConstructor):
    """Remembers where each document starts (a scalar document has no `lc` to tell), and turns
    the plain exceptions ruamel raises for a value its tag cannot take (`!!int abc`, `!!set x`)
    into YAML errors at that value."""

    root_line = 1

    def construct_document(self, node: Any) -> Any:
        self.root_line = node.start_mark.line + 1
        try:
            return super().construct_document(node)
        except _BAD_VALUE:  # from a mapping or sequence finished after its first step
            raise _bad_value(node) from None

    def construct_non_recursive_object(self, node: Any, tag: Any = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except _BAD_VALUE:
            raise _bad_value(node) from None


def _bad_value(node: Any) -> ConstructorError:
    tag = str(getattr(node.tag, "value", node.tag)).replace("tag:yaml.org,2002:", "!!")
    what = repr(node.value) if isinstance(node.value, str) else f"a {node.id}"
    return ConstructorError(None, None, f"{what} is not a valid {tag} value", node.start_mark)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.Constructor = _Constructor
    y.allow_duplicate_keys = False
    return y


def load_text(text: str, file: str) -> list[Document]:
    docs: list[Document] = []
    try:
        y = _yaml()
        with warnings.catch_warnings():
            # Multi-line notes on stderr (a reused anchor is legal YAML): never mixed in errors.
            warnings.simplefilter("ignore", YAMLWarning)
            for tree in y.load_all(text):
                if tree is None:
                    continue
                line = _root_line(tree, y.constructor.root_line)
                docs.append(Document(file=file, line=line, tree=tree, data=plain(tree)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = (exc.problem or exc.context or "invalid YAML").strip()
        raise ManifestError([Problem(file, line, "", "", f"invalid YAML: {what}")]) from None
    except ReaderError as exc:  # a character YAML does not allow; it knows only the offset
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        what = str(exc).splitlines()[0]
        raise ManifestError([Problem(file, line, "", "", f"invalid YAML: {what}")]) from None
    except YAMLError as exc:
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError([Problem(file, 1, "", "", f"invalid YAML: {what}")]) from None
    except _Unplain as exc:
        problem = Problem(file, exc.line, "", "", f"invalid YAML: {exc.message}")
        raise ManifestError([problem]) from None
    except RecursionError:  # ruamel parses nested collections recursively
        raise ManifestError([Problem(file, 1, "", "", "invalid YAML: nested too deeply")]) from None
    return docs


def _expand(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix in MANIFEST_SUFFIXES and f.is_file())
    return [p]


def load_paths(paths: list[str]) -> list[Document]:
    """Loads every file (directories recursively, `-` for stdin); reports all failures at once."""
    docs, problems = read_paths(paths)
    if problems:
        raise ManifestError(problems)
    return docs


def read_paths(paths: list[str]) -> tuple[list[Document], list[Problem]]:
    """The documents that parsed, and the problems of those that did not."""
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
    return docs, [printable(p) for p in problems]
