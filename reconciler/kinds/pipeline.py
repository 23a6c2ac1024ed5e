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

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reconciler.aws.tags import Owner
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.status import JOB_LINES
from reconciler.engine.types import Observed, Pending, Step, Verb, Work
from reconciler.kinds.base import Column, Kind, Permission, spec_dict
from reconciler.models.bucket import Bucket
from reconciler.models.common import BucketReference, MachineImageReference, RoleReference
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.job_definition import JobDefinition
from reconciler.models.job_queue import JobQueue
from reconciler.models.machine_image import MachineImage
from reconciler.models.pipeline import Pipeline, Task, n_to_n_notes
from reconciler.models.role import Role
from reconciler.models.submission import PipelineTask
from reconciler.runs import drive, ec2_launch, ending, identity, preflight
from reconciler.runs.ending import stop_jobs
from reconciler.runs.report import run_status
from reconciler.runs.state import FINISHED, STATES, RunState, counts, describe, read_runs
from reconciler.runs.submit import barrier_count, expand, submit_run
from reconciler.runs.watch import Watched, poll, state_lines

REASON = "cancelled by reconciler"
MAX_TASKS_IN_STATUS = 200  # a status must stay far below etcd's object size limit


class RunView(BaseModel):
    """What is compared: which run the spec calls for, and whether all of it was submitted."""

    runId: str | None = None
    complete: bool = True


def queues_of(res: Pipeline | Task) -> dict[str, str]:
    """The queue of each Batch task (EC2 tasks have none)."""
    default = res.spec.jobQueue
    return {t.name: q for t in res.task_list() if t.ec2 is None and (q := t.jobQueue or default)}


def _read(ctx: Context, res: Pipeline | Task) -> dict[str, RunState]:
    queues = list(queues_of(res).values())
    return read_runs(ctx, res.KIND, res.name, queues, drive.driven(res.task_list()))


def _active(current: Observed) -> list[RunState]:
    return [r for r in current.extra["runs"].values() if r.active]


class PipelineKind(Kind):
    model: Any = Pipeline
    spec_model = RunView
    busy_statuses = ()  # a run in progress is work being done, not a resource settling
    conflicts_by_name = False  # runs of other stacks are theirs, never a conflict
    runs = True
    columns = (
        Column("Run", "runId", description="The run the spec calls for."),
        Column("Status", "runStatus", description="The run's status."),
    )
    permissions = (
        Permission(
            "BatchJobs",
            "batch",
            ("SubmitJob", "CancelJob", "TerminateJob"),
            ("job-queue/*", "job-definition/*", "job/*"),
        ),
        # EC2 tasks (runs/drive.py). RunInstances acts on the image (Amazon's: no account in
        # its ARN), subnet, group, network interface and volumes too; tags are given at launch
        # (authorised as CreateTags). The code ends only instances and requests it tagged.
        Permission(
            "Ec2Tasks",
            "ec2",
            ("RunInstances", "CreateTags", "TerminateInstances", "CancelSpotInstanceRequests"),
            ec2_launch.LAUNCH_RESOURCES,
        ),
        # The run queues, next to the dead-letter queues the Notification kind makes.
        Permission(
            "NotificationQueues",
            "sqs",
            (
                "CreateQueue",
                "DeleteQueue",
                "GetQueueUrl",
                "ListQueues",
                "ListQueueTags",
                "ReceiveMessage",
                "DeleteMessage",
            ),
            ("reconciler-run-*",),
        ),
        # The scratch bucket (runs/ec2_scratch.py), one bucket among those the Bucket kind makes.
        Permission(
            "S3Buckets",
            "s3",
            (
                "CreateBucket",
                "ListBucket",
                "PutBucketTagging",
                "PutBucketPublicAccessBlock",
                "PutLifecycleConfiguration",
            ),
            ("arn:{partition}:s3:::*",),
        ),
        # Run records and task output in the scratch bucket; tasks' inputs and outputs anywhere.
        Permission("S3Objects", "s3", ("GetObject", "PutObject"), ("arn:{partition}:s3:::*/*",)),
    )

    def ignored(self, res: Any) -> frozenset[str]:
        return frozenset()

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        found = []
        for res in declared:
            runs = _read(ctx, res)
            if not runs:
                continue
            latest = max(runs.values(), key=lambda r: r.created)
            found.append(
                Observed(
                    kind=self.name,
                    aws_name=res.name,
                    arn="",
                    spec={"runId": latest.run_id, "complete": True},
                    owner=Owner(ctx.stack, res.name),
                    status=latest.status(),
                    extra={"runs": runs},
                )
            )
        return found

    def run_id(self, res: Any, refs: Refs) -> str:
        definitions, images = {}, {}
        for kind, name, _ in res.references():
            if kind == JobDefinition.KIND and (jd := refs.resource(kind, name)) is not None:
                definitions[name] = spec_dict(jd)
            if kind == MachineImage.KIND and (mi := refs.resource(kind, name)) is not None:
                images[name] = spec_dict(mi)
        return identity.run_id(res, definitions, images)

    def desired(self, ctx: Context, res: Any, refs: Refs) -> dict[str, Any]:
        # concurrencyPolicy is not compared (RunView has no such field): the hook reads it.
        # submitOnApply false: the spec calls for no run of its own (runId None); runs that
        # something else started (a schedule's firings) are shown, never a change.
        return {
            "runId": self.run_id(res, refs) if res.spec.submitOnApply else None,
            "complete": True,
            "concurrencyPolicy": res.spec.concurrencyPolicy,
        }

    def pick(
        self, res: Any, candidates: list[Observed], desired: dict[str, Any]
    ) -> tuple[Observed, list[Observed]]:
        """The spec's own run if it exists (complete or not), else the latest."""
        current = candidates[0]
        if desired["runId"] is None:  # submitOnApply false: whatever runs exist are fine
            current.extra["latest"] = current.spec["runId"]
            current.spec = {"runId": None, "complete": True}
            return current, []
        run = current.extra["runs"].get(desired["runId"])
        if run is not None:
            tasks = res.task_list()
            if drive.driven(tasks):
                # Ended by its driver too: the record written, the queue deleted.
                complete = run.recorded and drive.run_complete(tasks, run.jobs)
                current.status = run.status()
            else:
                complete = len(run.jobs) >= len(expand(tasks))
                current.status = run.status(len(expand(tasks)))
            current.spec = {"runId": run.run_id, "complete": complete}
        return current, []

    def requires_replacement(
        self, changes: list[Change], current: Observed, desired: dict[str, Any]
    ) -> str | None:
        active = _active(current)
        changed = any(c.path == "runId" for c in changes)
        if changed and active and desired["concurrencyPolicy"] == "Replace":
            return (
                f"run {', '.join(r.run_id for r in active)} is active (concurrencyPolicy Replace)"
            )
        return None

    def unchanged(self, ctx: Context, res: Any, current: Observed) -> Work:
        run = current.spec["runId"] or current.extra.get("latest")
        return Work(summary=f"run {run}: {current.status}")

    # -- carrying out ------------------------------------------------------------------------

    def _submission(
        self,
        ctx: Context,
        res: Any,
        refs: Refs,
        run: str,
        existing: dict[str, dict[str, Any]],
        replacing: list[RunState],
        generations: dict[str, int] | None = None,
    ) -> Work:
        tasks = [_resolved(ctx, refs, t) for t in res.task_list()]
        work = Work(
            verb=Verb.REPLACE if replacing else Verb.SUBMIT,
            summary=f"{run}: {len(tasks)} task{'s' if len(tasks) > 1 else ''}",
        )
        problems = self._preflight(ctx, res, refs)
        if problems:
            work.refused = "; ".join(problems)
            return work
        work.notes += n_to_n_notes(tasks)
        barriers = barrier_count(tasks)
        if barriers:
            work.notes.append(
                f"{barriers} barrier job(s) added: AWS allows a job at most 20 dependencies"
            )
        if existing:
            work.summary += f" (finishing: {len(existing)} already submitted)"
        if replacing:
            work.summary += (
                f"; first cancels run {', '.join(r.run_id for r in replacing)}"
                " (concurrencyPolicy Replace)"
            )
        queues = queues_of(res)
        if drive.driven(tasks):
            work.notes += drive.plan_notes(tasks)
            gens = generations or {}
            work.run = lambda c: self._drive(
                c, res, run, _booted(c, refs, tasks), queues, existing, replacing, gens
            )
        else:
            ids = {k: j["jobId"] for k, j in existing.items()}
            work.run = lambda c: self._submit(c, res, run, tasks, queues, ids, replacing)
        return work

    def _preflight(self, ctx: Context, res: Any, refs: Refs) -> list[str]:
        out = []
        for task in res.task_list():
            if task.ec2 is not None:
                continue  # no queue, no job definition: the launch itself is the check
            jd = refs.resource(JobDefinition.KIND, task.jobDefinition or "")
            definition = spec_dict(jd) if jd is not None else None
            queue = task.jobQueue or res.spec.jobQueue
            declared = refs.resource(JobQueue.KIND, queue)
            environments = [
                ce
                for e in (declared.spec.computeEnvironmentOrder if declared else [])
                if (ce := refs.resource(ComputeEnvironment.KIND, e.computeEnvironment))
            ]
            live = refs.live(JobQueue.KIND, refs.aws_name(JobQueue.KIND, queue))
            out += preflight.problems(ctx, task, queue, declared, live, environments, definition)
        return out

    def create(
        self, ctx: Context, res: Any, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        if desired["runId"] is None:
            return Work(verb=Verb.NOOP, summary="submitOnApply is false: applying runs nothing")
        return self._submission(ctx, res, refs, desired["runId"], {}, [])

    def update(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        wanted = desired["runId"]
        run = current.extra["runs"].get(wanted)
        if run is not None:  # an interrupted submission (or a driven run left behind): finish it
            return self._submission(ctx, res, refs, wanted, dict(run.jobs), [], run.generations)
        active = _active(current)
        if active and desired["concurrencyPolicy"] == "Forbid":
            return Work(
                refused=f"run {active[0].run_id} is still active and concurrencyPolicy is "
                "Forbid: re-apply when it finishes, or use Replace or Allow"
            )
        return self._submission(ctx, res, refs, wanted, {}, [])

    def replace(
        self,
        ctx: Context,
        res: Any,
        current: Observed,
        desired: dict[str, Any],
        why: str,
        refs: Refs,
    ) -> list[Work] | None:
        return [self._submission(ctx, res, refs, desired["runId"], {}, _active(current))]

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        runs = _active(live)
        if not runs:
            return Work(verb=Verb.NOOP, summary="no unfinished jobs", suffix="")
        unfinished = sum(
            1 for r in runs for j in r.jobs.values() if j.get("status") not in FINISHED
        )
        names = ", ".join(r.run_id for r in runs)
        if ctx.options.drain:
            # --drain: the user wants the work to finish, not to be killed.
            return Work(
                summary=f"let {unfinished} unfinished job(s) of run {names} finish (--drain)",
                run=self._draining(runs),
                suffix="#delete",
                aws_name=live.aws_name,
            )
        # An EC2 run's attached instances and its queue are ended here, not left for `gc`.
        ends = ending.plan(ctx, self.model.KIND, live.aws_name, runs)
        return Work(
            summary=f"cancel or terminate {unfinished} unfinished job(s) of run {names}",
            notes=ends.notes(),
            run=lambda c: f"{stop_jobs(c, runs, f'{REASON} ({why})', ends)} job(s) stopped",
            suffix="#delete",
            aws_name=live.aws_name,
        )

    def _draining(self, runs: list[RunState]) -> Any:
        ids = [j["jobId"] for r in runs for j in r.jobs.values() if j.get("status") not in FINISHED]

        def step(ctx: Context) -> Step:
            left = [j for j in describe(ctx, ids).values() if j.get("status") not in FINISHED]
            if not left:
                return f"{len(ids)} job(s) finished"
            patience = ctx.options.drain_timeout + ctx.options.wait_timeout
            return Pending(f"draining: {len(left)} job(s) unfinished", step, None, patience)

        return step

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

    def _drive(
        self,
        ctx: Context,
        res: Any,
        run: str,
        tasks: list[PipelineTask],
        queues: dict[str, str],
        existing: dict[str, dict[str, Any]],
        replacing: list[RunState],
        generations: dict[str, int],
    ) -> Step:
        """A run with EC2 tasks (or file dependencies): driven step by step (runs/drive.py);
        Ctrl-C ends what it started."""
        if replacing:
            ends = ending.plan(ctx, res.KIND, res.name, replacing)
            stop_jobs(ctx, replacing, f"{REASON}: replaced by run {run}", ends)
        log_dir = Path(ctx.options.run_dir) / res.KIND.lower() / res.name / run
        driver = drive.Driver(
            res, run, tasks, queues, dict(existing), dict(generations), log_dir=log_dir
        )
        ctx.on_interrupt(lambda: driver.stop(ctx, f"{REASON}: interrupted"))
        ctx.shared(f"driver:{res.KIND}/{res.name}", dict)[run] = driver
        return driver.step(ctx)

    # -- following runs ----------------------------------------------------------------------

    def run_target(self, ctx: Context, res: Any, refs: Refs, run: str | None = None) -> Any:
        """The run the spec calls for (or `run`) with its job IDs, to watch; None if AWS has
        none yet."""
        wanted = run or self.run_id(res, refs)
        ids = ctx.shared(f"run:{res.KIND}/{res.name}", dict).get(wanted)
        driver = ctx.shared(f"driver:{res.KIND}/{res.name}", dict).get(wanted)
        known: dict[str, dict[str, Any]] = dict(driver.jobs) if driver else {}
        if driver:
            ids = {k: j["jobId"] for k, j in known.items()}
        if ids is None:
            runs = _read(ctx, res)
            if run is None and not res.spec.submitOnApply and runs:
                # No run of its own: the latest that something else started (a firing).
                wanted = max(runs.values(), key=lambda r: r.created).run_id
            found = runs.get(wanted)
            known = dict(found.jobs) if found else {}
            ids = {k: j["jobId"] for k, j in known.items()} if found else None
        # Skipped and blocked tasks have no job to read again: their entries are final.
        return Watched(res.KIND, res.name, wanted, ids, known) if ids else None

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        """The run as planning saw it (no extra AWS call); the operator adds job counts."""
        if live is None:
            return {"runId": None, "runStatus": None}
        run = live.spec.get("runId") or live.extra.get("latest")
        return {"runId": run, "runStatus": live.status}

    def run_status(self, ctx: Context, res: Any, refs: Refs) -> dict[str, Any]:
        """The run the spec calls for as status shows it: ID, status, job counts by state."""
        target = self.run_target(ctx, res, refs)
        if target is None:
            return {"runId": None, "runStatus": None, "jobs": {}, "tasks": {}}
        poll(ctx, [target])
        tasks: dict[str, dict[str, int]] = {}
        total: Counter[str] = Counter()
        for task in target.tasks:
            job = target.jobs.get(task)
            by_state = counts(job) if job else Counter({"SUBMITTED": 1})
            total.update(by_state)
            if len(tasks) < MAX_TASKS_IN_STATUS:
                tasks[task] = {s: by_state[s] for s in STATES if by_state[s]}
        statuses = [str(target.jobs[t].get("status")) for t in target.tasks if t in target.jobs]
        return {
            "runId": target.run_id,
            "runStatus": run_status(statuses) if statuses else "SUBMITTED",
            "jobs": {s: total[s] for s in STATES if total[s]},
            "tasks": tasks,
            # Not status: what the operator says in an event when a job's state changes.
            JOB_LINES: state_lines(target, list(tasks)),
        }


def _resolved(ctx: Context, refs: Refs, task: PipelineTask) -> PipelineTask:
    """The task with its environment values that name a bucket of the stack resolved (the
    bucket's name after the plan, its URL or ARN), as SubmitJob must get them, and an EC2
    task's role of the stack as the ARN of its instance profile."""
    if task.ec2 is not None and isinstance(task.ec2.instanceProfile, RoleReference):
        arn = refs.output(ctx, Role.KIND, task.ec2.instanceProfile.role, "instanceProfile")
        ec2 = task.ec2.model_copy(update={"instanceProfile": arn})
        return task.model_copy(update={"ec2": ec2})
    co = task.containerOverrides
    if co is None or not any(isinstance(e.value, BucketReference) for e in co.environment or []):
        return task
    env = [
        e.model_copy(update={"value": refs.output(ctx, Bucket.KIND, e.value.bucket, e.value.as_)})
        if isinstance(e.value, BucketReference)
        else e
        for e in co.environment or []
    ]
    return task.model_copy(
        update={"containerOverrides": co.model_copy(update={"environment": env})}
    )


def _booted(ctx: Context, refs: Refs, tasks: list[PipelineTask]) -> list[PipelineTask]:
    """The tasks with each machine image of the stack they boot put in as its image ID, read
    when the run starts: after the image's build, which the plan puts first."""
    out = []
    for task in tasks:
        image = task.ec2.image if task.ec2 is not None else None
        if isinstance(image, MachineImageReference):
            built = refs.output(ctx, MachineImage.KIND, image.machineImage, "builtImageId")
            task = task.model_copy(update={"ec2": task.ec2.model_copy(update={"image": built})})
        out.append(task)
    return out


class TaskKind(PipelineKind):
    model = Task


KINDS = (PipelineKind(), TaskKind())
