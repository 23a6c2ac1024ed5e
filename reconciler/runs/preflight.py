"""Checks before submitting: would any task sit RUNNABLE forever?

A job that asks for more vCPUs or memory than any compute environment of its queue can give
never starts, and AWS never says why. The plan refuses it instead, with the numbers. Instance
sizes come from DescribeInstanceTypes (one call per plan, cached); if that call is not possible
the memory check is skipped and the plan says so.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.context import Context
from reconciler.engine.types import Observed
from reconciler.models.submission import PipelineTask

FARGATE_MAX = (16.0, 122_880.0)  # vCPUs, MiB
OPTIMAL_FAMILIES = ("c4", "m4", "r4")


def requirement(task: PipelineTask, definition: dict[str, Any] | None) -> tuple[float, float]:
    """(vCPUs, MiB) the task asks for: overrides first, then its job definition."""
    found: dict[str, float] = {}
    cp = (definition or {}).get("containerProperties") or {}
    if cp.get("vcpus"):
        found["VCPU"] = float(cp["vcpus"])
    if cp.get("memory"):
        found["MEMORY"] = float(cp["memory"])
    for r in cp.get("resourceRequirements") or []:
        found[r["type"]] = float(r["value"])
    overrides = task.containerOverrides
    for r in (overrides.resourceRequirements if overrides else None) or []:
        found[r.type] = float(r.value)
    return found.get("VCPU", 0.0), found.get("MEMORY", 0.0)


def _largest_instance(ctx: Context, types: list[str]) -> tuple[float, float] | None:
    """(vCPUs, MiB) of the largest instance the types allow, or None if unknown."""
    patterns = sorted(
        {
            f"{t}.*" if "." not in t else t
            for ty in types
            for t in (OPTIMAL_FAMILIES if ty == "optimal" else [ty])
        }
    )

    def look_up() -> dict[str, tuple[float, float]]:
        try:
            pages = ctx.aws.client("ec2").get_paginator("describe_instance_types")
            return {
                i["InstanceType"]: (
                    float(i["VCpuInfo"]["DefaultVCpus"]),
                    float(i["MemoryInfo"]["SizeInMiB"]),
                )
                for p in pages.paginate(Filters=[{"Name": "instance-type", "Values": patterns}])
                for i in p["InstanceTypes"]
            }
        except Exception:  # an endpoint or a policy without DescribeInstanceTypes
            return {}

    sizes = ctx.shared("instance-types:" + ",".join(patterns), look_up)
    if not sizes:
        return None
    return max(v for v, _ in sizes.values()), max(m for _, m in sizes.values())


def _capacity(ctx: Context, ce: dict[str, Any]) -> tuple[float, float | None]:
    cr = ce.get("computeResources") or {}
    max_vcpus = float(cr.get("maxvCpus") or 0)
    if cr.get("type", "").startswith("FARGATE"):
        return min(max_vcpus, FARGATE_MAX[0]), FARGATE_MAX[1]
    largest = _largest_instance(ctx, cr.get("instanceTypes") or [])
    if largest is None:
        return max_vcpus, None
    return min(max_vcpus, largest[0]), largest[1]


def problems(
    ctx: Context,
    task: PipelineTask,
    queue: str,
    declared: Any | None,
    live: Observed | None,
    environments: list[Any],
    definition: dict[str, Any] | None,
) -> list[str]:
    """What stops `task` from ever starting in `queue` (declared and as live), given the
    declared compute environments of that queue and the task's job definition spec."""
    if declared is not None and declared.spec.state == "DISABLED":
        return [f"task {task.name!r}: queue {queue} is DISABLED"]
    if live is not None and live.status == "INVALID":
        return [f"task {task.name!r}: queue {queue} is INVALID: {live.status_reason}"]
    if declared is None or definition is None:
        return []
    vcpus, memory = requirement(task, definition)
    # An UNMANAGED environment's instances are the user's own: their size is not in the spec,
    # so such an environment could run anything (and must not be read as "at most 0 vCPUs").
    specs = [ce.spec.model_dump(exclude_none=True) for ce in environments]
    if any(spec.get("type") == "UNMANAGED" for spec in specs):
        return []
    capacities = [_capacity(ctx, spec) for spec in specs]
    if not capacities:
        return []
    best_vcpus = max(c[0] for c in capacities)
    known = [c[1] for c in capacities if c[1] is not None]
    out = []
    if vcpus > best_vcpus:
        out.append(
            f"task {task.name!r} asks for {vcpus:g} vCPUs; the compute environments "
            f"of queue {queue} give at most {best_vcpus:g}: it would stay RUNNABLE"
        )
    if known and len(known) == len(capacities) and memory > max(known):
        out.append(
            f"task {task.name!r} asks for {memory:g} MiB; the compute environments "
            f"of queue {queue} give at most {max(known):g} MiB per job: it would stay "
            "RUNNABLE"
        )
    return out
