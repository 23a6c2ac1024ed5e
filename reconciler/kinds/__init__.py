"""One module per kind: its AWS calls, its AWS <-> spec mapping, its waits and its decisions."""

from __future__ import annotations

from reconciler.kinds.base import KindHandler
from reconciler.kinds.compute_environment import ComputeEnvironmentHandler
from reconciler.kinds.job_definition import JobDefinitionHandler
from reconciler.kinds.job_queue import JobQueueHandler
from reconciler.kinds.pipeline import PipelineHandler, TaskHandler

# In dependency order: a kind is planned after the kinds it refers to.
HANDLERS: dict[str, KindHandler] = {
    h.model.KIND: h
    for h in (
        ComputeEnvironmentHandler(),
        JobQueueHandler(),
        JobDefinitionHandler(),
        PipelineHandler(),
        TaskHandler(),
    )
}

__all__ = ["HANDLERS", "KindHandler"]
