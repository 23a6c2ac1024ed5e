"""`reconciler get`: what the stack owns in AWS, or the live state of declared resources.

As in cli/plans.py, the engine and the renderers are imported by the command that uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.help import ExampleCommand
from reconciler.cli.options import (
    Target,
    debug_option,
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
from reconciler.errors import EXIT_OK, PlanError, UsageError

if TYPE_CHECKING:
    from reconciler.engine.types import Plan

GET_OUTPUT = "text for people (wide: with ARNs and labels); json or yaml for scripts"
GET_OUTPUTS = ("text", "wide", "json", "yaml")


def selected_rows(
    plan: Plan, rows: list[dict[str, Any]], words: tuple[str, ...], labels: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The rows of the declared resources the words and label selectors name; a named one
    that is not declared is an error, as kubectl's `not found`."""
    from reconciler.cli.live import selection
    from reconciler.engine.inventory import not_found

    targets, selector = selection(words, labels)
    if selector:
        rows = [
            r
            for r in rows
            if selector.matches(plan.desired[(r["kind"], r["name"])].metadata.labels)
        ]
    if not targets:
        return rows
    missing = [
        t
        for t in targets
        if t.name and not any(r["kind"] == t.kind and r["name"] == t.name for r in rows)
    ]
    if missing:
        raise PlanError(not_found(missing))
    return [
        r
        for r in rows
        if any(r["kind"] == t.kind and (t.name is None or r["name"] == t.name) for t in targets)
    ]


@click.command(
    "get",
    short_help="what the stack owns in AWS, or the live state of declared resources",
    help="Without -f: what the stack owns, read from AWS by its ownership tags, one table per "
    "kind; `-o yaml|json` prints it as manifests `apply` takes. With -f: the live state of the "
    "declared resources (status, ARNs, revision and drift). KIND[/NAME] and KIND NAME... "
    "select, as kubectl takes them (Kind, plural, singular, short name), and -l selects by "
    "label.",
    cls=ExampleCommand,
    examples=[
        "reconciler get --sandbox                            # everything the stack owns",
        "reconciler get jobqueues -o wide                    # with ARNs",
        "reconciler get jobqueue/main-queue -o yaml          # a manifest apply takes",
        "reconciler get jd leader follower -l team=genomics",
        "reconciler get -f stack/ jobqueue computeenvironment/spot -o yaml",
        "reconciler get -f stack/ pipeline/stress --watch",
    ],
)
@resources_argument("selectors")
@selector_option
@click.option(
    "--watch",
    is_flag=True,
    help="follow the runs of the selected pipelines and tasks to their end",
)
@report_option
@run_timeout_option
@filename_option()
@target_options
@output_option(GET_OUTPUT, GET_OUTPUTS)
@debug_option
def get_command(
    selectors: tuple[str, ...],
    selector: tuple[str, ...],
    watch: bool,
    report_dir: str,
    run_timeout: float,
    filenames: tuple[str, ...],
    target: Target,
    output: str,
) -> int:
    if not filenames:
        if watch:
            raise UsageError("--watch follows the runs of pipelines and tasks: name them with -f")
        from reconciler.cli.live import get_live

        return get_live(selectors, selector, target, output)
    from reconciler.engine.planner import plan_apply
    from reconciler.render import plans as render

    declared = load_resources(filenames)
    ctx = make_context(target, output)
    plan = plan_apply(ctx, declared)
    rows = selected_rows(plan, render.state_rows(plan), selectors, selector)
    if output in ("text", "wide"):
        lines = render.kind_tables(rows, wide=output == "wide") + render.drift_lines(rows)
        for line in lines:
            out(line)
    else:
        out(render.dump(rows, output).rstrip())
    code = EXIT_OK
    if watch:
        code = follow_runs(
            ctx, plan, run_timeout, report_dir, {(r["kind"], r["name"]) for r in rows}
        )
    print_stats(ctx, target)
    return code
