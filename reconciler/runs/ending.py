"""Ending a pipeline's or task's unfinished runs: what `delete` (and `apply --prune`, and a run
that `concurrencyPolicy: Replace` cancels) stops, planned first, then carried out at once.

Batch jobs are stopped with TerminateJob. An EC2 task's "job" is its instance: an attached one
is terminated (its spot request closes with it); a detached one was asked to outlive the CLI
and is left running (`gc` ends it past its deadline). A run's queue goes in the same delete once
no detached instance of the run still sends to it, rather than being left for `reconciler gc`
(a run whose CLI was killed has nobody else to delete it). The plan names each instance and
queue before anything is ended; finding the queues costs one GetQueueUrl per run with EC2 tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.context import Context
from reconciler.runs import ec2_scratch as scratch
from reconciler.runs.ec2_state import DETACHED
from reconciler.runs.state import FINISHED, RunState


def _instance(job: dict[str, Any]) -> bool:
    return str(job.get("jobId", "")).startswith("i-") and job.get("status") not in FINISHED


def _detached(job: dict[str, Any]) -> bool:
    return (job.get("tags") or {}).get(DETACHED) == "true"


@dataclass
class Ending:
    """What ending these runs does beyond their Batch jobs (read when planning)."""

    instances: dict[str, str] = field(default_factory=dict)  # attached instance -> run/task
    kept: dict[str, str] = field(default_factory=dict)  # detached instance -> run/task
    queues: dict[str, str] = field(default_factory=dict)  # run -> its queue's URL

    def notes(self) -> list[str]:
        out = [f"terminate instance {i} (run/task {t})" for i, t in self.instances.items()]
        out += [
            f"leave instance {i} running (run/task {t} is detached; `gc` ends it past its timeout)"
            for i, t in self.kept.items()
        ]
        out += [f"delete the output queue of run {run}" for run in self.queues]
        return out


def plan(ctx: Context, kind: str, name: str, runs: list[RunState]) -> Ending:
    """The instances and queues of `runs` that ending them ends (and the detached kept)."""
    ending = Ending()
    for run in runs:
        ec2 = {k: j for k, j in run.jobs.items() if _instance(j)}
        for task, job in ec2.items():
            where = ending.kept if _detached(job) else ending.instances
            where[job["jobId"]] = f"{run.run_id}/{task}"
        if ec2 and not any(_detached(j) for j in ec2.values()):
            url = scratch.queue_url(ctx, scratch.queue_name(ctx.stack, kind, name, run.run_id))
            if url:
                ending.queues[run.run_id] = url
    return ending


def stop_jobs(ctx: Context, runs: list[RunState], reason: str, ending: Ending | None = None) -> int:
    """Stops every unfinished job but detached tasks, deletes the queues `ending` names;
    returns how many jobs were stopped.

    TerminateJob, not CancelJob: it cancels jobs that have not started and terminates the
    others, so a job that starts between our read and our call is still stopped.
    """
    batch = ctx.aws.client("batch")
    stopped = 0
    instances = []
    for run in runs:
        for job in run.jobs.values():
            if job.get("status") in FINISHED:
                continue
            if not job["jobId"].startswith("i-"):
                batch.terminate_job(jobId=job["jobId"], reason=reason)
            elif _detached(job):
                continue
            else:  # an EC2 task: its instance
                instances.append(job["jobId"])
            stopped += 1
    for i in range(0, len(instances), 1000):
        ctx.aws.client("ec2").terminate_instances(InstanceIds=instances[i : i + 1000])
    for url in (ending.queues if ending else {}).values():
        scratch.delete_queue(ctx, url)
    return stopped
