"""The run report as YAML, for programs and for rendering the page again later.

The text is what ruamel's safe dumper writes (block style, keys in the report's reading order),
byte for byte. ruamel's pure-Python dumper needs seconds for a run with a 10,000-child array,
nearly all of it spent on scalars whose form is never in doubt: ids, statuses, numbers, the
report's own timestamps, AWS's usual reasons. So _BlockWriter writes those itself, asks ruamel
how to write any other scalar in the place it stands, and hands the whole report to ruamel when
it meets a shape it does not know or too many scalars to ask about. Tests hold the two to the
same bytes.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML

from reconciler.runs.report.data import Report

# Keys, and strings without spaces, in this shape are written as they are: a letter first, then
# word characters with single '-', '.', '/' or ':' between them (AWS ids, statuses, log streams).
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[-./:][A-Za-z0-9_]+)*\Z")
# Sentences are written as they are too, if nothing in them means something to YAML: a letter
# first, single spaces, a ':' only inside a word. "Host EC2 (instance i-0a1b) terminated."
_SAFE = "A-Za-z0-9_.,()/=+-"
_SENTENCE = re.compile(rf"[A-Za-z_](?:[{_SAFE}]|:(?=[{_SAFE}])| (?=[{_SAFE}]))*\Z")
# The same with ': ' in it, or a ':' at the end, can only be single-quoted, and with no quote
# inside, that means wrapped in two. "OutOfMemoryError: Container killed due to memory usage"
_QUOTED = re.compile(rf"[A-Za-z_](?:[{_SAFE}:]| (?=[{_SAFE}:]))*\Z")
# Words YAML reads as booleans or null in some version; ruamel quotes some of them.
_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})
# The report's timestamps would read back as dates, so ruamel single-quotes them.
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
_DECIMAL = re.compile(r"-?\d+\.\d+\Z")
_MAX_KEY = 100  # ruamel writes keys over 128 characters as complex keys ('? key')
# ruamel folds a scalar that runs past column 80, or moves it to a line of its own. Scalars
# that end a few columns short of that are written here; anything nearer the edge is asked about.
_LAST_COLUMN = 76
# Each question is a small ruamel document: past this many, ruamel writing the whole report once
# is about as cheap (10,000 children that each failed in words of their own).
_MAX_QUESTIONS = 200

Place = tuple[str | None, ...]  # mapping keys, None for a sequence item


def render_yaml(report: Report) -> str:
    """Safe dumper, unsorted: the report's key order is its reading order."""
    try:
        return _BlockWriter().document(report)
    except _Unsupported:
        return ruamel_yaml(report)


def ruamel_yaml(data: Any) -> str:
    """The reference: what the report's YAML has always been, and the fallback."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


class _Unsupported(Exception):
    """Left to ruamel: nested lists, shared objects, odd keys, too many odd scalars."""


class _BlockWriter:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._containers: set[int] = set()
        self._answers: dict[tuple[Place, type, Any], str] = {}
        self._probes: dict[Place, str] = {}

    def document(self, data: Any) -> str:
        if type(data) is not dict or not data:
            raise _Unsupported
        self._mapping(data, 0, (), first_inline=False)
        return "".join(self._parts)

    def _enter(self, container: dict[Any, Any] | list[Any]) -> None:
        """ruamel writes an object met twice as an anchor and an alias; this writer does not."""
        if id(container) in self._containers:
            raise _Unsupported
        self._containers.add(id(container))

    def _mapping(self, data: dict[Any, Any], indent: int, path: Place, first_inline: bool) -> None:
        """A mapping in a sequence starts on the item's '- ' line; the rest line up below it."""
        self._enter(data)
        pad = " " * indent
        out = self._parts
        for i, (key, value) in enumerate(data.items()):
            if type(key) is not str or len(key) > _MAX_KEY or not _is_key(key):
                raise _Unsupported
            if i or not first_inline:
                out.append(pad)
            out.append(key)
            kind = type(value)
            if kind is dict and value:
                out.append(":\n")
                self._mapping(value, indent + 2, (*path, key), first_inline=False)
            elif kind is list and value:
                out.append(":\n")
                self._sequence(value, indent, (*path, key))  # ruamel does not indent these
            else:
                out.append(":")
                out.append(self._leaf(value, (*path, key), indent + len(key) + 2))

    def _sequence(self, data: list[Any], indent: int, path: Place) -> None:
        self._enter(data)
        pad = " " * indent
        out = self._parts
        item_path = (*path, None)
        for item in data:
            out.append(pad)
            out.append("-")
            kind = type(item)
            if kind is dict and item:
                out.append(" ")
                self._mapping(item, indent + 2, item_path, first_inline=True)
            elif kind is list and item:
                raise _Unsupported
            else:
                out.append(self._leaf(item, item_path, indent + 2))

    def _leaf(self, value: Any, path: Place, column: int) -> str:
        """A scalar or an empty container after its key's ':' or its item's '-': the space
        between, the text, its line end (and any lines it was folded onto).

        `column` is where the text starts when it stays on the key's or the item's line.
        """
        kind = type(value)
        if kind is str:
            if _ISO_UTC.match(value):
                return f" '{value}'\n"  # quoted scalars only fold at spaces; these have none
            text = _plain_or_quoted(value)
        elif value is None:
            text = "null"
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = str(value)
        elif kind is float:
            text = repr(value)
            text = text if _DECIMAL.match(text) else None
        elif kind is dict or kind is list:
            self._enter(value)
            return " {}\n" if kind is dict else " []\n"
        else:
            raise _Unsupported
        if text is not None and column + len(text) <= _LAST_COLUMN:
            return f" {text}\n"
        return self._ask(value, path)

    def _ask(self, value: Any, path: Place) -> str:
        """ruamel writes the scalar in a small document that puts it where it stands here.

        Same nesting, so the same column and indent: quoting and line folding come out as in
        the whole report. An empty list in its place, which ruamel never moves to a line of
        its own, shows where the scalar starts in that document.
        """
        key = (path, type(value), value)
        if key in self._answers:
            return self._answers[key]
        if len(self._answers) >= _MAX_QUESTIONS:
            raise _Unsupported
        if path not in self._probes:
            self._probes[path] = ruamel_yaml(_nest(path, []))
        probe = self._probes[path]
        text = ruamel_yaml(_nest(path, value))
        start = len(probe) - len(" []\n")
        if not probe.endswith((": []\n", "- []\n")) or text[:start] != probe[:start]:
            raise _Unsupported
        self._answers[key] = text[start:]
        return self._answers[key]


def _is_key(text: str) -> bool:
    return _KEY.match(text) is not None and text.lower() not in _WORDS


def _plain_or_quoted(text: str) -> str | None:
    """How ruamel writes a string of these shapes, or None when only ruamel can say."""
    if _SENTENCE.match(text):
        return None if text.lower() in _WORDS else text
    if _QUOTED.match(text) and (": " in text or text.endswith(":")):
        return f"'{text}'"
    return None


def _nest(path: Place, leaf: Any) -> Any:
    node = leaf
    for step in reversed(path):
        node = [node] if step is None else {step: node}
    return node
