"""Driving a run that Batch cannot carry alone: EC2 tasks, and tasks ordered by files.

Batch's `dependsOn` only links Batch jobs, so a run with EC2 tasks (or with tasks that wait for
files, or skip when their outputs are up to date) is driven from here: each step reads the
run's state in batches (one DescribeInstances for its instances, DescribeJobs 100 at a time
for its Batch jobs), prints the output that arrived on the run's queue, and starts every task
whose dependencies are done: launches an EC2 task's instance, submits a Batch task wired with
`dependsOn` to the Batch jobs it waits for. A step never sleeps: it returns `Pending`, so a long
run holds no worker, and the operator (which drops the step between reconciles) converges the
same way by planning again: everything a step decides is recovered from AWS and the run's S3
prefix, so a killed CLI's run is finished by the next apply, and nothing is launched twice
(a launch's ClientToken; the tags every instance carries from its launch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.aws.errors import IAM_DELAYS, iam_propagating
from reconciler.engine.context import Context
from reconciler.engine.types import Pending, Step
from reconciler.errors import ProviderError, RetryableError, RunFailed
from reconciler.models.common import Resource
from reconciler.models.submission import PipelineTask, file_dependencies
from reconciler.runs import ec2_follow, ec2_launch, ec2_state, identity
from reconciler.runs import ec2_scratch as scratch
from reconciler.runs.files import up_to_date
from reconciler.runs.state import FINISHED, describe
from reconciler.runs.submit import Unit, expand, submit_unit

RECEIVE_BATCH = 10  # SQS's most messages per receive
RECEIVE_SECONDS = 2.0  # at most this long per step on output, so launches are not held up
STEP_DELAY = 1.0  # seconds between steps while output flows; the receiver long-polls too
CATCH_UP_SECONDS = 10.0  # how often a re-attached task's S3 copy is read while a gap remains


def driven(tasks: list[PipelineTask]) -> bool:
    """A run this module drives, rather than one SubmitJob wave."""
    return any(t.ec2 is not None or t.inputs or t.outputs for t in tasks)


def run_complete(tasks: list[PipelineTask], jobs: dict[str, dict[str, Any]]) -> bool:
    """Nothing left for a driver: every task ended (or, detached, at least started)."""
    detached = {t.name for t in tasks if t.detached}
    return all(
        (jobs.get(u.key) or {}).get("status") in FINISHED or (u.key in detached and u.key in jobs)
        for u in expand(tasks)
    )


def plan_notes(tasks: list[PipelineTask]) -> list[str]:
    """What the plan says about a driven run before it starts."""
    notes = []
    ec2 = [t for t in tasks if t.ec2 is not None]
    if ec2:
        ec2_launch.LaunchRetries.from_env()  # a bad setting is an error of the plan, not later
        ec2_launch.boot_slack_from_env()
        attached = [t.name for t in ec2 if not t.detached]
        notes.append(
            f"{len(ec2)} task(s) on EC2 instances of their own"
            + (
                f"; apply follows {', '.join(attached)} to the end (Ctrl-C terminates them)"
                if attached
                else ""
            )
        )
    files = file_dependencies(tasks)
    for name, writers in sorted(files.items()):
        notes.append(f"task {name!r} runs after {', '.join(sorted(writers))} (reads their outputs)")
    if any(t.outputs for t in tasks):
        notes.append("tasks whose outputs are newer than their inputs are skipped as up to date")
    return notes


@dataclass
class Launching:
    attempt: int = 0
    iam_waits: int = 0  # launches refused while IAM propagates a new instance profile
    not_before: float = 0.0


@dataclass
class Driver:
    """One run being driven. `jobs` holds what is known of every unit (Batch or EC2)."""

    res: Resource
    run: str
    tasks: list[PipelineTask]
    queue_of: dict[str, str]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    retries: ec2_launch.LaunchRetries = field(default_factory=ec2_launch.LaunchRetries.from_env)
    boot_slack: float = field(default_factory=ec2_launch.boot_slack_from_env)
    log_dir: Path | None = None
    units: list[Unit] = field(init=False)
    by_key: dict[str, Unit] = field(init=False)
    launching: dict[str, Launching] = field(default_factory=dict)
    queue_url: str | None = None
    receiver: Any = None
    caught_up: float = 0.0  # monotonic time of the last catch-up read (re-attached tasks)

    def __post_init__(self) -> None:
        files = file_dependencies(self.tasks)
        self.units = expand(
            [
                t.model_copy(
                    update={"dependsOn": [*(t.dependsOn or []), *_file_deps(files.get(t.name))]}
                )
                if files.get(t.name)
                else t
                for t in self.tasks
            ]
        )
        self.by_key = {u.key: u for u in self.units}

    # -- what is known --------------------------------------------------------------------

    def status(self, key: str) -> str | None:
        return (self.jobs.get(key) or {}).get("status")

    def is_ec2(self, key: str) -> bool:
        unit = self.by_key.get(key)
        return bool(unit and unit.task and unit.task.ec2)

    def detached(self, key: str) -> bool:
        unit = self.by_key.get(key)
        return bool(unit and unit.task and unit.task.detached)

    @property
    def done(self) -> bool:
        return all(
            self.status(u.key) in FINISHED or (self.detached(u.key) and u.key in self.jobs)
            for u in self.units
        )

    def _prefix(self, ctx: Context) -> str:
        return scratch.run_prefix(ctx.stack, self.res.KIND, self.res.name, self.run)

    def _refresh(self, ctx: Context) -> None:
        batch = [
            j["jobId"]
            for k, j in self.jobs.items()
            if not self.is_ec2(k) and j.get("status") not in FINISHED and ":" not in j["jobId"]
        ]
        seen = describe(ctx, batch) if batch else {}
        instances = [
            j["jobId"]
            for k, j in self.jobs.items()
            if self.is_ec2(k) and j.get("status") not in FINISHED and j["jobId"].startswith("i-")
        ]
        found = (
            {i["InstanceId"]: i for i in ec2_state.owned_instances(ctx, [], instances)}
            if instances
            else {}
        )
        for key, job in list(self.jobs.items()):
            if job["jobId"] in seen:
                self.jobs[key] = seen[job["jobId"]]
            elif job["jobId"] in found:
                code = self.receiver.exit_code(key) if self.receiver else None
                instance = found[job["jobId"]]
                state = (instance.get("State") or {}).get("Name")
                if code is None and state in ec2_state.ENDED:
                    # The last messages may still be on their way; the agent's S3 copy is final.
                    self._drain(ctx)
                    if self.receiver and key in self.receiver.waiting():
                        prefix = self._output(ctx, key)
                        self.receiver.resume(key, ec2_follow.read_copy(ctx, prefix, final=True))
                    code = self.receiver.exit_code(key) if self.receiver else None
                    if code is None:
                        code = ec2_state.exit_code(ctx, ec2_state.task_prefix(_tags(instance)))
                self.jobs[key] = ec2_state.instance_job(instance, code)

    def _receive(self) -> None:
        """What arrived: a long poll, then more at once while full batches keep coming."""
        if self.receiver is None:
            return
        until = time.monotonic() + RECEIVE_SECONDS
        got = self.receiver.poll(wait_seconds=1)
        while got == RECEIVE_BATCH and time.monotonic() < until:
            got = self.receiver.poll(wait_seconds=0)

    def _output(self, ctx: Context, key: str) -> str:
        return ec2_state.output_prefix(self._prefix(ctx), key, self.generations.get(key, 0))

    def _resume(self, ctx: Context, keys: list[str]) -> None:
        """Re-attached: each task's receiver starts where the killed CLI's left off."""
        for key in keys:
            if self.receiver is not None:
                job_id = self.jobs[key]["jobId"]
                ec2_follow.resume(ctx, self.receiver, key, self._output(ctx, key), job_id)

    def _catch_up(self, ctx: Context) -> None:
        """Messages wait beyond a gap (the killed CLI took them, the S3 copy lacks them): a
        newer copy, every CATCH_UP_SECONDS, fills it."""
        waiting = self.receiver.waiting(held=True) if self.receiver else []
        if waiting and time.monotonic() - self.caught_up >= CATCH_UP_SECONDS:
            self.caught_up = time.monotonic()
            for key in waiting:
                self.receiver.resume(key, ec2_follow.read_copy(ctx, self._output(ctx, key)))

    def _drain(self, ctx: Context) -> None:
        if self.receiver is None:
            return
        while self.receiver.poll(wait_seconds=0):
            pass

    # -- acting ---------------------------------------------------------------------------

    def step(self, ctx: Context) -> Step:
        followed = [
            k
            for k, j in self.jobs.items()
            if self.is_ec2(k) and not self.detached(k) and j.get("status") not in FINISHED
        ]
        if self.queue_url is None and followed:
            self._open_queue(ctx)  # re-attached to a run a killed CLI left: follow it on
            self._resume(ctx, [k for k in followed if self.jobs[k]["jobId"].startswith("i-")])
        self._refresh(ctx)
        self._receive()
        self._catch_up(ctx)
        self._timeouts(ctx)
        for unit in self.units:
            if unit.key not in self.jobs:
                self._maybe_start(ctx, unit)
        if self.done:
            return self._finish(ctx)
        running = sum(1 for j in self.jobs.values() if j.get("status") not in FINISHED)
        waiting = len(self.units) - len(self.jobs)
        return Pending(
            f"run {self.run}: {running} running, {waiting} waiting",
            self.step,
            STEP_DELAY,
            patience=float("inf"),
        )

    def _maybe_start(self, ctx: Context, unit: Unit) -> None:
        deps = [k for k, _ in unit.depends if k]
        failed = [k for k in deps if self.status(k) == "FAILED"]
        if failed:
            self.jobs[unit.key] = _blocked(unit.key, failed)
            ctx.log(f"  {self.res.name}/{unit.key}: not started: {', '.join(failed)} failed")
            return
        ec2 = unit.task is not None and unit.task.ec2 is not None
        for k in deps:
            if ec2 or self.is_ec2(k) or k not in self.by_key:
                if self.status(k) != "SUCCEEDED":
                    return
            elif k not in self.jobs:  # a Batch dependency is wired once it is submitted
                return
        task = unit.task
        if task is not None and task.outputs and up_to_date(ctx, task.inputs or [], task.outputs):
            scratch.put(ctx, f"{self._prefix(ctx)}{unit.key}/{ec2_state.SKIPPED}", "up to date")
            self.jobs[unit.key] = ec2_state.skipped_job(unit.key)
            ctx.log(f"  {self.res.name}/{unit.key}: up to date, skipped")
            return
        if ec2:
            self._launch(ctx, unit)
        else:
            # Wired only to real Batch jobs: an EC2 task, or a task skipped as up to date, has
            # succeeded already and is no job Batch knows.
            wiring = {
                k: j["jobId"]
                for k, j in self.jobs.items()
                if not self.is_ec2(k) and not j.get("skipped")
            }
            batch_unit = Unit(
                unit.key, unit.task, [(k, t) for k, t in unit.depends if not k or k in wiring]
            )
            job_id = submit_unit(ctx, self.res, self.run, batch_unit, self.queue_of, wiring)
            self.jobs[unit.key] = {"jobId": job_id, "status": "SUBMITTED", "jobName": unit.key}

    def _launch(self, ctx: Context, unit: Unit) -> None:
        from reconciler.agent.userdata import build_user_data

        task = unit.task
        assert task is not None and task.ec2 is not None and task.script is not None
        state = self.launching.setdefault(unit.key, Launching())
        if time.monotonic() < state.not_before:
            return
        prefix = self._prefix(ctx)
        generation = self.generations.get(unit.key, 0)
        output = ec2_state.output_prefix(prefix, unit.key, generation)
        bucket = scratch.ensure_bucket(ctx)
        if self.queue_url is None:
            self._open_queue(ctx)
        timeout = task.timeout.attemptDurationSeconds if task.timeout else None
        user_data = build_user_data(
            script=task.script,
            task=unit.key,
            run=self.run,
            queue_url=str(self.queue_url),
            region=ctx.aws.region,
            s3_prefix=f"s3://{bucket}/{output}",
            keep_alive=task.ec2.keepInstanceAliveAfterFinish,
            timeout_seconds=timeout,
        )
        for key, body in user_data.uploads.items():
            scratch.put(ctx, f"{output}{key}", body)
        tags = {
            **self.res.metadata.labels,
            **(task.tags or {}),
            **identity.run_tags(self.res, ctx.stack, unit.key, self.run),
            ec2_launch.DEADLINE: str(
                int(time.time() + self.boot_slack) + (timeout or 7 * 24 * 3600)
            ),
        }
        if task.detached:
            tags[ec2_state.DETACHED] = "true"
        subnets = ctx.resolver.subnets(task.ec2.subnets or [{"defaultVpc": True}])
        groups = ctx.resolver.security_groups(task.ec2.securityGroupIds or [{"defaultVpc": True}])
        profile = task.ec2.instanceProfile if isinstance(task.ec2.instanceProfile, str) else None
        image = ec2_launch.resolve_image(ctx, task.ec2.image)
        subnet = subnets[state.attempt % len(subnets)] if subnets else None
        tags[ec2_state.GENERATION] = str(generation)
        token = ec2_launch.client_token(
            ctx.stack,
            self.res.KIND,
            self.res.name,
            self.run,
            f"{unit.key}#{generation}",
            state.attempt,
        )
        request = ec2_launch.launch_request(
            task.ec2,
            image_id=image,
            subnet=subnet,
            security_groups=groups,
            profile=profile,
            user_data=user_data.text,
            tags=tags,
            token=token,
        )
        try:
            # Without the SDK's own retries: a capacity error moves to the next attempt (another
            # subnet, another token) here, and anything else retryable is sent again by the
            # next step with the same token, which AWS answers with the same instance.
            reply = ctx.aws.client("ec2", retries=False).run_instances(**request)
            instance = reply["Instances"][0]
        except RetryableError as exc:
            if exc.code in ec2_launch.CAPACITY:
                self._next_attempt(ctx, unit.key, state, subnet, exc)
                return
            state.not_before = time.monotonic() + exc.delay
            ctx.log(f"  {self.res.name}/{unit.key}: {exc}: the launch is sent again")
            return
        except ProviderError as exc:
            if iam_propagating(exc) and state.iam_waits < len(IAM_DELAYS):
                state.not_before = time.monotonic() + IAM_DELAYS[state.iam_waits]
                state.iam_waits += 1  # a profile this apply made, not yet seen by EC2
                ctx.log(f"  {self.res.name}/{unit.key}: waiting for IAM: {exc}")
                return
            if exc.code not in ec2_launch.CAPACITY:
                raise
            self._next_attempt(ctx, unit.key, state, subnet, exc)
            return
        shown = {k: v for k, v in request.items() if k != "UserData"}
        scratch.put_json(
            ctx,
            f"{prefix}{unit.key}/{ec2_state.launch_record(generation)}",
            {"request": shown, "instance": instance},
        )
        ec2_follow.keep_files(self.log_dir, unit.key, task.script, user_data.text, shown, instance)
        self.jobs[unit.key] = ec2_state.instance_job(instance, None)
        ctx.log(f"  {self.res.name}/{unit.key}: launched {instance['InstanceId']} ({subnet})")

    def _next_attempt(
        self, ctx: Context, key: str, state: Launching, subnet: str | None, exc: ProviderError
    ) -> None:
        state.attempt += 1
        if state.attempt >= self.retries.attempts:
            self.jobs[key] = _blocked(key, [], f"no instance after {state.attempt} attempts: {exc}")
            return
        wait = ec2_launch.jitter(self.retries.max_wait)
        state.not_before = time.monotonic() + wait
        ctx.log(f"  {self.res.name}/{key}: {exc.code} in {subnet}: retry in {wait:.0f}s")

    def _open_queue(self, ctx: Context) -> None:
        name = scratch.queue_name(ctx.stack, self.res.KIND, self.res.name, self.run)
        tags = identity.run_tags(self.res, ctx.stack, "", self.run)
        self.queue_url = scratch.ensure_queue(ctx, name, tags)
        if ctx.options.stream_output:
            self.receiver = ec2_follow.open_receiver(
                ctx, self.queue_url, self.log_dir, self.res.name
            )

    def _timeouts(self, ctx: Context) -> None:
        """The agent ends a script at its timeout; an instance that outlives it by the boot
        slack (a hung boot, a dead agent) is terminated here."""
        now = time.time() * 1000
        for key, job in self.jobs.items():
            unit = self.by_key.get(key)
            if not (unit and unit.task and unit.task.ec2 and unit.task.timeout):
                continue
            if job.get("status") in FINISHED or not job["jobId"].startswith("i-"):
                continue
            seconds = unit.task.timeout.attemptDurationSeconds
            if job.get("createdAt") and now - job["createdAt"] > (seconds + self.boot_slack) * 1000:
                ctx.aws.client("ec2").terminate_instances(InstanceIds=[job["jobId"]])
                reason = (
                    f"timed out: no exit code {seconds:g} s (timeout.attemptDurationSeconds) + "
                    f"{self.boot_slack:g} s ({ec2_launch.BOOT_SLACK_ENV}) after launch: "
                    f"instance {job['jobId']} terminated"
                )
                job.update(status="FAILED", statusReason=reason)

    def _finish(self, ctx: Context) -> str:
        self._drain(ctx)
        record = {k: _final(j) for k, j in self.jobs.items() if not self.detached(k)}
        scratch.ensure_bucket(ctx)
        scratch.put_json(ctx, f"{self._prefix(ctx)}{ec2_state.RUN_RECORD}", {"tasks": record})
        # A detached task's agent still sends to the queue: `gc` deletes it once it ended.
        if not any(self.detached(k) for k in self.jobs):
            name = scratch.queue_name(ctx.stack, self.res.KIND, self.res.name, self.run)
            url = self.queue_url or scratch.queue_url(ctx, name)
            if url:
                scratch.delete_queue(ctx, url)
        failed = [
            f"{k}: {j.get('statusReason') or 'failed'}"
            for k, j in self.jobs.items()
            if j.get("status") == "FAILED"
        ]
        if failed:
            raise RunFailed(f"run {self.run}: {'; '.join(failed)}")
        return f"run {self.run}: succeeded"

    def stop(self, ctx: Context, reason: str) -> list[str]:
        """Ctrl-C or a replaced run: terminates this run's attached instances (spot requests
        close with them), stops its Batch jobs, deletes its queue. Returns what was stopped."""
        ids = [
            j["jobId"]
            for k, j in self.jobs.items()
            if self.is_ec2(k)
            and not self.detached(k)
            and j.get("status") not in FINISHED
            and j["jobId"].startswith("i-")
        ]
        if ids:
            # Not failures: recorded as interrupts, so the next apply launches them again.
            for key, job in self.jobs.items():
                if job.get("jobId") in ids:
                    generation = self.generations.get(key, 0)
                    marker = f"{self._prefix(ctx)}{key}/{ec2_state.INTERRUPTED}{generation}"
                    scratch.put(ctx, marker, reason)
            ctx.aws.client("ec2").terminate_instances(InstanceIds=ids)
        jobs = [
            j["jobId"]
            for k, j in self.jobs.items()
            if not self.is_ec2(k) and j.get("status") not in FINISHED and "jobId" in j
        ]
        for job in jobs:
            ctx.aws.client("batch").terminate_job(jobId=job, reason=reason)
        if self.queue_url and not any(self.detached(k) for k in self.jobs):
            scratch.delete_queue(ctx, self.queue_url)
        return ids + jobs


def _file_deps(names: set[str] | None) -> list[Any]:
    from reconciler.models.submission import TaskDependency

    return [TaskDependency(task=n) for n in sorted(names or ())]


def _blocked(key: str, failed: list[str], reason: str | None = None) -> dict[str, Any]:
    return {
        "jobId": f"blocked:{key}",
        "jobName": key,
        "status": "FAILED",
        "statusReason": reason or f"not started: {', '.join(failed)} failed",
    }


def _final(job: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "jobId",
        "jobName",
        "status",
        "statusReason",
        "createdAt",
        "startedAt",
        "stoppedAt",
        "outputPrefix",
    )
    out = {k: job[k] for k in keep if k in job}
    for k in ("attempts", "ec2", "skipped"):
        if k in job:
            out[k] = job[k]
    return out


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags") or []}
