"""From loaded documents to models, collecting every problem before reporting any.

Each problem is located as `file:line: Kind/name: spec.path: message`. Union branches that
cannot apply to the value given (a dict tried as a plain ID) are dropped so that a user sees
the one message that fits, and unknown fields suggest the nearest known one.

Only the models of the kinds the documents name are imported (`registry.model_of`): the kind
check and its suggestions need the kinds' names only (`registry.kind_index`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler import API_VERSION
from reconciler.errors import ManifestError, Problem
from reconciler.manifests.loader import Document, printable, quoted, read_paths
from reconciler.models.common import Resource
from reconciler.models.fields import _nested_models
from reconciler.models.sensitive import SENSITIVE, plain_secrets
from reconciler.registry import kind_index, model_of, models


@dataclass
class ResourceSet:
    """The validated desired state, with where each resource was declared."""

    resources: list[Resource]
    sources: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    # Not errors: what deserves a second look (a secret written in clear), located the same way.
    warnings: list[Problem] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.resources if kind == r.KIND]

    def get(self, kind: str, name: str) -> Resource | None:
        return next((r for r in self.resources if r.key == (kind, name)), None)


def _model_at(model: type[BaseModel] | None, loc: list[str | int]) -> type[BaseModel] | None:
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        nested = _nested_models(info.annotation)
        model = nested[0] if len(nested) == 1 else None
    return model


def _value_at(data: Any, loc: list[str | int]) -> tuple[bool, Any]:
    for part in loc:
        if (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        ):
            data = data[part]
        else:
            return False, None
    return True, data


def _branch(part: object) -> str | None:
    """The union branch a pydantic loc component names ("str" or a model name), if it is one."""
    if not isinstance(part, str):
        return None
    if part in {"str", "int", "bool", "float", "list", "dict"} or part.startswith("constrained-"):
        return "str" if "str" in part else part
    inner = re.search(r"(\w+)\]$", part)
    name = inner.group(1) if inner else part
    if name in _model_names():
        return name
    return "?" if "[" in part else None


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> list[str | int] | None:
    """Drops pydantic's union-branch markers; None when the branch cannot fit the value."""
    path: list[str | int] = []
    for part in loc:
        branch = _branch(part)
        found, value = _value_at(data, path)
        if branch is None or (found and isinstance(value, dict) and part in value):
            path.append(part)  # a field, an index, or a key the user wrote such as "a[b"
            continue
        if not found:
            continue
        if (branch == "str" and not isinstance(value, str)) or (
            branch in _model_names() and not isinstance(value, dict)
        ):
            return None
    return path


def _message(err: dict[str, Any], model: type[BaseModel], loc: list[str | int]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        known = list((_model_at(model, loc[:-1]) or BaseModel).model_fields)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"unknown field{hint}"
    if kind == "missing":
        return "required field is missing"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _problems(doc: Document, model: type[Resource], exc: ValidationError) -> list[Problem]:
    found: dict[tuple[str, str], Problem] = {}
    mismatched: dict[str, list[str | int]] = {}  # paths whose every union branch was dropped
    for err in exc.errors():
        loc = _clean_loc(doc.data, err["loc"])
        if loc is None:
            raw = [p for p in err["loc"] if _branch(p) is None]
            mismatched[".".join(str(p) for p in raw)] = raw
            continue
        path = ".".join(str(p) for p in loc)
        message = _message(err, model, loc)
        found.setdefault(
            (path, message), Problem(doc.file, doc.line_of(loc), doc.subject, path, message)
        )
    for path, loc in mismatched.items():
        if not any(p == path or p.startswith(path + ".") for p, _ in found):
            found[(path, "")] = Problem(
                doc.file,
                doc.line_of(loc),
                doc.subject,
                path,
                "wrong type: expected a string or a mapping",
            )
    return list(found.values())


def _envelope_problems(doc: Document) -> list[Problem]:
    def problem(path: str, message: str) -> Problem:
        return Problem(
            doc.file, doc.line_of(path.split(".") if path else []), doc.subject, path, message
        )

    if not isinstance(doc.data, dict):
        return [problem("", "a manifest must be a mapping with apiVersion, kind, metadata, spec")]
    out = []
    if doc.data.get("apiVersion") != API_VERSION:
        out.append(
            problem(
                "apiVersion", f"must be {API_VERSION!r}, got {quoted(doc.data.get('apiVersion'))}"
            )
        )
    kind = doc.data.get("kind")
    if not isinstance(kind, str) or kind not in kind_index():
        near = difflib.get_close_matches(str(kind), list(kind_index()), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        known = ", ".join(kind_index())
        out.append(problem("kind", f"unknown kind {quoted(kind)}; {hint}known kinds: {known}"))
    return out


def _cross_problems(
    declared: ResourceSet, docs: dict[tuple[str, str], Document], invalid: set[str]
) -> list[Problem]:
    out: list[Problem] = []
    for res in declared.resources:
        doc = docs[res.key]
        for kind, name, path in res.references():
            # A resource declared with errors of its own is reported once, not again here.
            if declared.get(kind, name) is None and f"{kind}/{name}" not in invalid:
                out.append(
                    Problem(
                        doc.file,
                        doc.line_of(path.split(".")),
                        doc.subject,
                        path,
                        f"refers to unknown {kind} {name!r}",
                    )
                )
    for res in declared.resources:
        doc = docs[res.key]
        found = [*res.cross_problems(declared.get), *res.request_problems()]
        for path, message in found:
            out.append(Problem(doc.file, doc.line_of(path.split(".")), doc.subject, path, message))
    return out


def _secret_warnings(doc: Document, res: Resource) -> list[Problem]:
    """One warning per value that looks secret and is written in clear, where it is written."""
    out = []
    for found in plain_secrets(res.spec):
        loc = ["spec", *found.loc]
        path = ".".join(str(p) for p in loc)
        out.append(printable(Problem(doc.file, doc.line_of(loc), doc.subject, path, found.message)))
    return out


def _placeholders(doc: Document, data: Any, loc: list[str | int]) -> list[Problem]:
    """A secret's placeholder (from `get -o yaml` or `export`) left in a manifest: applying
    it would replace the real secret with the placeholder."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _placeholders(doc, v, [*loc, k])]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _placeholders(doc, v, [*loc, i])]
    if data != SENSITIVE:
        return []
    path = ".".join(str(p) for p in loc)
    message = "a placeholder for a secret value: put the value back (better: a secrets entry)"
    return [Problem(doc.file, doc.line_of(loc), doc.subject, path, message)]


def validate_documents(docs: list[Document]) -> ResourceSet:
    problems: list[Problem] = []
    declared = ResourceSet(resources=[])
    by_key: dict[tuple[str, str], Document] = {}
    invalid: set[str] = set()  # "Kind/name" of documents that failed validation
    for doc in docs:
        envelope = _envelope_problems(doc)
        if envelope:
            problems.extend(envelope)
            continue
        model = model_of(doc.data["kind"])
        try:
            res = model.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_problems(doc, model, exc))
            invalid.add(doc.subject)
            continue
        if res.key in by_key:
            first = by_key[res.key]
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(["metadata", "name"]),
                    doc.subject,
                    "metadata.name",
                    f"duplicate: already declared at {first.file}:{first.line}",
                )
            )
            continue
        placeholders = _placeholders(doc, doc.data.get("spec"), ["spec"])
        if placeholders:
            problems.extend(placeholders)
            invalid.add(doc.subject)
            continue
        by_key[res.key] = doc
        declared.resources.append(res)
        declared.sources[res.key] = (doc.file, doc.line)
        declared.warnings += _secret_warnings(doc, res)
    problems.extend(_cross_problems(declared, by_key, invalid))
    if problems:
        raise ManifestError([printable(p) for p in problems])
    return declared


@cache
def _model_names() -> frozenset[str]:
    """The names of the models of every kind and of the models in their fields: the union
    branches a pydantic loc may name. Only wording a field's problem needs them, so only then
    is every kind's model module imported (the set stays what it always was, and so do the
    messages); a valid file imports the models it uses."""
    names: set[str] = set()

    def collect(model: type[BaseModel]) -> None:
        if model.__name__ in names:
            return
        names.add(model.__name__)
        for info in model.model_fields.values():
            for sub in _nested_models(info.annotation):
                collect(sub)

    for model in models().values():
        collect(model)
    return frozenset(names)


def load_resources(paths: list[str]) -> ResourceSet:
    """Loads and validates, reporting parse and validation problems together, all at once."""
    docs, problems = read_paths(paths)
    try:
        declared = validate_documents(docs)
    except ManifestError as exc:
        problems = problems + exc.problems
    if problems:
        raise ManifestError(problems)
    return declared
