"""Pipeline and Task: the desired state of work is "this spec's run exists".

Observed state is the runs found in AWS (job names and tags carry the pipeline, run and task),
so nothing is kept locally. Decisions:
- the spec's run exists and is fully submitted: nothing to do, its status is shown;
- it exists but an apply was interrupted mid-submission: submit the missing tasks only;
- it does not exist: submit it, unless another run is active and `concurrencyPolicy` is
  Forbid (refused) or Replace (that run's unfinished jobs are cancelled first);
- delete: cancel jobs that have not started and terminate running ones.
Preflight refuses tasks that could never start (see runs/preflight.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from reconciler.aws.tags import Owner
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.kinds.base import KindHandler, spec_dict
from reconciler.models.pipeline import Pipeline, PipelineTask, Task
from reconciler.runs import identity, preflight
from reconciler.runs.state import FINISHED, RunState, read_runs
from reconciler.runs.submit import barrier_count, expand, submit_run

REASON = "cancelled by reconciler"


class RunView(BaseModel):
    """What is compared: which run the spec calls for."""

    runId: str | None = None


def queues_of(res: Pipeline | Task) -> dict[str, str]:
    default = res.spec.jobQueue
    return {t.name: t.jobQueue or default for t in res.task_list()}


def stop_jobs(ctx: Context, runs: list[RunState], reason: str) -> int:
    """Stops every unfinished job; returns how many.

    TerminateJob, not CancelJob: it cancels jobs that have not started and terminates the
    others, so a job that starts between our read and our call is still stopped.
    """
    batch = ctx.aws.client("batch")
    stopped = 0
    for run in runs:
        for job in run.jobs.values():
            if job.get("status") not in FINISHED:
                batch.terminate_job(jobId=job["jobId"], reason=reason)
                stopped += 1
    return stopped


class PipelineHandler(KindHandler):
    model: Any = Pipeline
    spec_model = RunView

    def ignored(self, res: Any) -> frozenset[str]:
        return frozenset()

    def matches_name(self, live: Observed, name: str) -> bool:
        return False  # runs of other stacks are theirs, never a conflict

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        found = []
        for res in declared:
            runs = read_runs(ctx, self.model.KIND, res.name, list(queues_of(res).values()))
            if not runs:
                continue
            latest = max(runs.values(), key=lambda r: r.created)
            found.append(
                Observed(
                    kind=self.model.KIND,
                    aws_name=res.name,
                    arn="",
                    spec={"runId": latest.run_id},
                    owner=Owner(ctx.stack, res.name),
                    status=latest.status(),
                    extra={"runs": runs},
                )
            )
        return found

    def desired(self, ctx: Context, res: Any, plan: Plan) -> dict[str, Any]:
        definitions = {
            k[1]: spec_dict(r) for k, r in plan.desired.items() if k[0] == "JobDefinition"
        }
        return {"runId": identity.run_id(res, definitions)}

    # -- deciding ----------------------------------------------------------------------------

    def _submit_action(
        self,
        ctx: Context,
        res: Any,
        plan: Plan,
        run: str,
        existing: dict[str, str],
        replacing: list[RunState],
    ) -> Action:
        tasks = res.task_list()
        action = Action.of(
            res.KIND,
            res.name,
            Verb.SUBMIT,
            aws_name=res.name,
            summary=f"{run}: {len(tasks)} task{'s' if len(tasks) > 1 else ''}",
        )
        problems = self._preflight(ctx, res, plan)
        if problems:
            action.verb = Verb.REFUSED
            action.summary = "; ".join(problems)
            return action
        barriers = barrier_count(tasks)
        if barriers:
            action.notes.append(
                f"{barriers} barrier job(s) added: AWS allows a job at most 20 dependencies"
            )
        if existing:
            action.summary += f" (finishing: {len(existing)} already submitted)"
        if replacing:
            action.verb = Verb.REPLACE
            action.summary += (
                f"; first cancels run {', '.join(r.run_id for r in replacing)}"
                " (concurrencyPolicy Replace)"
            )
        queues = queues_of(res)
        action.run = lambda c: self._submit(c, res, run, tasks, queues, existing, replacing)
        return action

    def _preflight(self, ctx: Context, res: Any, plan: Plan) -> list[str]:
        out = []
        for task in res.task_list():
            jd = plan.desired.get(("JobDefinition", task.jobDefinition))
            definition = spec_dict(jd) if jd is not None else None
            queue = task.jobQueue or res.spec.jobQueue
            out += preflight.problems(ctx, plan, task, queue, definition)
        return out

    def plan_create(self, ctx: Context, res: Any, desired: dict[str, Any], plan: Plan) -> Action:
        return self._submit_action(ctx, res, plan, desired["runId"], {}, [])

    def plan_change(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        plan: Plan,
    ) -> list[Action]:
        runs: dict[str, RunState] = current.extra["runs"]
        wanted = desired["runId"]
        units = len(expand(res.task_list()))
        if wanted in runs:
            run = runs[wanted]
            if len(run.jobs) >= units:
                return [
                    Action.of(
                        res.KIND,
                        res.name,
                        Verb.NOOP,
                        aws_name=res.name,
                        summary=f"run {wanted}: {run.status(units)}",
                    )
                ]
            existing = {k: j["jobId"] for k, j in run.jobs.items()}
            return [self._submit_action(ctx, res, plan, wanted, existing, [])]
        active = [r for r in runs.values() if r.active]
        policy = res.spec.concurrencyPolicy
        if active and policy == "Forbid":
            return [
                Action.of(
                    res.KIND,
                    res.name,
                    Verb.REFUSED,
                    aws_name=res.name,
                    changes=changes,
                    summary=f"run {active[0].run_id} is still active and "
                    "concurrencyPolicy is Forbid: re-apply when it finishes, "
                    "or use Replace or Allow",
                )
            ]
        action = self._submit_action(
            ctx, res, plan, wanted, {}, active if policy == "Replace" else []
        )
        action.changes = changes
        return [action]

    def plan_delete(self, ctx: Context, name: str, live: Observed, plan: Plan, why: str) -> Action:
        runs = [r for r in live.extra["runs"].values() if r.active]
        kind = self.model.KIND
        if not runs:
            return Action.of(
                kind,
                name,
                Verb.NOOP,
                summary="no unfinished jobs",
            )
        unfinished = sum(
            1 for r in runs for j in r.jobs.values() if j.get("status") not in FINISHED
        )
        return Action.of(
            kind,
            name,
            Verb.DELETE,
            "#delete",
            aws_name=name,
            summary=f"cancel or terminate {unfinished} unfinished job(s) of run "
            f"{', '.join(r.run_id for r in runs)}",
            run=lambda c: f"{stop_jobs(c, runs, REASON + ' (' + why + ')')} job(s) stopped",
        )

    def link(self, plan: Plan) -> None:
        """A run is submitted after the definitions, queues and environments it uses; a queue
        is deleted after the runs in it are stopped."""
        infra = [
            a
            for a in plan.actions
            if a.verb.writes
            and a.verb is not Verb.DELETE
            and a.kind in ("JobDefinition", "JobQueue", "ComputeEnvironment")
        ]
        queue_deletes = [a for a in plan.actions if a.kind == "JobQueue" and a.verb is Verb.DELETE]
        for action in plan.actions:
            if action.kind != self.model.KIND:
                continue
            res = plan.desired[(action.kind, action.name)]
            queues = set(queues_of(res).values())
            if action.verb in (Verb.SUBMIT, Verb.REPLACE):
                used = {("JobDefinition", t.jobDefinition) for t in res.task_list()}
                used |= {("JobQueue", q) for q in queues}
                action.after.update(
                    a.id
                    for a in infra
                    if (a.kind, a.name) in used or a.kind == "ComputeEnvironment"
                )
            elif action.verb is Verb.DELETE:
                for q in queue_deletes:
                    if q.aws_name in queues:
                        q.after.add(action.id)

    # -- carrying out ------------------------------------------------------------------------

    def _submit(
        self,
        ctx: Context,
        res: Any,
        run: str,
        tasks: list[PipelineTask],
        queues: dict[str, str],
        existing: dict[str, str],
        replacing: list[RunState],
    ) -> str:
        stopped = stop_jobs(ctx, replacing, f"{REASON}: replaced by run {run}") if replacing else 0
        ids = submit_run(ctx, res, run, tasks, queues, existing)
        ctx.shared(f"run:{res.KIND}/{res.name}", dict)[run] = ids
        new = len(ids) - len(existing)
        return f"run {run}: {new} job(s) submitted" + (f", {stopped} stopped" if stopped else "")


class TaskHandler(PipelineHandler):
    model = Task


def watch_targets(
    ctx: Context, plan: Plan, selected: set[tuple[str, str]] | None = None, run: str | None = None
) -> list[Any]:
    """The runs a plan's pipelines and tasks call for (or `run`), with their job IDs."""
    from reconciler.runs.watch import Watched

    targets = []
    for key, res in plan.desired.items():
        if key[0] not in ("Pipeline", "Task") or (selected and key not in selected):
            continue
        handler = PipelineHandler() if key[0] == "Pipeline" else TaskHandler()
        wanted = run or handler.desired(ctx, res, plan)["runId"]
        ids = ctx.shared(f"run:{key[0]}/{key[1]}", dict).get(wanted)
        if ids is None:
            runs = read_runs(ctx, key[0], key[1], list(queues_of(res).values()))
            found = runs.get(wanted)
            ids = {k: j["jobId"] for k, j in found.jobs.items()} if found else None
        if ids:
            targets.append(Watched(key[0], key[1], wanted, ids))
    return targets
