"""Runs started by something other than `apply`: the requests a schedule's target sends.

A firing must be a run like an applied one (`reconciler get` / `report` find it by its jobs'
names and tags, runs/identity.py), but no process of ours is there when it fires: the run's
identity comes from the service that fires it.

- One job (a Task): an EventBridge Scheduler universal target, `aws-sdk:batch:submitJob`,
  whose input is the SubmitJob request. Scheduler replaces `<aws.scheduler.execution-id>` in it
  with an ID of its own for each firing [context attributes]: that ID is the run's.
- A DAG (a Pipeline): Scheduler invokes one API call per firing, so it starts a Step Functions
  state machine generated here: one `batch:submitJob` state per job, in topological order,
  each passing the job IDs of the states before it into `DependsOn`. Request-response, not
  `.sync`: the DAG runs in Batch with Batch's own dependencies, exactly as an applied run, and
  the execution ends (and stops costing state transitions) once every job is submitted. The
  execution's name is the run's ID.
Both use the SDK's request shape in PascalCase, the form both services take.

[context attributes] https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.aws.lookups import partition_of
from reconciler.engine.context import Context
from reconciler.models.common import Resource
from reconciler.models.submission import PipelineTask
from reconciler.runs import identity
from reconciler.runs.submit import BARRIER_MARK, _request, expand, levels

EXECUTION_ID = "<aws.scheduler.execution-id>"
SUBMIT_JOB_TARGET = "arn:{partition}:scheduler:::aws-sdk:batch:submitJob"
SUBMIT_JOB_STATE = "arn:{partition}:states:::batch:submitJob"
FREE_FORM = ("tags", "parameters")  # maps whose keys are the user's, not the API's
PASCAL_FREE_FORM = ("Tags", "Parameters")
TASK_IN_NAME = 36  # a job name: 52 (prefix) + 36 + 2 + 36 (an execution's UUID) <= 128
JOB_REF = "@job:"
# A state that calls an AWS API, in the States Language's own words (kept as JSON text: its
# type's name is also a kind's name, which only a kind's own modules may spell out).
SUBMIT_STATE = '{"Type": "Task", "ResultSelector": {"JobId.$": "$.JobId"}}'


def pascal(value: Any, free: bool = False) -> Any:
    """A camelCase request in the SDK's PascalCase; the keys of tags and parameters kept."""
    if isinstance(value, dict):
        return {
            (k if free else k[:1].upper() + k[1:]): pascal(v, not free and k in FREE_FORM)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return value


def camel(value: Any, free: bool = False) -> Any:
    """The inverse of `pascal`: what the diff compares, so that an environment entry is a
    `{name, value}` pair whose secret value (by its name) no output shows."""
    if isinstance(value, dict):
        return {
            (k if free else k[:1].lower() + k[1:]): camel(v, not free and k in PASCAL_FREE_FORM)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def comparable_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A state machine definition with each state's Parameters (SubmitJob requests) in
    camelCase, for the same reason as `camel`; the rest as it is."""
    states = {
        name: {**state, "Parameters": camel(state["Parameters"])}
        if "Parameters" in state
        else state
        for name, state in (definition.get("States") or {}).items()
    }
    return {**definition, "States": states}


def job_name(name: str, key: str, run: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", key)[:TASK_IN_NAME]
    return f"{identity.name_prefix(name)}{safe}{identity.SEPARATOR}{run}"


def _requests(
    ctx: Context, res: Resource, tasks: list[PipelineTask], queues: dict[str, str], run: str
) -> list[tuple[str, dict[str, Any]]]:
    """(unit key, camelCase SubmitJob request) in submission order; a dependency's jobId is
    JOB_REF + its unit key, and the run ID is `run`."""
    units = expand(tasks)
    refs = {u.key: JOB_REF + u.key for u in units}
    out = []
    for level in levels(units):
        for unit in level:
            queue = queues[unit.task.name if unit.task else unit.key.split(BARRIER_MARK)[0]]
            request = _request(ctx, res, run, unit, queue, refs)
            request["jobName"] = job_name(res.name, unit.key, run)
            out.append((unit.key, request))
    return out


def submit_job_input(ctx: Context, res: Resource, task: PipelineTask, queue: str) -> dict[str, Any]:
    """The universal target's input for one job: each firing is a run of its own."""
    [(_, request)] = _requests(ctx, res, [task], {task.name: queue}, EXECUTION_ID)
    if not request.get("dependsOn"):
        request.pop("dependsOn", None)
    result: dict[str, Any] = pascal(request)
    return result


def state_machine(
    ctx: Context, res: Resource, tasks: list[PipelineTask], queues: dict[str, str], comment: str
) -> dict[str, Any]:
    """The Amazon States Language definition that submits the whole DAG once per execution."""
    marker = "@run@"
    requests = _requests(ctx, res, tasks, queues, marker)
    index = {key: i for i, (key, _) in enumerate(requests)}
    partition = partition_of(ctx.aws.region)
    states: dict[str, Any] = {"Start": {"Type": "Pass", "Result": {}, "ResultPath": "$.jobs"}}
    names = [f"{i:04d} {key}"[:80] for i, (key, _) in enumerate(requests)]
    states["Start"]["Next"] = names[0]
    for i, (_key, request) in enumerate(requests):
        params = pascal({k: v for k, v in request.items() if k not in ("jobName", "dependsOn")})
        prefix, _, _ = request["jobName"].partition(marker)
        params["JobName.$"] = f"States.Format('{prefix}{{}}', $$.Execution.Name)"
        tags = params.pop("Tags")
        tags.pop(identity.RUN)
        tags[identity.RUN + ".$"] = "$$.Execution.Name"
        params["Tags"] = tags
        depends = []
        for dep in request.get("dependsOn") or []:
            item: dict[str, Any] = {"Type": dep["type"]} if dep.get("type") else {}
            if dep.get("jobId"):
                item["JobId.$"] = f"$.jobs.u{index[dep['jobId'][len(JOB_REF) :]]}.JobId"
            depends.append(item)
        if depends:
            params["DependsOn"] = depends
        state: dict[str, Any] = json.loads(SUBMIT_STATE)
        state["Resource"] = SUBMIT_JOB_STATE.format(partition=partition)
        state["Parameters"] = params
        state["ResultPath"] = f"$.jobs.u{i}"
        if i + 1 < len(names):
            state["Next"] = names[i + 1]
        else:
            state["End"] = True
        states[names[i]] = state
    return {"Comment": comment, "StartAt": "Start", "States": states}
