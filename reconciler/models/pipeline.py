"""Pipeline and Task: work to run once, as Batch jobs wired with Batch-native dependencies.

A Pipeline is a DAG of tasks; a Task is a single job (or array job) on its own. Each task
mirrors SubmitJob, minus the job name (derived from the run) and with jobs referred to by task
name. Applying one submits a *run*; its identity is derived from the spec, so re-applying an
unchanged spec submits nothing and a changed one starts a new run under `concurrencyPolicy`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.limits import INT32_MAX, MAX_ARRAY_SIZE
from reconciler.models.common import (
    BATCH_NAME,
    MachineImageReference,
    Resource,
    RoleReference,
    Spec,
    bucket_values,
)
from reconciler.models.fields import LOCAL
from reconciler.models.submission import (
    MAX_DEPENDENCIES,
    PipelineTask,
    Submission,
    TaskDependency,
    file_dependencies,
    task_request_problems,
)

ConcurrencyPolicy = Literal["Forbid", "Replace", "Allow"]
SUBMIT_DOC = (
    "false: applying submits no run; the spec is a template that only something else runs "
    "(a schedule's firings). Never sent to AWS, and not part of the run's identity."
)
POLICY_DOC = (
    "What a changed spec does while a run is active: Forbid refuses, Replace "
    "cancels the active run first, Allow runs both."
)


class PipelineSpec(Spec):
    jobQueue: str | None = Field(
        default=None,
        pattern=BATCH_NAME,
        description="A JobQueue of the stack, by name: for the tasks that run on Batch.",
    )
    concurrencyPolicy: Annotated[ConcurrencyPolicy, Field(description=POLICY_DOC)] = "Forbid"
    rerun: int = Field(
        default=0, ge=0, le=INT32_MAX, description="Bump to start a new run of an unchanged spec."
    )
    submitOnApply: Annotated[bool, LOCAL] = Field(default=True, description=SUBMIT_DOC)
    tasks: list[PipelineTask] = Field(min_length=1, max_length=MAX_ARRAY_SIZE)

    @model_validator(mode="after")
    def _graph(self) -> PipelineSpec:
        problems = dag_problems(self.tasks)
        if self.jobQueue is None:
            problems += [
                f"task {t.name!r}: jobQueue: required (here or on the pipeline) for a Batch task"
                for t in self.tasks
                if t.ec2 is None and t.jobQueue is None
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def dag_problems(tasks: list[PipelineTask]) -> list[str]:
    """Unknown names, bad dependency types and cycles: every problem, not just the first."""
    by_name: dict[str, PipelineTask] = {}
    problems: list[str] = []
    for t in tasks:
        if t.name in by_name:
            problems.append(f"task {t.name!r} is declared twice")
        by_name[t.name] = t
    files = file_dependencies(tasks)
    for t in tasks:
        for dep in t.dependsOn or []:
            if dep.type == "SEQUENTIAL":
                if t.arrayProperties is None:
                    problems.append(f"task {t.name!r}: SEQUENTIAL needs arrayProperties")
                continue
            other = by_name.get(dep.task or "")
            if other is None:
                problems.append(f"task {t.name!r} depends on unknown task {dep.task!r}")
            elif (
                dep.type == "N_TO_N"
                and t.arrayProperties is not None
                and other.arrayProperties is not None
                and t.arrayProperties.size != other.arrayProperties.size
            ):
                # Between arrays AWS pairs child i with child i: sizes must agree. With a task
                # that is not an array AWS accepts N_TO_N as a plain dependency (n_to_n_notes).
                problems.append(
                    f"task {t.name!r}: N_TO_N between arrays needs {t.name!r} and "
                    f"{other.name!r} to be of the same size"
                )
        n_to_n = [d for d in t.dependsOn or [] if d.type == "N_TO_N"]
        if len(n_to_n) > MAX_DEPENDENCIES:
            problems.append(f"task {t.name!r}: more than {MAX_DEPENDENCIES} N_TO_N dependencies")
        if (
            t.ec2 is not None
            and files.get(t.name)
            and any(
                by_name[o].ec2 is None and by_name[o].arrayProperties is not None
                for o in files[t.name]
            )
        ):
            problems.append(f"task {t.name!r}: reads the outputs of an array job")
    for t in tasks:
        for dep in [*(d.task for d in t.dependsOn or []), *files.get(t.name, ())]:
            other = by_name.get(dep or "")
            if other is not None and other.detached:
                problems.append(
                    f"task {t.name!r} depends on {other.name!r}, which is detached: nothing "
                    "waits for a detached task"
                )
    cycle = find_cycle(
        {
            t.name: [
                *(d.task for d in t.dependsOn or [] if d.task in by_name),
                *sorted(files.get(t.name, ())),
            ]
            for t in tasks
        }
    )
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    return problems


def n_to_n_notes(tasks: list[PipelineTask]) -> list[str]:
    """How AWS treats an N_TO_N dependency where one side is not an array job (the seed's
    follower array on its single leader): it accepts it, and it is a plain dependency."""
    by_name = {t.name: t for t in tasks}
    notes = []
    for t in tasks:
        for dep in t.dependsOn or []:
            other = by_name.get(dep.task or "")
            if dep.type != "N_TO_N" or other is None:
                continue
            if other.arrayProperties is None or t.arrayProperties is None:
                which = (
                    "is not an array job"
                    if other.arrayProperties is None
                    else "is an array job and this task is not"
                )
                notes.append(
                    f"task {t.name!r}: N_TO_N on {other.name!r}, which {which}: AWS accepts it "
                    f"as a plain dependency ({t.name!r} waits for all of {other.name!r})"
                )
    return notes


def find_cycle(graph: dict[str, list[Any]]) -> list[str] | None:
    """One cycle in `graph` (node -> nodes it depends on), iteratively, or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root in graph:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            deps = graph.get(node, [])
            if i < len(deps):
                stack.append((node, i + 1))
                nxt = deps[i]
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return None


class Pipeline(Resource):
    """A DAG of Batch jobs, submitted as one run and tracked until it finishes."""

    KIND: ClassVar[str] = "Pipeline"
    PLURAL: ClassVar[str] = "pipelines"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("pl",)

    kind: Literal["Pipeline"]
    spec: PipelineSpec

    def references(self) -> list[tuple[str, str, str]]:
        refs = [("JobQueue", self.spec.jobQueue, "spec.jobQueue")] if self.spec.jobQueue else []
        for i, t in enumerate(self.spec.tasks):
            if t.jobDefinition and not t.external_definition:
                refs.append(("JobDefinition", t.jobDefinition, f"spec.tasks.{i}.jobDefinition"))
            if t.jobQueue:
                refs.append(("JobQueue", t.jobQueue, f"spec.tasks.{i}.jobQueue"))
            refs += _buckets(t, f"spec.tasks.{i}") + _profile(t, f"spec.tasks.{i}")
        return refs

    def task_list(self) -> list[PipelineTask]:
        return list(self.spec.tasks)

    def request_problems(self) -> list[tuple[str, str]]:
        """Each task's SubmitJob, within AWS's limits; the pipeline itself makes no request."""
        labels = self.metadata.labels
        return [
            problem
            for i, task in enumerate(self.spec.tasks)
            for problem in task_request_problems(task, labels, f"spec.tasks.{i}")
        ]


def _buckets(task: Submission, path: str) -> list[tuple[str, str, str]]:
    """The buckets a task's environment overrides take values from."""
    env = task.containerOverrides.environment if task.containerOverrides else None
    at = f"{path}.containerOverrides.environment"
    return [("Bucket", name, p) for name, p in bucket_values(env, at)]


def _profile(task: Submission, path: str) -> list[tuple[str, str, str]]:
    """The role whose instance profile an EC2 task's instance takes, and the machine image of
    the stack it boots (built first)."""
    out = []
    profile = task.ec2.instanceProfile if task.ec2 else None
    if isinstance(profile, RoleReference):
        out.append(("Role", profile.role, f"{path}.ec2.instanceProfile"))
    image = task.ec2.image if task.ec2 else None
    if isinstance(image, MachineImageReference):
        out.append(("MachineImage", image.machineImage, f"{path}.ec2.image"))
    return out


class TaskSpec(Submission, Spec):
    jobQueue: str | None = Field(default=None, pattern=BATCH_NAME)
    concurrencyPolicy: Annotated[ConcurrencyPolicy, Field(description=POLICY_DOC)] = "Forbid"
    rerun: int = Field(default=0, ge=0, le=INT32_MAX)
    submitOnApply: Annotated[bool, LOCAL] = Field(default=True, description=SUBMIT_DOC)
    dependsOn: list[TaskDependency] | None = Field(
        default=None, description="Only {type: SEQUENTIAL} for an array task."
    )

    @model_validator(mode="after")
    def _own_dependencies(self) -> TaskSpec:
        if any(d.type != "SEQUENTIAL" for d in self.dependsOn or []):
            raise ValueError(
                "dependsOn: a Task can only use {type: SEQUENTIAL}; use a Pipeline "
                "to depend on other tasks"
            )
        if self.dependsOn and self.arrayProperties is None:
            raise ValueError("dependsOn: SEQUENTIAL needs arrayProperties")
        if self.ec2 is None and self.jobQueue is None:
            raise ValueError("jobQueue: required for a Batch task (or ec2 and script)")
        return self


class Task(Resource):
    """One job (or array job) on its own: a Pipeline of a single task."""

    KIND: ClassVar[str] = "Task"
    PLURAL: ClassVar[str] = "tasks"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    kind: Literal["Task"]
    spec: TaskSpec

    def references(self) -> list[tuple[str, str, str]]:
        refs = [("JobQueue", self.spec.jobQueue, "spec.jobQueue")] if self.spec.jobQueue else []
        if self.spec.jobDefinition and not self.spec.external_definition:
            refs.append(("JobDefinition", self.spec.jobDefinition, "spec.jobDefinition"))
        return refs + _buckets(self.spec, "spec") + _profile(self.spec, "spec")

    def task_list(self) -> list[PipelineTask]:
        data = self.spec.model_dump(
            exclude={"concurrencyPolicy", "rerun", "submitOnApply"}, exclude_none=True
        )
        return [PipelineTask(name=self.name[:64], **data)]

    def request_problems(self) -> list[tuple[str, str]]:
        """The task's SubmitJob, within AWS's limits (its tags are the job's tags)."""
        return task_request_problems(self.task_list()[0], self.metadata.labels, "spec")
