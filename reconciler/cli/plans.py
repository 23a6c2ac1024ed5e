"""The commands that read manifests and plan against AWS: validate, diff, apply, delete (get is
in cli/get.py).

The engine, the renderers and the registry are imported inside the commands that use them:
importing this module only declares the commands, so that `--help`, completion and `validate`
do not load boto3 and deepdiff (tests/unit/test_startup.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from reconciler.cli import values
from reconciler.cli.approval import (
    Approval,
    approve,
    colour_wanted,
    no_color_option,
    saved_plan_hash,
    unconfirmable,
    yes_option,
)
from reconciler.cli.help import ExampleCommand
from reconciler.cli.options import (
    OUTPUTS,
    Target,
    debug_option,
    err,
    filename_option,
    load_resources,
    make_context,
    out,
    output_option,
    print_stats,
    report_option,
    resources_argument,
    run_timeout_option,
    selector_option,
    target_options,
)
from reconciler.cli.runs import follow_runs
from reconciler.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, UsageError

if TYPE_CHECKING:
    from reconciler.engine.context import Context
    from reconciler.engine.types import Plan

PLAN_OUTPUT = "text for people; json or yaml for scripts; markdown: a pull-request comment"

lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="seconds to wait for another apply or delete of the stack to finish (0: fail at once)",
)
prune_option = click.option(
    "--prune", is_flag=True, help="also delete what this stack owns and no longer declares"
)
adopt_option = click.option(
    "--adopt", is_flag=True, help="take over same-named resources this stack does not own"
)


def show_plan(plan: Plan, output: str, colour: bool = False, pinnable: bool = True) -> None:
    """The plan; `pinnable` (diff and apply): with the hash that `apply --expect-plan` takes."""
    from reconciler.render import markdown
    from reconciler.render import plans as render

    if output == "text":
        for line in render.plan_lines(plan, colour=colour):
            out(line)
        if plan.has_changes and pinnable:
            digest = render.plan_hash(plan)
            out(f"Plan hash: {digest} (`apply --expect-plan {digest}` applies exactly this plan)")
    elif output == "markdown":
        print(markdown.plan_markdown(plan), end="")
    else:
        out(render.dump(render.plan_data(plan), output).rstrip())


def refusing_early(
    make_plan: Callable[[], Plan], approval: Approval, output: str
) -> Callable[[], Plan]:
    """`make_plan`, whose first plan (made before the stack's lease is taken) is refused at
    once, shown, when no one could confirm it: a destructive plan without a terminal or --yes
    takes no lease and writes nothing."""
    made = 0

    def make() -> Plan:
        nonlocal made
        made += 1
        plan = make_plan()
        if made == 1 and unconfirmable(plan, approval):
            show_plan(plan, output, approval.colour, approval.pinnable)
            approve(plan, approval, log_to_stderr=output != "text")  # raises: says why
        return plan

    return make


def run_plan(
    ctx: Context,
    plan: Plan,
    output: str,
    replan: Callable[[], Plan] | None = None,
    approval: Approval | None = None,
) -> int:
    """Shows the plan, has it approved (approval.py), carries it out."""
    from reconciler.engine.apply import converge, has_work
    from reconciler.render import plans as render

    approval = approval or Approval()
    show_plan(plan, output, approval.colour, approval.pinnable)
    if plan.blocked:
        err(f"error: the plan cannot be applied: {len(plan.blocked)} blocked action(s) above")
        return EXIT_ERROR
    if approval.expected_hash is None and not has_work(plan):
        return EXIT_OK
    approve(plan, approval, log_to_stderr=output != "text")
    if not has_work(plan):
        return EXIT_OK
    start = time.monotonic()
    ctx.log("Applying:")
    _, outcomes = converge(ctx, plan, replan, lambda o: ctx.log(render.outcome_line(o)))
    ctx.log(render.outcome_summary(outcomes, time.monotonic() - start))
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        ctx.log("Re-run the same command to converge once the cause is fixed.")
    return EXIT_ERROR if failed else EXIT_OK


@click.command(
    "validate",
    short_help="check manifests; no AWS call",
    help="Check manifests: every problem at once, as file:line: Kind/name: path: message. "
    "Makes no AWS call.",
    cls=ExampleCommand,
    examples=[
        "reconciler validate -f manifests/examples/",
        "cat stack.yml | reconciler validate -f -",
    ],
)
@filename_option()
@output_option()
@debug_option
def validate_command(filenames: tuple[str, ...], output: str) -> int:
    declared = load_resources(filenames, warn=True)
    if output == "text":
        for res in declared.resources:
            file, line = declared.sources[res.key]
            out(f"{file}:{line}: {res.KIND}/{res.name}: valid")
        out(f"{len(declared.resources)} resources valid.")
    else:  # render.dump, not render.plans: the plan renderers import the engine
        from reconciler.render.dump import dump

        rows = [{"kind": r.KIND, "name": r.name} for r in declared.resources]
        out(dump(rows, output).rstrip())
    return EXIT_OK


def diff(
    filenames: tuple[str, ...],
    target: Target,
    output: str,
    prune: bool,
    adopt: bool,
    colour: bool = False,
) -> int:
    from reconciler.engine.planner import plan_apply

    declared = load_resources(filenames, warn=True)
    ctx = make_context(target, output, prune=prune, adopt=adopt)
    plan = plan_apply(ctx, declared)
    show_plan(plan, output, colour)
    print_stats(ctx, target)
    if plan.blocked:
        return EXIT_ERROR
    return EXIT_CHANGES if plan.has_changes else EXIT_OK


@click.command(
    "diff",
    short_help="show the plan; change nothing (exit 0 no changes, 2 changes, 1 error)",
    help="Show the plan; change nothing. Exits 0 when there are no changes, 2 when there are, "
    "1 on error (a blocked plan too), so CI can tell them apart.",
    cls=ExampleCommand,
    examples=[
        "reconciler diff -f manifests/examples/ --sandbox",
        "reconciler diff -f stack/ --prune -o markdown > plan.md",
    ],
)
@prune_option
@adopt_option
@no_color_option
@filename_option()
@target_options
@output_option(PLAN_OUTPUT, OUTPUTS)
@debug_option
def diff_command(
    prune: bool,
    adopt: bool,
    no_color: bool,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    return diff(filenames, target, output, prune, adopt, colour_wanted(no_color))


@click.command(
    "apply",
    short_help="show the plan, then converge AWS to it",
    help="Show the plan, then converge AWS to it, waiting until each resource is ready. "
    "A failed or interrupted apply converges when the same command is run again.",
    cls=ExampleCommand,
    examples=[
        "reconciler apply -f manifests/examples/ --sandbox",
        "reconciler apply -f stack/ --prune --stack team-a",
        "reconciler apply -f stack/ --wait --report out/runs",
        "reconciler apply -f stack/ --plan plan.json    # saved by diff -o json > plan.json",
    ],
)
@prune_option
@adopt_option
@click.option("--dry-run", is_flag=True, help="show the plan only, as diff does (exit 0)")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="with --dry-run: exit 2 when there are changes, as diff does",
)
@yes_option
@click.option(
    "--expect-plan",
    metavar="HASH",
    default=None,
    callback=values.plan_hash,
    help="apply only if the plan's hash is HASH (as diff showed it); else change nothing",
)
@click.option(
    "--plan",
    "plan_file",
    metavar="FILE",
    default=None,
    type=values.SafePath(dir_okay=False),
    help="apply only if the plan is the one saved in FILE (diff -o json > FILE)",
)
@no_color_option
@lock_timeout_option
@click.option("--wait", is_flag=True, help="follow the runs of pipelines and tasks to their end")
@report_option
@run_timeout_option
@filename_option()
@target_options
@output_option(PLAN_OUTPUT, OUTPUTS)
@debug_option
def apply_command(
    prune: bool,
    adopt: bool,
    dry_run: bool,
    detailed_exitcode: bool,
    yes: bool,
    expect_plan: str | None,
    plan_file: str | None,
    no_color: bool,
    lock_timeout: float,
    wait: bool,
    report_dir: str,
    run_timeout: float,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    if detailed_exitcode and not dry_run:
        raise UsageError("--detailed-exitcode goes with --dry-run (or use diff)")
    if dry_run:
        code = diff(filenames, target, output, prune, adopt, colour_wanted(no_color))
        return code if detailed_exitcode or code != EXIT_CHANGES else EXIT_OK
    if expect_plan and plan_file:
        raise UsageError("give --expect-plan or --plan, not both")
    expected = saved_plan_hash(plan_file) if plan_file else expect_plan
    from reconciler.engine.locking import leased_plan
    from reconciler.engine.planner import plan_apply

    declared = load_resources(filenames, warn=True)
    ctx = make_context(target, output, prune=prune, adopt=adopt)
    approval = Approval(yes=yes, expected_hash=expected, colour=colour_wanted(no_color))
    first = refusing_early(lambda: plan_apply(ctx, declared), approval, output)
    try:
        with leased_plan(ctx, "apply", lock_timeout, first) as plan:
            code = run_plan(ctx, plan, output, lambda: plan_apply(ctx, declared), approval)
        if code == EXIT_OK and wait:
            code = follow_runs(ctx, plan, run_timeout, report_dir)
    finally:  # a refused or failed apply's calls are worth counting too
        print_stats(ctx, target)
    return code


@click.command(
    "delete",
    short_help="delete what the manifests (or KIND/NAME) name and this stack owns",
    help="Delete what the manifests declare, or what KIND/NAME, KIND NAME... or KIND -l "
    "SELECTOR name, and this stack owns; resources of other stacks are left alone. The plan "
    "is shown first. Deleting a queue with unfinished jobs is refused unless --drain or "
    "--force says what to do with them; deleting what another resource still uses is refused "
    "unless --force.",
    cls=ExampleCommand,
    examples=[
        "reconciler delete -f manifests/examples/ --sandbox --dry-run",
        "reconciler delete -f stack/ --drain --drain-timeout 600",
        "reconciler delete jobqueue/main-queue --dry-run",
        "reconciler delete jobdefinitions -l team=genomics",
    ],
)
@resources_argument()
@selector_option
@click.option("--all", "everything", is_flag=True, help="with a KIND: every one the stack owns")
@click.option(
    "--drain", is_flag=True, help="let a queue's unfinished jobs finish before deleting it"
)
@click.option(
    "--force", is_flag=True, help="delete queues even if that kills their unfinished jobs"
)
@click.option(
    "--drain-timeout",
    type=values.Seconds(min=0),
    default=3600.0,
    help="seconds to wait for a drained queue's jobs to finish",
)
@click.option("--dry-run", is_flag=True, help="show the plan only")
@yes_option
@no_color_option
@lock_timeout_option
@filename_option()
@target_options
@output_option(PLAN_OUTPUT, OUTPUTS)
@debug_option
def delete_command(
    resources: tuple[str, ...],
    selector: tuple[str, ...],
    everything: bool,
    drain: bool,
    force: bool,
    drain_timeout: float,
    dry_run: bool,
    yes: bool,
    no_color: bool,
    lock_timeout: float,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    from reconciler.engine.locking import leased_plan
    from reconciler.engine.planner import plan_delete

    if filenames and (resources or selector or everything):
        raise UsageError("name what to delete with -f, or with KIND/NAME and -l, not both")
    make_plan: Callable[[], Plan]
    if filenames:
        declared = load_resources(filenames)
        ctx = make_context(target, output, drain=drain, force=force, drain_timeout=drain_timeout)
        make_plan = lambda: plan_delete(ctx, declared)  # noqa: E731
    else:
        from reconciler.cli.live import delete_targets
        from reconciler.engine.inventory import plan_delete as plan_delete_named

        if not resources:
            load_resources(filenames)  # the usual "no manifests given" error
        targets, labels = delete_targets(resources, selector, everything)
        ctx = make_context(target, output, drain=drain, force=force, drain_timeout=drain_timeout)
        make_plan = lambda: plan_delete_named(ctx, targets, labels)  # noqa: E731
    colour = colour_wanted(no_color)
    if dry_run:
        plan = make_plan()
        show_plan(plan, output, colour, pinnable=False)
        code = EXIT_ERROR if plan.blocked else EXIT_OK
    else:
        approval = Approval(yes=yes, colour=colour, pinnable=False)
        first = refusing_early(make_plan, approval, output)
        try:
            with leased_plan(ctx, "delete", lock_timeout, first) as plan:
                code = run_plan(ctx, plan, output, approval=approval)
        finally:
            print_stats(ctx, target)
        return code
    print_stats(ctx, target)
    return code


@click.command(
    "unlock",
    short_help="free a stack whose apply or delete died holding its lock",
    help="Free the stack's lock, whoever holds it, like `terraform force-unlock`. Only for a "
    "holder that is gone: the lease also ends by itself a minute after its holder stops "
    "renewing it.",
    cls=ExampleCommand,
    examples=["reconciler unlock --force --stack prod --region eu-west-1"],
)
@click.option("--force", is_flag=True, help="required: confirms the holder is really gone")
@target_options
@output_option("has no effect here")
@debug_option
def unlock_command(force: bool, target: Target, output: str) -> int:
    if not force:
        raise UsageError("unlock frees a lock someone may hold: pass --force to confirm")
    from reconciler.engine.locking import force_unlock

    ctx = make_context(target, output)
    holder = force_unlock(ctx.aws, ctx.stack)
    if holder is None:
        out(f"stack {ctx.stack!r} was not locked")
    else:
        out(f"stack {ctx.stack!r} unlocked; it was held by {holder.describe(time.time())}")
    return EXIT_OK
