"""Options shared by several commands, and what the commands build from them.

The AWS target options (account, endpoint, engine knobs) arrive in a command as one `Target`,
so that every command reaches AWS the same way and the context is built in one place.

Every command's options are built when the CLI is imported, for `--help` and completion as much
as for `validate`; so this module imports only what declaring them needs. The manifests, the
engine and boto3 are imported by the functions that use them (tests/unit/test_startup.py).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import click

from reconciler import collector
from reconciler.aws.clients import DEFAULT_MAX_RPS  # stdlib only: boto3 comes with `Aws`
from reconciler.cli import values
from reconciler.errors import ManifestError, PlanError

if TYPE_CHECKING:
    from reconciler.engine.context import Context
    from reconciler.manifests.validate import ResourceSet

# markdown is a plan as a pull-request comment: only the verbs that show a plan take it, so
# `get -o markdown` is a usage error (64) like any other value a verb cannot show.
DATA_OUTPUTS = ("text", "json", "yaml")
OUTPUTS = (*DATA_OUTPUTS, "markdown")
DEBUG_KEY = "reconciler.debug"  # in click's ctx.meta, which every nested context shares

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def out(line: str = "") -> None:
    print(line, flush=True)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- options every command has ---------------------------------------------------------------


def output_option(
    help_text: str = "text for people; json or yaml for scripts",
    choices: tuple[str, ...] = DATA_OUTPUTS,
) -> Decorator:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices),
        default="text",
        help=help_text,
    )


def _record_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    # main() reads it once the command has failed, after the command's context is gone.
    ctx.meta[DEBUG_KEY] = value
    return value


debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=_record_debug,
    help="show a traceback instead of a one-line error",
)


def debugging() -> bool:
    return bool(click.get_current_context().meta.get(DEBUG_KEY))


def filename_option(
    help_text: str = "file, directory (recursively) or - for stdin; repeatable",
) -> Decorator:
    return click.option(
        "-f",
        "--filename",
        "filenames",
        multiple=True,
        metavar="PATH",
        type=values.SafePath(allow_dash=True),
        help=help_text,
    )


def resources_argument(name: str = "resources") -> Decorator:
    """KIND, KIND/NAME or KIND NAME...: what get, delete and export name without manifests,
    checked as the command line is parsed (values.resources) and completed in the shell."""
    return click.argument(
        name,
        nargs=-1,
        metavar="[KIND[/NAME]] [NAME]...",
        callback=values.resources,
        shell_complete=values.complete_kinds,
    )


selector_option = click.option(
    "-l",
    "--selector",
    multiple=True,
    metavar="SELECTOR",
    callback=values.label_selectors,
    help="by label: key=value, key!=value, key, !key; comma-separated (AND), repeatable",
)


# -- the AWS target --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how a command talks to AWS, as given on the command line."""

    stack: str
    region: str | None
    profile: str | None
    endpoint_url: str | None
    sandbox: bool
    sandbox_url: str | None
    parallelism: int
    max_rps: float
    timeout: float
    stats: bool


region_option = click.option(
    "--region",
    default=None,
    callback=values.region_name,
    help="AWS region (default: AWS_REGION or the profile's)",
)
max_rps_option = click.option(
    "--max-rps",
    type=values.Seconds(min=0),
    default=DEFAULT_MAX_RPS,
    help="AWS Batch calls per second, reads and writes together (the account allows 50)",
)
timeout_option = click.option(
    "--timeout",
    type=values.positive_seconds(),
    default=1800.0,
    help="seconds to wait for one resource to settle",
)


def endpoint_url_option(help_text: str) -> Decorator:
    return click.option(
        "--endpoint-url", default=None, metavar="URL", callback=values.endpoint, help=help_text
    )


TARGET_OPTIONS: list[Decorator] = [
    click.option(
        "--stack",
        envvar="RECONCILER_STACK",
        show_envvar=True,
        default="default",
        callback=values.stack_name,
        help="ownership scope recorded in tags",
    ),
    region_option,
    click.option(
        "--profile",
        default=None,
        help="named AWS profile (default: AWS_PROFILE or the credentials chain)",
    ),
    endpoint_url_option("any AWS-compatible endpoint; AWS_ENDPOINT_URL works too"),
    click.option(
        "--sandbox", is_flag=True, help="use the embedded AWS sandbox (started on demand)"
    ),
    click.option(
        "--sandbox-url",
        default=None,
        metavar="URL",
        callback=values.endpoint,
        help="use a sandbox server that is already running at URL",
    ),
    click.option(
        "--parallelism",
        type=click.IntRange(1, values.MAX_PARALLELISM),
        default=8,
        help="resources worked on at once",
    ),
    max_rps_option,
    timeout_option,
    click.option("--stats", is_flag=True, help="print API call counts to stderr"),
]
TARGET_FIELDS = [f.name for f in fields(Target)]


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the AWS target options and hands them to the command as one `target`."""

    @functools.wraps(command)
    def with_target(*args: Any, **kwargs: Any) -> Any:
        target = Target(**{name: kwargs.pop(name) for name in TARGET_FIELDS})
        return command(*args, target=target, **kwargs)

    for option in reversed(TARGET_OPTIONS):
        with_target = option(with_target)
    return with_target


# -- run reports -----------------------------------------------------------------------------

report_option = click.option(
    "--report",
    "report_dir",
    default=os.path.join(".reconciler", "runs"),
    metavar="DIR",
    type=values.SafePath(file_okay=False),
    help="where run reports go",
)
run_timeout_option = click.option(
    "--run-timeout",
    type=values.positive_seconds(),
    default=24 * 3600.0,
    help="seconds to follow runs before giving up",
)


# -- what commands build from the options ----------------------------------------------------


def load_resources(filenames: tuple[str, ...], warn: bool = False) -> ResourceSet:
    """The validated manifests; with `warn`, what deserves a second look goes to stderr once
    (validate, diff and apply warn; get and delete, which change no spec, do not repeat it)."""
    if not filenames:
        raise ManifestError([])
    with collector.paused():  # it builds validators: no garbage, see reconciler.collector
        from reconciler import manifests

        declared = manifests.load_resources(list(filenames))
    if not declared.resources:
        raise PlanError("no resources found in " + ", ".join(filenames))
    if warn:
        for problem in declared.warnings:
            err(f"warning: {problem}")
    return declared


def make_context(target: Target, output: str, **options: Any) -> Context:
    """The engine's context for this command; machine-readable output moves progress to stderr."""
    from reconciler.aws.clients import Aws, AwsConfig
    from reconciler.engine.context import Context, Options

    endpoint = target.endpoint_url
    region = target.region
    credentials: Mapping[str, str] = {}
    if target.sandbox or target.sandbox_url:
        from reconciler.sandbox import manager

        region = region or manager.REGION
        credentials = manager.CREDENTIALS
        if target.sandbox_url:
            endpoint = target.sandbox_url
            err(f"Using the AWS sandbox at {endpoint}")
        else:
            sandbox = manager.ensure()
            endpoint = sandbox.endpoint
            err(
                f"Using the embedded AWS sandbox at {endpoint} ({sandbox.started}; state in "
                f"{manager.state_dir()})"
            )
            if sandbox.notice:
                err(sandbox.notice)
    config = AwsConfig(
        region=region,
        profile=target.profile,
        endpoint_url=endpoint,
        max_rps=target.max_rps,
        **credentials,
    )
    opts = Options(
        stack=target.stack,
        parallelism=target.parallelism,
        wait_timeout=target.timeout,
        sandbox=bool(target.sandbox or target.sandbox_url),
        **options,
    )
    log = err if output != "text" else out
    aws = Aws(config)
    _ = aws.region  # no region is an error that says how to set one, before any AWS call
    return Context(aws=aws, options=opts, log=log)


def print_stats(ctx: Context, target: Target) -> None:
    if target.stats:
        stats = ctx.aws.stats
        err(f"API calls: {stats.total} ({stats.writes} writes)")
        for key, n in sorted(stats.calls.items()):
            err(f"  {key}: {n}")
