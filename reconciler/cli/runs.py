"""Pipeline and task runs: following them to their end, their logs, their reports.

`apply --wait` and `get --watch` follow runs through `follow_runs`; `logs` and `report` look at
one run named on the command line. The engine and `reconciler.runs` (boto3, the report's
renderer) are imported by the functions that use them, as in cli/plans.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.help import ExampleCommand
from reconciler.cli.options import (
    Target,
    debug_option,
    err,
    filename_option,
    load_resources,
    make_context,
    out,
    output_option,
    report_option,
    target_options,
)
from reconciler.errors import EXIT_ERROR, EXIT_OK, PlanError

if TYPE_CHECKING:
    from reconciler.engine.context import Context
    from reconciler.engine.types import Plan
    from reconciler.runs.watch import Watched

run_option = click.option("--run", default=None, help="a run ID (default: the spec's run)")


def follow_runs(
    ctx: Context,
    plan: Plan,
    run_timeout: float,
    report_dir: str,
    selected: set[tuple[str, str]] | None = None,
) -> int:
    """Follows the runs of the plan's pipelines to their end; writes each run's report."""
    from reconciler.engine.runs import watch_targets
    from reconciler.runs import watch

    targets = watch_targets(ctx, plan, selected)
    if not targets:
        return EXIT_OK
    ctx.log("Waiting for runs:")
    try:
        watch.follow(ctx, targets, ctx.log, run_timeout)
    except TimeoutError as exc:
        err(f"error: {exc}")
        return EXIT_ERROR
    failed = [line for t in targets for line in watch.failures(ctx, t)]
    for t in targets:
        ctx.log(
            f"{t.subject}: run {t.run_id} {'SUCCEEDED' if t.succeeded else 'FAILED'}; "
            f"report: {write_run_report(ctx, t, report_dir)}"
        )
    for line in failed:
        ctx.log(f"  FAILED {line}")
    return EXIT_OK if all(t.succeeded for t in targets) else EXIT_ERROR


def write_run_report(ctx: Context, target: Watched, directory: str) -> str:
    from reconciler.runs import report, watch

    data = report.build_report(target.subject, target.run_id, watch.task_jobs(ctx, target))
    _, html_path = report.write_report(
        data, Path(directory) / target.kind.lower() / target.name / target.run_id
    )
    return str(html_path)


def one_run(
    selector: str,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
    run: str | None,
) -> tuple[Context, Watched, list[str]]:
    """The run a `KIND/NAME[/TASK]` selector names: the spec's run, or `--run`."""
    from reconciler.engine.planner import plan_apply
    from reconciler.engine.runs import is_run_kind, watch_targets
    from reconciler.registry import kind_for
    from reconciler.runs import watch

    kind_text, _, rest = selector.partition("/")
    name, _, task = rest.partition("/")
    model = kind_for(kind_text)
    if model is None or not is_run_kind(model.KIND) or not name:
        raise PlanError(f"expected pipeline/NAME or task/NAME, got {selector!r}")
    declared = load_resources(filenames)
    if declared.get(model.KIND, name) is None:
        raise PlanError(f"{model.KIND}/{name} is not in the manifests given with -f")
    ctx = make_context(target, output)
    plan = plan_apply(ctx, declared)
    targets = watch_targets(ctx, plan, {(model.KIND, name)}, run)
    if not targets:
        raise PlanError(f"{model.KIND}/{name}: no run {run or 'for this spec'} in AWS yet")
    watch.poll(ctx, targets)
    return ctx, targets[0], [task] if task else []


@click.command(
    "logs",
    short_help="print a task's CloudWatch log stream",
    help="Print a task's CloudWatch log stream, for the spec's run or the run given with --run. "
    "TASK may be left out when the run has a single task; an array task needs --index.",
    cls=ExampleCommand,
    examples=[
        "reconciler logs -f stack/ pipeline/stress/leader",
        "reconciler logs -f stack/ pipeline/stress/follower --index 3 --follow",
        "reconciler logs -f stack/ task/backfill --run 3f9c2e1a",
    ],
)
@click.argument("selector", metavar="pipeline/NAME/TASK")
@click.option("--index", type=click.IntRange(min=0), default=None, help="the array child to show")
@click.option("--follow", is_flag=True, help="keep printing until the job ends")
@run_option
@filename_option()
@target_options
@output_option()
@debug_option
def logs_command(
    selector: str,
    index: int | None,
    follow: bool,
    run: str | None,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    from reconciler.runs import logs

    ctx, watched, task = one_run(selector, filenames, target, output, run)
    if not task:
        task = watched.tasks[:1] if len(watched.tasks) == 1 else []
    if not task or task[0] not in watched.jobs:
        raise PlanError(f"name a task: {selector}/TASK, one of {', '.join(watched.tasks)}")
    found = watched.jobs[task[0]]
    if found.get("outputPrefix"):  # an EC2 task: its agent's copy in S3
        for line in logs.ec2_lines(ctx, found["outputPrefix"], follow):
            out(line)
        return EXIT_OK
    job = logs.job_of(ctx, found, index)
    printed = 0
    for line in logs.lines(ctx, job, follow):
        out(line)
        printed += 1
    if not printed:
        err(
            f"no log events for {job['jobName']} ({job.get('status')}; stream "
            f"{logs.stream_name(job) or 'not created yet'})"
        )
    return EXIT_OK


@click.command(
    "report",
    short_help="write a run's report (YAML and HTML) from AWS state",
    help="Write a run's report (YAML and HTML) from AWS state, for runs started elsewhere or "
    "before; prints the HTML file's path.",
    cls=ExampleCommand,
    examples=[
        "reconciler report -f stack/ pipeline/stress",
        "reconciler report -f stack/ pipeline/stress --run 3f9c2e1a --report out/",
    ],
)
@click.argument("selector", metavar="pipeline/NAME")
@run_option
@report_option
@filename_option()
@target_options
@output_option()
@debug_option
def report_command(
    selector: str,
    run: str | None,
    report_dir: str,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    ctx, watched, _ = one_run(selector, filenames, target, output, run)
    out(write_run_report(ctx, watched, report_dir))
    return EXIT_OK


@click.command(
    "gc",
    short_help="end what interrupted runs left: instances, spot requests, queues",
    help="Find, by their tags, what runs of the stack left when their apply was killed: "
    "instances of attached EC2 tasks (no one follows them), detached ones past their timeout, "
    "open spot requests without an instance, run queues with no instance left; and end them. "
    "Holds the stack's lease, so no apply is driving a run meanwhile. Run output in S3 stays "
    "(`reconciler logs`) and expires by the scratch bucket's lifecycle rule. With -f, the "
    "stack's manifests: machine images (and their snapshots) of MachineImages they no longer "
    "declare are deregistered too, except images still in use.",
    cls=ExampleCommand,
    examples=[
        "reconciler gc --dry-run",
        "reconciler gc --stack prod --region eu-west-1",
        "reconciler gc -f manifests/ --dry-run",
    ],
)
@click.option("--dry-run", is_flag=True, help="list what would be ended, end nothing")
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="seconds to wait for the stack's lease",
)
@filename_option(
    "the stack's manifests: also delete machine images of MachineImages they no longer declare"
)
@target_options
@output_option("has no effect here")
@debug_option
def gc_command(
    dry_run: bool, lock_timeout: float, filenames: tuple[str, ...], target: Target, output: str
) -> int:
    from reconciler.engine.locking import holding_stack
    from reconciler.runs import gc

    declared = load_resources(filenames) if filenames else None
    ctx = make_context(target, output)
    with holding_stack(ctx, "gc", lock_timeout):
        leftovers = gc.find(ctx)
        for x in leftovers:
            out(f"{'would end' if dry_run else 'end'} {x.what} {x.id}: {x.why}")
        plan = _undeclared(ctx, declared) if declared is not None else None
        verb = "would delete" if dry_run else "delete"
        for action in plan.actions if plan else []:
            out(f"{verb} {action.kind}/{action.name}: {action.summary}")
        if not leftovers and not (plan and plan.actions):
            out(f"nothing left behind by runs of stack {ctx.stack!r}")
        if dry_run:
            return EXIT_OK
        gc.remove(ctx, leftovers)
        if plan and plan.actions:
            from reconciler.engine.apply import execute

            failed = [o for o in execute(ctx, plan) if o.status != "done"]
            for o in failed:
                out(f"{o.action.kind}/{o.action.name}: {o.status}: {o.detail}")
            return EXIT_ERROR if failed else EXIT_OK
    return EXIT_OK


def _undeclared(ctx: Context, declared: Any) -> Plan:
    """Deletes of the stack's resources that the manifests no longer declare, of the kinds
    whose leftovers bill on (`collected_when_undeclared`): what `apply --prune` would delete
    of them, planned by the kind as any delete is."""
    from reconciler.engine.planner import action_of
    from reconciler.engine.types import Plan, Verb
    from reconciler.registry import kinds

    plan = Plan(ctx.stack, ctx.aws.region)
    for kind in kinds().values():
        if not kind.collected_when_undeclared:
            continue
        names = {r.name for r in declared.of_kind(kind.name)}
        for live in kind.observe(ctx, [], True):
            if live.owner is None or live.owner.stack != ctx.stack:
                continue
            if any(kind.matches_name(live, name) for name in names):
                continue
            work = kind.delete(ctx, live, "no manifest declares it")
            plan.add(action_of(kind.name, live.aws_name, Verb.DELETE, work, aws_name=live.aws_name))
    return plan
