"""YAML loading that remembers where every value came from.

ruamel's round-trip loader keeps line numbers on each mapping and sequence; we keep the loaded
tree beside a plain copy so that validation errors can name `file:line` for any path.

Loading is bounded like reading (manifests/reading.py): documents in all, and values once YAML
aliases are expanded, per document and in all, so that a "billion laughs" bomb of a few hundred
bytes, or thousands of small ones, is reported instead of expanded (reconciler/limits.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, merge_attrib
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode
from ruamel.yaml.reader import ReaderError

from reconciler.errors import ManifestError, Problem
from reconciler.limits import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    MAX_NODES,
    MAX_NODES_PER_DOCUMENT,
    MAX_QUOTED,
)
from reconciler.manifests import cevents
from reconciler.manifests.reading import MANIFEST_SUFFIXES, Reader

__all__ = ["MANIFEST_SUFFIXES", "Document", "load_paths", "load_text", "read_paths"]


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


@dataclass
class Budget:
    """What is left for the rest of one invocation's input: documents, and values once YAML
    aliases are expanded. Spent, it stops loading (`Exhausted`)."""

    documents: int = field(default_factory=lambda: MAX_DOCUMENTS)
    nodes: int = field(default_factory=lambda: MAX_NODES)


class Exhausted(Exception):
    """The budget for all input is spent: nothing after this document is loaded."""

    def __init__(self, problem: Problem, docs: list[Document] | None = None):
        super().__init__(str(problem))
        self.problem = problem
        self.docs = docs or []  # the documents of the same text loaded before it


class _Unplain(Exception):
    """A tree that has no plain form: a recursive alias (located at the alias), or too many
    nodes once expanded (located at the document: the node is shared by many aliases)."""

    def __init__(
        self,
        node: Any,
        message: str,
        *,
        budget: bool = False,
        total: bool = False,
        line: int | None = None,
    ):
        super().__init__(message)
        self.line = line or _root_line(node, 1)
        self.at_document = budget and line is None  # located by the caller, at the document
        self.message = message
        self.total = total  # the budget of all documents, not this one's, is spent


def plain(node: Any, budget: Budget | None = None) -> Any:
    """The tree as plain dicts, lists and scalars, with aliases expanded within the budgets."""
    budget = budget if budget is not None else Budget()
    left = [min(MAX_NODES_PER_DOCUMENT, budget.nodes)]
    whole = left[0] < MAX_NODES_PER_DOCUMENT  # what is left of all input is the tighter bound
    try:
        return _plain(node, set(), left, whole)
    finally:
        budget.nodes -= min(MAX_NODES_PER_DOCUMENT, budget.nodes) - max(left[0], 0)


def _too_many(whole: bool, line: int | None = None) -> _Unplain:
    if whole:
        return _Unplain(
            None,
            f"more than {MAX_NODES} values in all once aliases are expanded; nothing after "
            "this was read",
            budget=True,
            total=True,
            line=line,
        )
    message = f"more than {MAX_NODES_PER_DOCUMENT} values once aliases are expanded"
    return _Unplain(None, message, budget=True, line=line)


def _plain(node: Any, active: set[int], left: list[int], whole: bool) -> Any:
    left[0] -= 1
    if left[0] < 0:
        raise _too_many(whole)
    if not isinstance(node, dict | list):
        return node
    if id(node) in active:
        raise _Unplain(node, "an alias refers to a node that contains it")
    active.add(id(node))
    try:
        if isinstance(node, dict):
            return {
                str(k) if not isinstance(k, str) else k: _plain(v, active, left, whole)
                for k, v in node.items()
            }
        return [_plain(v, active, left, whole) for v in node]
    finally:
        active.discard(id(node))


def quoted(value: Any) -> str:
    """`repr(value)`, shortened: an error message quotes what it must, never a whole file."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else f"{text[: MAX_QUOTED - 5]}...{text[-1]}"


# Characters of one part of a problem: a file, subject or path, and a message.
MAX_PART = 300
MAX_MESSAGE = 1000


def single_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Escapes line breaks and other unprintable characters so that one problem is one line,
    and shortens a part that would not fit on one (a key of a million characters in a path)."""
    if len(text) > limit:
        text = f"{text[: limit - 30]}... ({len(text) - limit + 30} more characters)"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def printable(problem: Problem) -> Problem:
    return Problem(
        single_line(problem.file, MAX_PART),
        problem.line,
        single_line(problem.subject, MAX_PART),
        single_line(problem.path, MAX_PART),
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
    what = quoted(node.value) if isinstance(node.value, str) else f"a {node.id}"
    return ConstructorError(None, None, f"{what} is not a valid {tag} value", node.start_mark)


class _Composer(Composer):
    """Refuses collections nested deeper than MAX_DEPTH, at the line where that happens: ruamel
    composes them recursively, and Python's recursion limit would only say "somewhere".

    Also counts a document's values as they are parsed (aliases not expanded yet, keys not
    counted, as `plain` counts them): a document past the budget stops the parser there, not
    after it has parsed megabytes of `[1, 1, 1, ...]` at the pure-Python parser's pace."""

    nesting = 0  # not `depth`: ruamel's own composer counts in that (from 0.18.x, differently)
    values = 0
    document_line = 1

    # ruamel looks its parser and resolver up through properties of the YAML object (a frame
    # inspection each time) several times per event: a fifth of a load. They do not change
    # while one text is composed, so they are looked up once.
    @property
    def parser(self) -> Any:
        found = self.__dict__.get("_parser_once")
        if found is None:
            found = self.__dict__["_parser_once"] = Composer.parser.fget(self)  # type: ignore[attr-defined]
        return found

    @property
    def resolver(self) -> Any:
        found = self.__dict__.get("_resolver_once")
        if found is None:
            found = self.__dict__["_resolver_once"] = Composer.resolver.fget(self)  # type: ignore[attr-defined]
        return found

    def compose_document(self) -> Any:
        self.values = 0
        self.document_line = self.parser.peek_event().start_mark.line + 1
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nesting += 1
        try:
            if self.nesting > MAX_DEPTH:
                mark = self.parser.peek_event().start_mark
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} deep", mark)
            key = isinstance(parent, MappingNode) and index is None
            if not key and not self.parser.check_event(AliasEvent):
                self._count()
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def _count(self) -> None:
        self.values += 1
        budget: Budget = getattr(self.loader, "reconciler_budget", None) or Budget()
        if self.values > min(MAX_NODES_PER_DOCUMENT, budget.nodes):
            raise _too_many(budget.nodes < MAX_NODES_PER_DOCUMENT, self.document_line)


def _yaml(budget: Budget | None = None, fast_text: str | None = None) -> YAML:
    y = YAML(typ="rt")
    y.reconciler_budget = budget  # type: ignore[attr-defined]  # read by _Composer
    y.Composer = _Composer
    y.Constructor = _Constructor
    y.allow_duplicate_keys = False
    if fast_text is not None:
        y.Parser = cevents.parser_for(fast_text)
    return y


def load_text(text: str, file: str, budget: Budget | None = None) -> list[Document]:
    """The documents of one YAML text; ManifestError for what cannot be loaded, Exhausted when
    the budget for all input is spent.

    libyaml parses first (manifests/cevents.py: the same tree, lines and bounds, several times
    faster); a text it cannot take as it is, or that has any problem, is loaded again on the
    pure-Python path, so that every message about a bad file is worded as it always was."""
    budget = budget if budget is not None else Budget()
    if cevents.usable(text):
        left = (budget.documents, budget.nodes)
        try:
            return _load_text(text, file, budget, fast=True)
        except (_Bounded, Exhausted):  # ours, and final: the slow path would only reach it later
            raise
        except Exception:  # Unusual, or a problem the pure-Python path words
            budget.documents, budget.nodes = left
    return _load_text(text, file, budget, fast=False)


class _Bounded(ManifestError):
    """A bound of limits.py was reached: worded by us, at the same line on either path."""


def _load_text(text: str, file: str, budget: Budget, fast: bool) -> list[Document]:
    docs: list[Document] = []
    line = 1
    try:
        y = _yaml(budget, text if fast else None)
        with warnings.catch_warnings():
            # Multi-line notes on stderr (a reused anchor is legal YAML): never mixed in errors.
            warnings.simplefilter("ignore", YAMLWarning)
            for tree in y.load_all(text):
                if tree is None:
                    continue
                line = _root_line(tree, y.constructor.root_line)
                if budget.documents <= 0:
                    message = f"more than {MAX_DOCUMENTS} documents; nothing after this was read"
                    raise Exhausted(Problem(file, line, "", "", message), docs)
                budget.documents -= 1
                data = plain(tree, budget)
                docs.extend(_list_items(file, line, tree, data))
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
        where = line if exc.at_document else exc.line
        problem = Problem(file, where, "", "", f"invalid YAML: {exc.message}")
        if exc.total:
            raise Exhausted(problem, docs) from None
        raise _Bounded([problem]) from None
    except RecursionError:  # ruamel parses nested collections recursively
        raise ManifestError([Problem(file, 1, "", "", "invalid YAML: nested too deeply")]) from None
    return docs


def _list_items(file: str, line: int, tree: Any, data: Any) -> list[Document]:
    """A document; or, for kubectl's `kind: List` (what `get -o json` prints for several
    resources), one document per item, each at its own line."""
    items = data.get("items") if isinstance(data, dict) and data.get("kind") == "List" else None
    if not isinstance(items, list) or not isinstance(tree.get("items"), CommentedSeq):
        return [Document(file=file, line=line, tree=tree, data=data)]
    seq = tree["items"]
    return [
        Document(file=file, line=_line_in(seq, i) or line, tree=seq[i], data=item)
        for i, item in enumerate(items)
    ]


def load_paths(paths: list[str]) -> list[Document]:
    """Loads every file (directories recursively, `-` for stdin); reports all failures at once."""
    docs, problems = read_paths(paths)
    if problems:
        raise ManifestError(problems)
    return docs


def read_paths(paths: list[str]) -> tuple[list[Document], list[Problem]]:
    """The documents that parsed, and the problems of those that did not.

    Reading and loading share one budget (reconciler/limits.py): once it is spent, the problem
    says so and nothing after it is read.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    reader = Reader()
    budget = Budget()
    for path in paths:
        for found in reader.read(path):
            if isinstance(found, Problem):
                problems.append(found)
                continue
            try:
                docs.extend(load_text(found.text, found.name, budget))
            except ManifestError as exc:
                problems.extend(exc.problems)
            except Exhausted as exc:
                docs.extend(exc.docs)
                problems.append(exc.problem)
                reader.stopped = True
            if reader.stopped:
                break
        if reader.stopped:
            break
    return docs, [printable(p) for p in problems]
