"""libyaml's C parser as the event source of ruamel's composer: the fast path of loading.

ruamel's pure-Python scanner and parser are most of the time a load takes (about 0.5 s of
the 0.55 s of a 300-resource stack). libyaml (PyYAML's C extension, installed with kopf)
scans and parses the same text several times faster; its events are handed, as ruamel's
events, to the same composer and round-trip constructor, so the loaded tree, its line
numbers, the nesting and value budgets and the duplicate-key check are the same as on the
pure-Python path. libyaml's parser keeps its state on the heap, so deep nesting still
reaches our composer's bound instead of the C stack.

Only what is certain to mean the same to both is taken: an explicit tag or a `%YAML`/`%TAG`
directive stops the fast path (`Unusual`), and so does any error, so that what a user is
told about a bad file always comes from the pure-Python path, word for word
(manifests/loader.py reloads the text there).
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import events as ruamel_events

try:  # PyYAML built with libyaml; without it, every text takes the pure-Python path
    import yaml as _pyyaml
    from yaml.cyaml import CParser as _CParser

    AVAILABLE = bool(getattr(_pyyaml, "__with_libyaml__", False))
except ImportError:  # pragma: no cover - PyYAML comes with kopf
    AVAILABLE = False


def usable(text: str) -> bool:
    """Whether the fast path may load `text`. Not with a tab anywhere: ruamel refuses tabs
    in places libyaml takes them (a plain scalar in a flow mapping), and a text must load the
    same on both paths."""
    return AVAILABLE and "\t" not in text


class Unusual(Exception):
    """Something the fast path does not translate: load this text on the pure-Python path."""


def _plain_tag(tag: Any) -> None:
    if tag is not None and tag != "!":
        raise Unusual(f"explicit tag {tag}")


def _convert(e: Any) -> Any:
    """A PyYAML event as the ruamel event its parser would have made (marks are PyYAML's:
    they have the `line` and `column` ruamel reads)."""
    t = type(e)
    if t is _pyyaml.ScalarEvent:
        if e.tag is not None:
            _plain_tag(e.tag)
        return ruamel_events.ScalarEvent(
            e.anchor, None, e.implicit, e.value, e.start_mark, e.end_mark, e.style
        )
    if t is _pyyaml.MappingStartEvent or t is _pyyaml.SequenceStartEvent:
        _plain_tag(e.tag)
        cls = (
            ruamel_events.MappingStartEvent
            if t is _pyyaml.MappingStartEvent
            else ruamel_events.SequenceStartEvent
        )
        return cls(e.anchor, None, e.implicit, e.start_mark, e.end_mark, e.flow_style)
    if t is _pyyaml.MappingEndEvent:
        return ruamel_events.MappingEndEvent(e.start_mark, e.end_mark)
    if t is _pyyaml.SequenceEndEvent:
        return ruamel_events.SequenceEndEvent(e.start_mark, e.end_mark)
    if t is _pyyaml.AliasEvent:
        return ruamel_events.AliasEvent(e.anchor, e.start_mark, e.end_mark)
    if t is _pyyaml.DocumentStartEvent:
        if e.version or e.tags:
            raise Unusual("a %YAML or %TAG directive")
        return ruamel_events.DocumentStartEvent(e.start_mark, e.end_mark, e.explicit)
    if t is _pyyaml.DocumentEndEvent:
        return ruamel_events.DocumentEndEvent(e.start_mark, e.end_mark, e.explicit)
    if t is _pyyaml.StreamStartEvent:
        return ruamel_events.StreamStartEvent(e.start_mark, e.end_mark)
    if t is _pyyaml.StreamEndEvent:
        return ruamel_events.StreamEndEvent(e.start_mark, e.end_mark)
    raise Unusual(f"event {t.__name__}")


def parser_for(text: str) -> type:
    """A ruamel `Parser` class (what `YAML.Parser` takes) that reads `text` with libyaml."""

    class CEvents:
        def __init__(self, loader: Any = None) -> None:
            self._c = _CParser(text)
            self._next: Any = None

        def peek_event(self) -> Any:
            if self._next is None:
                try:
                    self._next = _convert(self._c.get_event())
                except _pyyaml.YAMLError as exc:  # the pure-Python path words the error
                    raise Unusual(str(exc)) from None
            return self._next

        def check_event(self, *choices: Any) -> bool:
            event = self.peek_event()
            return not choices or isinstance(event, choices)

        def get_event(self) -> Any:
            event = self.peek_event()
            self._next = None
            return event

        def dispose(self) -> None:
            self._c.dispose()

    return CEvents
