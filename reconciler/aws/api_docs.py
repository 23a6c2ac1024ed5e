"""The AWS API's own words for the fields of its requests, from the service models botocore
ships (each member of a shape has a `documentation` string, in HTML).

The JSON Schemas and CRDs are generated from the models; where a model's field mirrors a
member of an AWS request shape, its description is the API reference's, as plain text, so that
an editor shows it on hover without anyone copying documentation into the models. Only read
when schemas are generated: botocore's JSON is loaded from its own data files.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from typing import Any

MAX_CHARS = 1200  # a hover, not the API reference: the first paragraphs, cut at a sentence


@dataclass(frozen=True)
class Member:
    doc: str  # plain text; empty when AWS documents neither the member nor its shape
    shape: str  # the member's shape: a structure, list, map or scalar


@cache
def _shapes(service: str) -> dict[str, Any]:
    from botocore.loaders import Loader

    return dict(Loader().load_service_model(service, "service-2")["shapes"])


def members(service: str, shape: str) -> dict[str, Member]:
    """The members of a structure shape (of a list's or map's items: what a field holds)."""
    shapes = _shapes(service)
    node = shapes.get(_item_shape(service, shape), {})
    out = {}
    for name, member in (node.get("members") or {}).items():
        doc = member.get("documentation") or shapes.get(member["shape"], {}).get("documentation")
        out[name] = Member(plain_text(doc or ""), member["shape"])
    return out


def _item_shape(service: str, shape: str) -> str:
    """A list's or map's element shape, through nesting; a structure is itself."""
    shapes = _shapes(service)
    while True:
        node = shapes.get(shape, {})
        if node.get("type") == "list":
            shape = node["member"]["shape"]
        elif node.get("type") == "map":
            shape = node["value"]["shape"]
        else:
            return shape


def member(service: str, shape: str, name: str) -> Member | None:
    """`name` as a member of `shape`; IAM spells its members in PascalCase, manifests in
    camelCase, so the capitalised name is tried too."""
    found = members(service, shape)
    return found.get(name) or found.get(name[:1].upper() + name[1:])


class _Text(HTMLParser):
    """Paragraphs and list items become lines; every other tag leaves only its text."""

    BREAKS = frozenset({"p", "note", "important", "dl", "ul", "ol", "dd", "dt", "br", "li"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(doc: str, limit: int = MAX_CHARS) -> str:
    """The API reference's HTML as plain text: one paragraph a line, cut at a sentence end
    within `limit` characters."""
    if not doc:
        return ""
    parser = _Text()
    parser.feed(doc)
    parser.close()
    lines = [
        re.sub(r"\s+", " ", html.unescape(line)).strip()
        for line in "".join(parser.parts).split("\n")
    ]
    kept: list[str] = []
    for line in lines:
        if line and kept and kept[-1] == "-":  # a list item whose text is a paragraph
            kept[-1] = f"- {line}"
        elif line:
            kept.append(line)
    text = "\n".join(kept)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\n"))
    return (cut[: end + 1] if end > 0 else cut.rstrip() + "…").rstrip()
