"""The command line: parse, call the engine, render, exit. Nothing here decides anything.

Exit codes: 0 success (diff: no changes), 1 error, 2 diff found changes, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler import __version__, manifests
from reconciler.aws.clients import DEFAULT_MAX_RPS, Aws, AwsConfig
from reconciler.aws.errors import message_of
from reconciler.engine.apply import execute
from reconciler.engine.context import Context, Options
from reconciler.engine.planner import plan_apply, plan_delete
from reconciler.engine.runs import is_run_kind, watch_targets
from reconciler.engine.types import Plan
from reconciler.errors import ManifestError, PlanError, ReconcilerError
from reconciler.manifests.validate import ResourceSet
from reconciler.registry import kind_for
from reconciler.render import markdown
from reconciler.render import plans as render
from reconciler.runs import logs, report, watch

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130


def out(line: str = "") -> None:
    print(line, flush=True)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- wiring ----------------------------------------------------------------------------------


def load_resources(args: argparse.Namespace) -> ResourceSet:
    if not args.filename:
        raise ManifestError([])
    stack = manifests.load_resources(args.filename)
    if not stack.resources:
        raise PlanError("no resources found in " + ", ".join(args.filename))
    return stack


def make_context(args: argparse.Namespace, **options: Any) -> Context:
    endpoint = args.endpoint_url
    region = args.region
    credentials: Mapping[str, str] = {}
    if args.sandbox or args.sandbox_url:
        from reconciler.sandbox import manager

        region = region or manager.REGION
        credentials = manager.CREDENTIALS
        if args.sandbox_url:
            endpoint = args.sandbox_url
            err(f"Using the AWS sandbox at {endpoint}")
        else:
            sandbox = manager.ensure()
            endpoint = sandbox.endpoint
            err(
                f"Using the embedded AWS sandbox at {endpoint} ({sandbox.started}; state in "
                f"{manager.state_dir()})"
            )
    config = AwsConfig(
        region=region,
        profile=args.profile,
        endpoint_url=endpoint,
        max_rps=args.max_rps,
        **credentials,
    )
    opts = Options(
        stack=args.stack,
        parallelism=args.parallelism,
        wait_timeout=args.timeout,
        sandbox=bool(args.sandbox or args.sandbox_url),
        **options,
    )
    log = err if args.output != "text" else out
    return Context(aws=Aws(config), options=opts, log=log)


def print_stats(ctx: Context, args: argparse.Namespace) -> None:
    if args.stats:
        stats = ctx.aws.stats
        err(f"API calls: {stats.total} ({stats.writes} writes)")
        for key, n in sorted(stats.calls.items()):
            err(f"  {key}: {n}")


def show_plan(plan: Plan, args: argparse.Namespace) -> None:
    if args.output == "text":
        for line in render.plan_lines(plan):
            out(line)
    elif args.output == "markdown":
        print(markdown.plan_markdown(plan), end="")
    else:
        out(render.dump(render.plan_data(plan), args.output).rstrip())


def run_plan(ctx: Context, plan: Plan, args: argparse.Namespace) -> int:
    show_plan(plan, args)
    if plan.blocked:
        err(f"error: the plan cannot be applied: {len(plan.blocked)} blocked action(s) above")
        return EXIT_ERROR
    if not plan.has_changes:
        return EXIT_OK
    start = time.monotonic()
    ctx.log("Applying:")
    outcomes = execute(ctx, plan, lambda o: ctx.log(render.outcome_line(o)))
    ctx.log(render.outcome_summary(outcomes, time.monotonic() - start))
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        ctx.log("Re-run the same command to converge once the cause is fixed.")
    return EXIT_ERROR if failed else EXIT_OK


# -- commands --------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    stack = load_resources(args)
    if args.output == "text":
        for res in stack.resources:
            file, line = stack.sources[res.key]
            out(f"{file}:{line}: {res.KIND}/{res.name}: valid")
        out(f"{len(stack.resources)} resources valid.")
    else:
        out(
            render.dump(
                [{"kind": r.KIND, "name": r.name} for r in stack.resources], args.output
            ).rstrip()
        )
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    stack = load_resources(args)
    ctx = make_context(args, prune=args.prune, adopt=args.adopt)
    plan = plan_apply(ctx, stack)
    show_plan(plan, args)
    print_stats(ctx, args)
    if plan.blocked:
        return EXIT_ERROR
    return EXIT_CHANGES if plan.has_changes else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    if args.dry_run:
        return cmd_diff(args)
    stack = load_resources(args)
    ctx = make_context(args, prune=args.prune, adopt=args.adopt)
    plan = plan_apply(ctx, stack)
    code = run_plan(ctx, plan, args)
    if code == EXIT_OK and args.wait:
        code = follow_runs(ctx, plan, args)
    print_stats(ctx, args)
    return code


def follow_runs(
    ctx: Context, plan: Plan, args: argparse.Namespace, selected: set[tuple[str, str]] | None = None
) -> int:
    """Follows the runs of the plan's pipelines to their end; writes each run's report."""
    targets = watch_targets(ctx, plan, selected)
    if not targets:
        return EXIT_OK
    ctx.log("Waiting for runs:")
    try:
        watch.follow(ctx, targets, ctx.log, args.run_timeout)
    except TimeoutError as exc:
        err(f"error: {exc}")
        return EXIT_ERROR
    failed = [line for t in targets for line in watch.failures(ctx, t)]
    for t in targets:
        ctx.log(
            f"{t.subject}: run {t.run_id} {'SUCCEEDED' if t.succeeded else 'FAILED'}; "
            f"report: {write_run_report(ctx, t, args.report)}"
        )
    for line in failed:
        ctx.log(f"  FAILED {line}")
    return EXIT_OK if all(t.succeeded for t in targets) else EXIT_ERROR


def write_run_report(ctx: Context, target: Any, directory: str) -> str:
    data = report.build_report(target.subject, target.run_id, watch.task_jobs(ctx, target))
    _, html_path = report.write_report(
        data, Path(directory) / target.kind.lower() / target.name / target.run_id
    )
    return str(html_path)


def cmd_delete(args: argparse.Namespace) -> int:
    stack = load_resources(args)
    ctx = make_context(args, drain=args.drain, force=args.force, drain_timeout=args.drain_timeout)
    plan = plan_delete(ctx, stack)
    if args.dry_run:
        show_plan(plan, args)
        code = EXIT_ERROR if plan.blocked else EXIT_OK
    else:
        code = run_plan(ctx, plan, args)
    print_stats(ctx, args)
    return code


def _selected(rows: list[dict[str, Any]], selectors: list[str]) -> list[dict[str, Any]]:
    if not selectors:
        return rows
    keep = []
    for sel in selectors:
        kind_text, _, name = sel.partition("/")
        model = kind_for(kind_text)
        if model is None:
            raise PlanError(f"unknown kind {kind_text!r} in {sel!r}")
        keep += [r for r in rows if r["kind"] == model.KIND and (not name or r["name"] == name)]
    return keep


def cmd_get(args: argparse.Namespace) -> int:
    stack = load_resources(args)
    ctx = make_context(args)
    plan = plan_apply(ctx, stack)
    rows = _selected(render.state_rows(plan), args.selectors)
    if args.output == "text":
        for line in render.table(
            rows, ["kind", "name", "awsName", "status", "state", "revision", "sync"]
        ):
            out(line)
        for row in rows:
            for change in row["drift"]:
                out(
                    f"  {row['kind']}/{row['name']}: {change['path']}: {change['old']!r} -> "
                    f"{change['new']!r}"
                )
    else:
        out(render.dump(rows, args.output).rstrip())
    code = EXIT_OK
    if args.watch:
        code = follow_runs(ctx, plan, args, {(r["kind"], r["name"]) for r in rows})
    print_stats(ctx, args)
    return code


def _one_run(args: argparse.Namespace, selector: str) -> tuple[Context, Any, list[str]]:
    """The run a `KIND/NAME[/TASK]` selector names: the spec's run, or `--run`."""
    kind_text, _, rest = selector.partition("/")
    name, _, task = rest.partition("/")
    model = kind_for(kind_text)
    if model is None or not is_run_kind(model.KIND) or not name:
        raise PlanError(f"expected pipeline/NAME or task/NAME, got {selector!r}")
    stack = load_resources(args)
    if stack.get(model.KIND, name) is None:
        raise PlanError(f"{model.KIND}/{name} is not in the manifests given with -f")
    ctx = make_context(args)
    plan = plan_apply(ctx, stack)
    targets = watch_targets(ctx, plan, {(model.KIND, name)}, args.run)
    if not targets:
        raise PlanError(f"{model.KIND}/{name}: no run {args.run or 'for this spec'} in AWS yet")
    watch.poll(ctx, targets)
    return ctx, targets[0], [task] if task else []


def cmd_logs(args: argparse.Namespace) -> int:
    ctx, target, task = _one_run(args, args.selector)
    if not task:
        task = target.tasks[:1] if len(target.tasks) == 1 else []
    if not task or task[0] not in target.jobs:
        raise PlanError(f"name a task: {args.selector}/TASK, one of {', '.join(target.tasks)}")
    job = logs.job_of(ctx, target.jobs[task[0]], args.index)
    printed = 0
    for line in logs.lines(ctx, job, args.follow):
        out(line)
        printed += 1
    if not printed:
        err(
            f"no log events for {job['jobName']} ({job.get('status')}; stream "
            f"{logs.stream_name(job) or 'not created yet'})"
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    ctx, target, _ = _one_run(args, args.selector)
    out(write_run_report(ctx, target, args.report))
    return EXIT_OK


def cmd_operator(args: argparse.Namespace) -> int:
    from reconciler import operator

    if bool(args.namespace) == bool(args.all_namespaces):
        err("error: give --namespace NS (repeatable) or --all-namespaces")
        return EXIT_ERROR
    operator.run(
        args.namespace,
        args.all_namespaces,
        args.drift_interval,
        liveness=args.liveness,
        peering=args.peering,
        standalone=args.standalone,
        priority=args.priority,
        aws_config=AwsConfig(
            region=args.region, endpoint_url=args.endpoint_url, max_rps=args.max_rps
        ),
        workers=args.workers,
        options={"wait_timeout": args.timeout},
        log_level="DEBUG" if args.debug else args.log_level,
    )
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from reconciler.sandbox import manager

    if args.action == "start":
        sb = manager.ensure()
        out(f"sandbox {sb.started} at {sb.endpoint}")
    elif args.action == "stop":
        out("sandbox stopped" if manager.stop() else "sandbox was not running")
    elif args.action == "reset":
        manager.reset()
        out("sandbox reset: the next command starts an empty account")
    else:
        out(
            render.dump(manager.status(), "yaml" if args.output == "text" else args.output).rstrip()
        )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from reconciler import crds, schema

    generator = crds if args.what == "crds" else schema
    directory = Path(args.dir or ("charts/reconciler/crds" if args.what == "crds" else "schemas"))
    if args.check:
        stale = generator.stale(directory)
        for name in stale:
            err(f"{directory / name}: stale; run `reconciler schema {args.what} --dir {directory}`")
        return EXIT_ERROR if stale else EXIT_OK
    for path in generator.write(directory):
        out(f"wrote {path}")
    return EXIT_OK


def cmd_iam_policy(args: argparse.Namespace) -> int:
    from reconciler.aws import policy as iam

    roles = iam.roles_in(load_resources(args).resources) if args.filename else None
    print(iam.render(iam.policy(roles, partition=args.partition, account=args.account)), end="")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, manifests: bool = True, aws: bool = True) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=["text", "json", "yaml", "markdown"],
        default="text",
        help="markdown: the plan as a pull-request comment (plans only)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    if manifests:
        p.add_argument(
            "-f",
            "--filename",
            action="append",
            default=[],
            metavar="PATH",
            help="file, directory (recursively) or - for stdin; repeatable",
        )
    if aws:
        p.add_argument(
            "--stack",
            default=os.environ.get("RECONCILER_STACK", "default"),
            help="ownership scope recorded in tags (default: default)",
        )
        p.add_argument("--region", default=None)
        p.add_argument("--profile", default=None)
        p.add_argument(
            "--endpoint-url",
            default=None,
            help="any AWS-compatible endpoint; AWS_ENDPOINT_URL works too",
        )
        p.add_argument(
            "--sandbox",
            action="store_true",
            help="use the embedded AWS sandbox (started on demand)",
        )
        p.add_argument(
            "--sandbox-url",
            default=None,
            metavar="URL",
            help="use a sandbox server that is already running at URL",
        )
        p.add_argument("--parallelism", type=int, default=8)
        p.add_argument(
            "--max-rps",
            type=float,
            default=DEFAULT_MAX_RPS,
            help="client-side API call budget per second, shared by all work",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=1800.0,
            help="seconds to wait for one resource to settle",
        )
        p.add_argument("--stats", action="store_true", help="print API call counts to stderr")


def _run_options(p: argparse.ArgumentParser, timeout: bool = True) -> None:
    p.add_argument(
        "--report",
        default=os.path.join(".reconciler", "runs"),
        metavar="DIR",
        help="where run reports go (default .reconciler/runs)",
    )
    if timeout:
        p.add_argument(
            "--run-timeout",
            type=float,
            default=24 * 3600.0,
            help="seconds to follow runs before giving up",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler", description="Declarative reconciler for AWS Batch."
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str, **kw: bool
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, **kw)
        p.set_defaults(func=func)
        return p

    add("validate", cmd_validate, "check manifests; no AWS call", aws=False)
    for name, func, text in (
        ("diff", cmd_diff, "show the plan; change nothing (exit 0 no changes, 2 changes, 1 error)"),
        ("apply", cmd_apply, "show the plan, then converge AWS to it"),
    ):
        p = add(name, func, text)
        p.add_argument(
            "--prune",
            action="store_true",
            help="also delete what this stack owns and no longer declares",
        )
        p.add_argument(
            "--adopt",
            action="store_true",
            help="take over same-named resources this stack does not own",
        )
        if name == "apply":
            p.add_argument("--dry-run", action="store_true", help="same as diff")
            p.add_argument(
                "--wait",
                action="store_true",
                help="follow the runs of pipelines and tasks to their end",
            )
            _run_options(p)
    p = add("delete", cmd_delete, "delete what the manifests declare and this stack owns")
    p.add_argument(
        "--drain",
        action="store_true",
        help="let a queue's unfinished jobs finish before deleting it",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="delete queues even if that kills their unfinished jobs",
    )
    p.add_argument("--drain-timeout", type=float, default=3600.0)
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    p = add("get", cmd_get, "live state of declared resources: status, ARNs, revision, drift")
    p.add_argument("selectors", nargs="*", metavar="KIND[/NAME]")
    p.add_argument(
        "--watch",
        action="store_true",
        help="follow the runs of the selected pipelines and tasks to their end",
    )
    _run_options(p)
    p = add("logs", cmd_logs, "print a task's CloudWatch log stream")
    p.add_argument("selector", metavar="pipeline/NAME/TASK")
    p.add_argument("--index", type=int, default=None, help="the array child to show")
    p.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    p.add_argument("--run", default=None, help="a run ID (default: the spec's run)")
    p = add("report", cmd_report, "write a run's report (YAML and HTML) from AWS state")
    p.add_argument("selector", metavar="pipeline/NAME")
    p.add_argument("--run", default=None, help="a run ID (default: the spec's run)")
    _run_options(p, timeout=False)
    p = add(
        "operator",
        cmd_operator,
        "run the in-cluster operator for reconciler.io resources",
        manifests=False,
        aws=False,
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve this namespace (repeatable; globs allowed)",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace")
    p.add_argument(
        "--drift-interval",
        type=float,
        metavar="S",
        default=float(os.environ.get("RECONCILER_DRIFT_INTERVAL") or 300),
        help="seconds between drift checks of each resource",
    )
    p.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument("--peering", default="reconciler", help="KopfPeering/ClusterKopfPeering name")
    p.add_argument("--standalone", action="store_true", help="no peering (a single replica)")
    p.add_argument("--priority", type=int, default=0, help="peering priority")
    p.add_argument("--region", default=None)
    p.add_argument("--endpoint-url", default=None, help="AWS_ENDPOINT_URL works too")
    p.add_argument("--max-rps", type=float, default=DEFAULT_MAX_RPS)
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to wait for one resource to settle"
    )
    p.add_argument("--workers", type=int, default=16, help="engine calls running at once")
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=os.environ.get("RECONCILER_LOG_LEVEL", "INFO"),
    )
    p = add(
        "iam-policy",
        cmd_iam_policy,
        "print the least-privilege IAM policy the reconciler needs (-f narrows PassRole)",
        aws=False,
    )
    p.add_argument("--partition", default="aws")
    p.add_argument("--account", default="*")
    p = add("sandbox", cmd_sandbox, "manage the embedded AWS sandbox", manifests=False, aws=False)
    p.add_argument(
        "action", choices=["status", "start", "stop", "reset"], nargs="?", default="status"
    )
    p = add(
        "schema",
        cmd_schema,
        "write the JSON Schemas or CRDs generated from the models",
        manifests=False,
        aws=False,
    )
    p.add_argument(
        "what",
        nargs="?",
        choices=["json", "crds"],
        default="json",
        help="JSON Schemas (schemas/) or CRDs (charts/reconciler/crds/)",
    )
    p.add_argument("--dir", default=None)
    p.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ManifestError as exc:
        if not exc.problems:
            err("error: no manifests given: use -f FILE|DIR|-")
        for problem in exc.problems:
            err(str(problem))
        if exc.problems:
            err(f"{len(exc.problems)} error(s); nothing was sent to AWS.")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("interrupted: re-run the same command to converge")
        return EXIT_INTERRUPTED
    except ReconcilerError as exc:
        if args.debug:
            raise
        err(f"error: {message_of(exc)}")
        return EXIT_ERROR
