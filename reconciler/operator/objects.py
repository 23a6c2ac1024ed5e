"""From custom resources to the engine's inputs, without kopf and without AWS.

A custom resource is a manifest with Kubernetes' own metadata around it. What the engine gets
is the manifest the CLI would have read: apiVersion, kind, name, namespace, user labels (they
become AWS tags) and the spec, `deletionPolicy` included (the engine honours it as the CLI's
`delete` does). Ownership
and adoption come from metadata: the stack is the namespace unless the label
`reconciler.io/stack` names another, and `reconciler.io/adopt: "true"` allows adoption.

`Summary` is what the in-memory index keeps per object: enough to build the resource set of
an object and what it refers to, and to find the objects that wait for one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from reconciler import API_VERSION
from reconciler.engine.conditions import DEPENDENCY_NOT_READY
from reconciler.errors import ManifestError
from reconciler.manifests.loader import Document
from reconciler.manifests.validate import ResourceSet, validate_documents
from reconciler.models.common import RESERVED_TAG_PREFIX
from reconciler.operator.draft import STATUS_FIELDS
from reconciler.registry import models

GROUP, VERSION = API_VERSION.split("/")
STACK_LABEL = "reconciler.io/stack"
ADOPT_ANNOTATION = "reconciler.io/adopt"
DELETE_JOBS_ANNOTATION = "reconciler.io/delete-unfinished-jobs"  # drain | force
# Written on a waiting object when everything it refers to has become ready: the change is what
# wakes kopf's update handler for it (see operator/waking.py).
NUDGE_ANNOTATION = "reconciler.io/dependencies-ready"
DELETION_POLICIES = ("Delete", "Retain")
UNKNOWN_REFERENCE = "refers to unknown "

Ref = tuple[str, str]  # (kind, name)


class InvalidSpec(Exception):
    """The object cannot be turned into a valid manifest; only an edit will fix it."""


def plural_of(kind: str) -> str:
    return models()[kind].PLURAL


def plain(value: Any) -> Any:
    """kopf's bodies are views; the models want plain dicts and lists."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def deletion_policy(kind: str, body: Any) -> str:
    """The object's `spec.deletionPolicy`, else its kind's default (as the CLI's delete)."""
    policy = (body.get("spec") or {}).get("deletionPolicy")
    return policy if policy in DELETION_POLICIES else models()[kind].DELETION_POLICY


def manifest_of(kind: str, body: Any) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    labels = {
        str(k): str(v)
        for k, v in (meta.get("labels") or {}).items()
        if not str(k).startswith(RESERVED_TAG_PREFIX)
    }
    spec = plain(body.get("spec") or {})
    metadata: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def stack_of(body: Any) -> str:
    meta = body.get("metadata") or {}
    return str((meta.get("labels") or {}).get(STACK_LABEL) or meta.get("namespace") or "default")


def adopting(body: Any) -> bool:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(ADOPT_ANNOTATION, "")).lower() == "true"


def deleting_jobs(body: Any) -> dict[str, bool]:
    """Options for deleting a queue with unfinished jobs, from the annotation: drain | force.

    Without it the delete is refused (the finalizer stays) rather than killing jobs.
    """
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    mode = str(annotations.get(DELETE_JOBS_ANNOTATION, "")).lower()
    return {"drain": mode == "drain", "force": mode == "force"}


def document(manifest: dict[str, Any]) -> Document:
    meta = manifest["metadata"]
    where = f"{meta.get('namespace')}/{manifest['kind']}/{meta.get('name')}"
    return Document(file=where, line=1, tree=None, data=manifest)


def problems_text(exc: ManifestError, subject: str | None = None) -> list[str]:
    """`path: message` lines (no file:line: a custom resource has no file)."""
    out = []
    for p in exc.problems:
        if subject is not None and p.subject != subject:
            continue
        out.append(": ".join(part for part in (p.path, p.message) if part))
    return out


def check(manifest: dict[str, Any]) -> None:
    """Raises InvalidSpec for what is wrong with the object itself (not with what it names)."""
    try:
        validate_documents([document(manifest)])
    except ManifestError as exc:
        own = [p for p in problems_text(exc) if UNKNOWN_REFERENCE not in p]
        if own:
            raise InvalidSpec("; ".join(own)) from None


def references(manifest: dict[str, Any]) -> list[Ref]:
    """What a valid manifest names, in order, without repeats."""
    res = models()[manifest["kind"]].model_validate(manifest)
    seen: dict[Ref, None] = {}
    for kind, name, _path in res.references():
        seen.setdefault((kind, name), None)
    return list(seen)


@dataclass(frozen=True)
class Summary:
    """One custom resource as the index keeps it."""

    kind: str
    namespace: str
    name: str
    uid: str
    manifest: dict[str, Any] = field(compare=False, hash=False)
    valid: bool = True
    refs: tuple[Ref, ...] = ()
    ready: bool = False
    ready_since: str = ""  # lastTransitionTime of Ready: a new value is a new readiness
    reason: str = ""  # of Ready
    waiting: bool = False  # Synced=False with reason DependencyNotReady
    nudge: str = ""  # the NUDGE_ANNOTATION value
    digest: str = field(default="", compare=False)  # manifest hash: changes are index updates
    stack: str = "default"
    plain: bool = True  # no annotation that changes how it is planned (adopt, drain, force)
    generation: int | None = None
    deleting: bool = False  # it has a deletionTimestamp
    # The status fields as served, as compact JSON (one string, not a tree of small objects):
    # the drift sweep tells from it whether a check changes anything (operator/sweep.py).
    status: str = field(default="{}", compare=False)

    @property
    def token(self) -> str:
        return f"{self.kind}/{self.name}/{self.uid}/{self.ready_since}"


def condition(body: Any, type_: str) -> dict[str, Any] | None:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def summarize(kind: str, body: Any) -> Summary:
    meta = body.get("metadata") or {}
    manifest = manifest_of(kind, body)
    try:
        check(manifest)
        refs = tuple(references(manifest))
        valid = True
    except (InvalidSpec, ValueError):
        refs, valid = (), False
    ready = condition(body, "Ready") or {}
    synced = condition(body, "Synced") or {}
    annotations = meta.get("annotations") or {}
    return Summary(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        manifest=manifest,
        valid=valid,
        refs=refs,
        ready=ready.get("status") == "True",
        ready_since=str(ready.get("lastTransitionTime") or ""),
        reason=str(ready.get("reason") or ""),
        waiting=synced.get("status") == "False" and synced.get("reason") == DEPENDENCY_NOT_READY,
        nudge=str(annotations.get(NUDGE_ANNOTATION) or ""),
        digest=hashlib.sha256(repr(manifest).encode()).hexdigest()[:16],
        stack=stack_of(body),
        plain=not adopting(body) and not any(deleting_jobs(body).values()),
        generation=meta.get("generation"),
        deleting=bool(meta.get("deletionTimestamp")),
        status=status_json(body),
    )


def status_json(body: Any) -> str:
    """The status fields the operator writes (draft.STATUS_FIELDS), as served."""
    status = body.get("status") or {}
    served = {k: plain(status[k]) for k in STATUS_FIELDS if k in status}
    return json.dumps(served, separators=(",", ":"), sort_keys=True)


def nudge_value(deps: list[Summary]) -> str:
    """Names the readiness of all of an object's references; changes when any becomes ready."""
    tokens = sorted(d.token for d in deps)
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:16]


@dataclass
class Closure:
    """A resource with everything it refers to, directly or not, or why that is not possible."""

    declared: ResourceSet | None = None
    missing: list[str] = field(default_factory=list)  # "Kind/name does not exist", ...


def closure(manifest: dict[str, Any], lookup: Any) -> Closure:
    """`lookup(kind, name)` gives the Summary of a same-namespace object, or None."""
    found: dict[Ref, dict[str, Any]] = {(manifest["kind"], manifest["metadata"]["name"]): manifest}
    todo = references(manifest)
    out = Closure()
    direct = set(todo)
    while todo:
        ref = todo.pop(0)
        if ref in found:
            continue
        dep = lookup(*ref)
        label = f"{ref[0]}/{ref[1]}"
        if dep is None:
            out.missing.append(f"{label} does not exist in this namespace")
            continue
        if not dep.valid:
            out.missing.append(f"{label} has an invalid spec")
            continue
        if ref in direct and not dep.ready:
            reason = f" ({dep.reason})" if dep.reason else ""
            out.missing.append(f"{label} is not ready{reason}")
        found[ref] = dep.manifest
        todo.extend(dep.refs)
    if out.missing:
        return out
    docs = [document(m) for m in found.values()]
    try:
        out.declared = validate_documents(docs)
    except ManifestError as exc:
        subject = f"{manifest['kind']}/{manifest['metadata']['name']}"
        raise InvalidSpec("; ".join(problems_text(exc, subject)) or str(exc)) from None
    return out
