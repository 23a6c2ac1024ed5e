"""The AWS API's own words for the fields of its requests, from the service models botocore
ships (each member of a shape has a `documentation` string, in HTML).

The JSON Schemas and CRDs are generated from the models; where a model mirrors an AWS shape
(a job definition's spec is RegisterJobDefinition's request, its containerProperties AWS's
ContainerProperties), its fields are described in the API reference's words, as plain text,
so that an editor shows them on hover without anyone copying documentation into the models.
Which shape a model mirrors is found by the names of their fields (`best_shape`), so a new
kind is described without being named anywhere else.

botocore is not imported: `reconciler schema` starts as light as `validate` (its data files
are read where the installed package keeps them). The text follows the installed botocore:
after upgrading it, regenerate the schemas and CRDs.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

MAX_CHARS = 1200  # a hover, not the API reference: the first paragraphs, cut at a sentence
SERVICES = ("batch", "iam")  # the APIs whose requests the manifests mirror
MIN_COMMON = 2  # a model mirrors a shape when at least this many of its fields are members...
MIN_SHARE = 0.5  # ...and at least this share of its fields


@dataclass(frozen=True)
class Member:
    doc: str  # plain text; empty when AWS documents neither the member nor its shape
    shape: str  # the member's shape: a structure, list, map or scalar


def _data_file(service: str) -> Path | None:
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    versions = sorted((Path(spec.origin).parent / "data" / service).glob("*/service-2.json*"))
    return versions[-1] if versions else None


@cache
def _shapes(service: str) -> dict[str, Any]:
    path = _data_file(service)
    if path is None:
        return {}
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return dict(json.loads(raw)["shapes"])


def _camel(name: str) -> str:
    """IAM spells members in PascalCase (MaxSessionDuration), manifests in camelCase."""
    return name[:1].lower() + name[1:]


def members(service: str, shape: str) -> dict[str, Member]:
    """The members of a structure shape (of a list's or map's items: what a field holds), by
    their camelCase names."""
    shapes = _shapes(service)
    node = shapes.get(_item_shape(service, shape), {})
    out = {}
    for name, member in (node.get("members") or {}).items():
        doc = member.get("documentation") or shapes.get(member["shape"], {}).get("documentation")
        out[_camel(name)] = Member(plain_text(doc or ""), member["shape"])
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
    return members(service, shape).get(name)


def best_shape(fields: Iterable[str]) -> tuple[str, str] | None:
    """The structure shape a model with these fields mirrors: the one sharing the most of
    them (then the one with the fewest other members, a request rather than a description),
    if it shares at least MIN_COMMON and MIN_SHARE of them."""
    wanted = set(fields)
    best: tuple[tuple[int, float, str, str], tuple[str, str]] | None = None
    for service in SERVICES:
        for name, node in sorted(_shapes(service).items()):
            if node.get("type") != "structure" or not node.get("members"):
                continue
            names = {_camel(m) for m in node["members"]}
            common = len(wanted & names)
            if common < MIN_COMMON or common < MIN_SHARE * len(wanted):
                continue
            key = (common, common / len(names), service, name)
            if best is None or key[:2] > best[0][:2]:
                best = (key, (service, name))
    return best[1] if best else None


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
