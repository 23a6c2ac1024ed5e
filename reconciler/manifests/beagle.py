"""A batchbeagle stack (`beagle -f stack.yml assemble`) converted into our manifests.

batchbeagle 0.2.0 (github.com/caltechads/batchbeagle, `batchbeagle/aws/batch.py`) reads three
sections, each a list of mappings, and sends each entry field for field to AWS:

    compute_environments: name, type, state, serviceRole, compute_resources {type, subnets,
        instanceRole, instanceTypes, maxvCpus, minvCpus, desiredvCpus, imageId, ec2KeyPair,
        tags, securityGroupIds, bidPercentage and spotIamFleetRole (SPOT only)}
    queues: name, state, priority, compute_environments [{name, order}]
    job_definitions: name, parameters, retryStrategy, container {image, memory, vcpus,
        command (one string; `${x}` becomes `Ref::x`), jobRoleArn, readonlyRootFilesystem,
        privileged, user, volumes, environment, mountPoints, ulimits}

It leaves out empty values ('' and empty lists) and upper-cases `type` and `state`; a key it
does not read it ignores, so such a key never reached AWS: converting it would change what
the stack does, so it is left out with a warning. The result is validated as any manifest
is; every problem is reported at once, at the line of the stack file it comes from.

The three kinds are named as users type them on the command line (`kind_for`), so that the
kinds stay named only in their own modules; if one is gone, the converter says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler import API_VERSION
from reconciler.errors import ManifestError, Problem
from reconciler.manifests.loader import Document, load_paths
from reconciler.manifests.validate import ResourceSet, validate_documents
from reconciler.registry import kind_for

SECTIONS = {  # batchbeagle's section -> the kind word its entries become
    "compute_environments": "computeenvironment",
    "queues": "jobqueue",
    "job_definitions": "jobdefinition",
}
COMPUTE_RESOURCES = (
    "type", "subnets", "instanceRole", "instanceTypes", "maxvCpus", "minvCpus", "desiredvCpus",
    "imageId", "ec2KeyPair", "tags", "securityGroupIds",
)  # fmt: skip
SPOT_ONLY = ("bidPercentage", "spotIamFleetRole")
CONTAINER = (
    "image", "memory", "vcpus", "jobRoleArn", "readonlyRootFilesystem", "privileged", "user",
    "volumes", "environment", "mountPoints", "ulimits",
)  # fmt: skip


@dataclass
class Converted:
    """The manifests, with where each came from, and what was left out (warnings)."""

    declared: ResourceSet
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _kept(value: Any) -> bool:
    """batchbeagle's `_add_key`: a value is sent unless it is empty ('' , [], {}, None)."""
    return value is not None and value != "" and value != [] and value != {}


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def command_of(value: Any) -> Any:
    """batchbeagle's `_replace_command`: a string split on blanks, `${x}` as `Ref::x`."""
    if not isinstance(value, str):
        return value
    return [f"Ref::{a[2:-1]}" if a.startswith("${") else a for a in value.split()]


class _Converter:
    def __init__(self, doc: Document):
        self.doc = doc
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def _problem(self, loc: list[Any], subject: str, message: str, warn: bool = False) -> None:
        path = ".".join(str(p) for p in loc)
        found = Problem(self.doc.file, self.doc.line_of(loc), subject, path, message)
        (self.warnings if warn else self.problems).append(found)

    def _ignored(
        self, loc: list[Any], subject: str, entry: dict[str, Any], known: set[str]
    ) -> None:
        for key in entry:
            if key not in known:
                self._problem(
                    [*loc, key],
                    subject,
                    "batchbeagle ignores this key, so AWS never got it: left out",
                    warn=True,
                )

    def _copy(self, entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: entry[k] for k in keys if k in entry and _kept(entry[k])}

    def compute_environment(self, loc: list[Any], entry: dict[str, Any], subject: str) -> Any:
        spec: dict[str, Any] = {"type": _upper(entry.get("type")), "state": "ENABLED"}
        if _kept(entry.get("state")):
            spec["state"] = _upper(entry["state"])
        if _kept(entry.get("serviceRole")):
            spec["serviceRole"] = entry["serviceRole"]
        known = {"name", "type", "state", "serviceRole", "compute_resources"}
        self._ignored(loc, subject, entry, known)
        resources = entry.get("compute_resources")
        if spec["type"] != "MANAGED":
            if resources is not None:
                self._problem(
                    [*loc, "compute_resources"],
                    subject,
                    f"batchbeagle ignores compute_resources of a {spec['type']} environment: "
                    "left out",
                    warn=True,
                )
            return spec
        if not isinstance(resources, dict):
            self._problem([*loc], subject, "compute_resources: required for a MANAGED environment")
            return spec
        cr = self._copy(resources, COMPUTE_RESOURCES)
        cr["type"] = _upper(cr.get("type"))
        if cr["type"] == "SPOT":
            cr |= self._copy(resources, SPOT_ONLY)
        known_cr = {*COMPUTE_RESOURCES, *SPOT_ONLY}
        self._ignored([*loc, "compute_resources"], subject, resources, known_cr)
        if cr["type"] != "SPOT":
            for key in SPOT_ONLY:
                if _kept(resources.get(key)):
                    self._problem(
                        [*loc, "compute_resources", key],
                        subject,
                        f"batchbeagle sends this for SPOT only, not {cr['type']}: left out",
                        warn=True,
                    )
        spec["computeResources"] = cr
        return spec

    def queue(self, loc: list[Any], entry: dict[str, Any], subject: str) -> Any:
        self._ignored(loc, subject, entry, {"name", "state", "priority", "compute_environments"})
        order = []
        for i, ce in enumerate(entry.get("compute_environments") or []):
            if not isinstance(ce, dict) or "name" not in ce or "order" not in ce:
                where = [*loc, "compute_environments", i]
                self._problem(where, subject, "each compute environment needs name and order")
                continue
            order.append({"order": ce["order"], "computeEnvironment": ce["name"]})
        spec = {"priority": entry.get("priority"), "computeEnvironmentOrder": order}
        if _kept(entry.get("state")):
            spec["state"] = _upper(entry["state"])
        return spec

    def job_definition(self, loc: list[Any], entry: dict[str, Any], subject: str) -> Any:
        self._ignored(loc, subject, entry, {"name", "container", "parameters", "retryStrategy"})
        container = entry.get("container")
        if not isinstance(container, dict):
            self._problem([*loc], subject, "container: required (image, memory, vcpus)")
            return {}
        self._ignored([*loc, "container"], subject, container, {*CONTAINER, "command"})
        props = self._copy(container, CONTAINER)
        command = command_of(container.get("command"))
        if _kept(command):
            props["command"] = command
        spec: dict[str, Any] = {"type": "container", "containerProperties": props}
        spec |= self._copy(entry, ("parameters", "retryStrategy"))
        return spec


def convert(path: str) -> Converted:
    """The manifests a batchbeagle stack file declares; ManifestError with every problem."""
    docs = load_paths([path])
    stacks = [d for d in docs if d.data is not None]
    if len(stacks) != 1 or not isinstance(stacks[0].data, dict):
        line = stacks[1].line if len(stacks) > 1 else 1
        raise ManifestError(
            [Problem(path, line, "", "", "a batchbeagle stack is one YAML mapping of sections")]
        )
    doc = stacks[0]
    conv = _Converter(doc)
    makers = {
        "compute_environments": conv.compute_environment,
        "queues": conv.queue,
        "job_definitions": conv.job_definition,
    }
    out: list[Document] = []
    for section, entries in doc.data.items():
        word = SECTIONS.get(section)
        if word is None:
            known = ", ".join(SECTIONS)
            conv._problem([section], "", f"not a batchbeagle section (it reads {known})")
            continue
        model = kind_for(word)
        if model is None:  # pragma: no cover - the kind was removed
            conv._problem([section], "", f"no kind for {word}: cannot convert this section")
            continue
        if not isinstance(entries, list):
            conv._problem([section], "", "must be a list of entries")
            continue
        for i, entry in enumerate(entries):
            loc: list[Any] = [section, i]
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                conv._problem(loc, "", "each entry needs a name")
                continue
            subject = f"{model.KIND}/{entry['name']}"
            before = len(conv.problems)
            spec = makers[section](loc, entry, subject)
            if len(conv.problems) > before:
                continue  # reported as it is in the stack, not again as a manifest
            data = {
                "apiVersion": API_VERSION,
                "kind": model.KIND,
                "metadata": {"name": entry["name"]},
                "spec": spec,
            }
            node = doc.tree[section][i]
            out.append(Document(doc.file, doc.line_of(loc), node, data))
    problems = list(conv.problems)
    declared = ResourceSet(resources=[])
    try:
        declared = validate_documents(out)
    except ManifestError as exc:
        problems += exc.problems
    if problems:
        raise ManifestError(problems)
    return Converted(declared, [d.data for d in out], conv.warnings + list(declared.warnings))
