"""Pydantic models: the single source of truth for manifests, JSON Schemas and CRDs. No boto3."""

from __future__ import annotations

from reconciler.models.common import Resource
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.job_definition import JobDefinition
from reconciler.models.job_queue import JobQueue
from reconciler.models.pipeline import Pipeline, Task

# In dependency order: a kind may refer only to kinds before it.
KINDS: dict[str, type[Resource]] = {
    m.KIND: m for m in (ComputeEnvironment, JobQueue, JobDefinition, Pipeline, Task)
}


def kind_for(name: str) -> type[Resource] | None:
    """Accepts a kind as users type it on the command line: Kind, plural, or short name."""
    low = name.lower()
    for model in KINDS.values():
        if low in (model.KIND.lower(), model.PLURAL, model.PLURAL.rstrip("s"), *model.SHORT_NAMES):
            return model
    return None


__all__ = [
    "KINDS",
    "ComputeEnvironment",
    "JobDefinition",
    "JobQueue",
    "Pipeline",
    "Resource",
    "Task",
    "kind_for",
]
