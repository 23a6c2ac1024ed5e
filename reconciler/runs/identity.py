"""A run's identity, derived from the spec alone, so that state can be recovered from AWS.

The run ID is a hash of everything that shapes the run: the pipeline spec and, for job
definitions of the same stack, their desired specs (a new image is a new run). It goes into
every job's name (for ListJobs' name filter) and tags (for certainty).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reconciler.aws.tags import MANAGED_BY, NAME, STACK, TOOL
from reconciler.models.common import Resource
from reconciler.models.fields import drop_local

RUN = "reconciler.io/run"
TASK = "reconciler.io/task"
KIND = "reconciler.io/kind"
SANDBOX_OUTCOME = "reconciler.io/sandbox-outcome"
SANDBOX_EXIT_CODE = "reconciler.io/sandbox-exit-code"
SEPARATOR = "--"
NAME_BUDGET = 50  # job names are at most 128 characters


def run_id(res: Resource, definitions: dict[str, Any], images: dict[str, Any] | None = None) -> str:
    """Stable for one spec; `definitions` maps in-stack job definition names to their specs,
    `images` the machine images EC2 tasks boot to theirs (a changed recipe runs the tasks
    again, as a changed job definition does; a newer base image alone does not). Local fields
    (an environment entry's `sensitive` flag) shape no job: they are left out, so setting one
    starts no new run."""
    spec = drop_local(res.spec.model_dump(mode="json", exclude_none=True), type(res.spec))
    used = sorted({t.jobDefinition for t in res.task_list() if t.jobDefinition})  # type: ignore[attr-defined]
    payload = {"kind": res.KIND, "spec": spec, "definitions": {n: definitions.get(n) for n in used}}
    if images:  # only then: the run IDs of stacks without machine images stay as they were
        payload["images"] = images
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def name_prefix(name: str) -> str:
    return f"{name[:NAME_BUDGET]}{SEPARATOR}"


def job_name(name: str, task: str, run: str) -> str:
    """Letters, digits, hyphens and underscores only: barrier keys ("t@b0.1") are mapped."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", task)
    return f"{name_prefix(name)}{safe}{SEPARATOR}{run}"[:128]


def run_tags(res: Resource, stack: str, task: str, run: str) -> dict[str, str]:
    return {MANAGED_BY: TOOL, STACK: stack, NAME: res.name, KIND: res.KIND, TASK: task, RUN: run}


def belongs(tags: dict[str, str] | None, kind: str, name: str, stack: str) -> bool:
    tags = tags or {}
    return (
        tags.get(MANAGED_BY) == TOOL
        and tags.get(STACK) == stack
        and tags.get(KIND) == kind
        and tags.get(NAME) == name
    )
