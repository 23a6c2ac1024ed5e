"""What users name on the command line, as kubectl takes it: resources and label selectors.

Pure parsing, next to the registry that knows the kind words (Kind, plural, singular, short):

- `jobqueues` (every one of the kind), `jobqueues,ce` (several kinds), `jobqueue a b` (names of
  one kind), `jobqueue/a ce/b` (a kind each); a bare kind among `KIND/NAME` words is a whole
  kind, as `get -f` always took it.
- `-l team=x,tier!=web,canary,!legacy`: equal, not equal (absent counts as not equal), has
  the label, has not; a comma means AND. Labels are `metadata.labels`, stored as AWS tags.

Nothing here reads AWS: a wrong word is a usage error before any call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.registry import kind_for, models

# A label key as metadata.labels takes it (an AWS tag key): no comma, =, ! or blank, which the
# selector syntax uses.
_KEY = r"[^\s,=!]+"
_REQUIREMENT = re.compile(
    rf"^\s*(?:(?P<absent>!)\s*(?P<nkey>{_KEY})|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>[^\s,=!]*))?)\s*$"
)


@dataclass(frozen=True)
class Target:
    """One kind, or one resource of it (`name`), as the user named it."""

    kind: str  # the registry's kind name
    name: str | None = None


def kind_word(kind: str) -> str:
    """How errors name a kind, as kubectl does (`jobqueue "x" not found`)."""
    return kind.lower()


def known_kinds() -> str:
    return ", ".join(m.PLURAL for m in models().values())


def _kind(word: str, whole: str) -> str:
    model = kind_for(word)
    if model is None:
        raise ValueError(
            f"unknown kind {word[:80]!r} in {whole[:120]!r}; known kinds: {known_kinds()}"
        )
    return model.KIND


def parse_targets(words: tuple[str, ...] | list[str]) -> list[Target]:
    """The resources the words name; ValueError (for a usage error) when they cannot be read.

    kubectl's forms: `KIND[,KIND...]`, `KIND NAME...`, `KIND/NAME...`."""
    words = list(words)
    if not words:
        return []
    if any("/" in w for w in words):
        out = []
        for word in words:
            kind_text, slash, name = word.partition("/")
            if slash and (not name or "/" in name):
                raise ValueError(f"{word[:120]!r} is not KIND/NAME")
            out.append(Target(_kind(kind_text, word), name or None))
        return out
    first, names = words[0], words[1:]
    kinds = [_kind(k, first) for k in first.split(",") if k] or [_kind(first, first)]
    if names and len(kinds) > 1:
        raise ValueError(f"names can follow one kind only, not {first[:120]!r}")
    if names:
        return [Target(kinds[0], n) for n in dict.fromkeys(names)]
    return [Target(k) for k in dict.fromkeys(kinds)]


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold (kubectl's equality-based selector)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def parse_labels(texts: tuple[str, ...] | list[str] | str | None) -> LabelSelector:
    """`-l` values (repeatable; each a comma-separated list); ValueError when one is not a
    requirement."""
    if texts is None:
        return LabelSelector()
    if isinstance(texts, str):
        texts = [texts]
    found: list[Requirement] = []
    for text in texts:
        for part in text.split(","):
            if not part.strip():
                raise ValueError(f"{text[:120]!r}: an empty requirement")
            m = _REQUIREMENT.match(part)
            if m is None:
                raise ValueError(
                    f"{part.strip()[:120]!r} is not a label requirement: use key=value, "
                    "key!=value, key or !key"
                )
            if m.group("absent"):
                found.append(Requirement(m.group("nkey"), "!exists"))
            elif m.group("op"):
                op = "=" if m.group("op") in ("=", "==") else "!="
                found.append(Requirement(m.group("key"), op, m.group("value").strip()))
            else:
                found.append(Requirement(m.group("key"), "exists"))
    return LabelSelector(tuple(found))
