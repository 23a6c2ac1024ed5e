"""The commands around the reconciler rather than a stack: the sandbox, generated files, the IAM
policy, the in-cluster operator and shell completion.

Their dependencies (the sandbox's manager, kopf, boto3, the renderers) are imported when the
command runs, so that the other commands, help and completion do not pay for them.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import get_completion_class

from reconciler.cli import values
from reconciler.cli.help import ExampleCommand
from reconciler.cli.options import (
    OUTPUTS,
    debug_option,
    debugging,
    endpoint_url_option,
    err,
    filename_option,
    load_resources,
    max_rps_option,
    out,
    output_option,
    region_option,
    timeout_option,
)
from reconciler.errors import EXIT_ERROR, EXIT_OK, UsageError

PROG = "reconciler"
COMPLETE_VAR = "_RECONCILER_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@click.command(
    "sandbox",
    short_help="manage the embedded AWS sandbox",
    help="Manage the embedded AWS sandbox: a moto server on a loopback port whose state "
    "survives restarts (finished jobs included). ACTION is status (the default: where it is, "
    "and its settings, such as whether job commands run locally), start, stop, restart (with "
    "the settings this environment sets, even while jobs run), reset, or clock: `clock` "
    "shows the sandbox's time (which fires schedules), `clock advance DURATION` moves it "
    "forward and fires what falls due before it returns.",
    cls=ExampleCommand,
    examples=[
        "reconciler sandbox",
        "reconciler sandbox start",
        "RECONCILER_SANDBOX_RUN_COMMANDS=1 reconciler sandbox restart   # run job commands",
        "reconciler sandbox reset        # the next command starts an empty account",
        "reconciler sandbox clock advance 1h   # fire an hourly schedule now",
    ],
)
@click.argument(
    "action",
    type=click.Choice(["status", "start", "stop", "restart", "reset", "clock"]),
    default="status",
)
@click.argument("clock_words", nargs=-1, metavar="[show | advance DURATION]")
@output_option("status format: text and yaml are YAML, or json")
@debug_option
def sandbox_command(action: str, clock_words: tuple[str, ...], output: str) -> int:
    # render.dump, not render.plans (which imports the engine): half a second of a restart.
    from reconciler.render.dump import dump
    from reconciler.sandbox import manager

    if clock_words and action != "clock":
        raise UsageError(f"sandbox {action} takes no further arguments")
    if action == "clock":
        advance = _clock_words(clock_words)
        state = manager.clock(advance)
        if output != "text":
            out(dump(state, output).rstrip())
            return EXIT_OK
        for fired in state.get("fired") or []:
            out(f"fired {fired['schedule']} at {fired['time']}: {fired['outcome']}")
        if advance is not None and not state.get("fired"):
            out("nothing fell due")
        out(f"sandbox time: {state['now']} (advanced {state['advancedSeconds']:.0f}s)")
    elif action in ("start", "restart"):
        sb = manager.ensure(restart=action == "restart")
        if sb.notice:
            err(sb.notice)
        out(f"sandbox {sb.started} at {sb.endpoint}")
    elif action == "stop":
        out("sandbox stopped" if manager.stop() else "sandbox was not running")
    elif action == "reset":
        manager.reset()
        out("sandbox reset: the next command starts an empty account")
    else:
        out(dump(manager.status(), "yaml" if output == "text" else output).rstrip())
    return EXIT_OK


def _clock_words(words: tuple[str, ...]) -> float | None:
    """`show` (or nothing): None; `advance DURATION`: the seconds."""
    if not words or words == ("show",):
        return None
    if words[0] == "advance" and len(words) == 2:
        try:
            return float(values.Duration().convert(words[1], None, None))
        except click.BadParameter as exc:
            raise UsageError(exc.message) from None
    raise UsageError("expected `sandbox clock`, `sandbox clock show` or `sandbox clock advance 1h`")


@click.command(
    "schema",
    short_help="write the JSON Schemas or CRDs generated from the models",
    help="Write the JSON Schemas (WHAT=json, into schemas/) or the CRDs (WHAT=crds, into "
    "charts/reconciler/crds/) generated from the models, or check that they are current.",
    cls=ExampleCommand,
    examples=[
        "reconciler schema",
        "reconciler schema crds --check",
        "reconciler schema json --dir /tmp/schemas",
    ],
)
@click.argument("what", type=click.Choice(["json", "crds"]), default="json")
@click.option(
    "--dir",
    "directory",
    default=None,
    type=values.SafePath(file_okay=False),
    help="where the files go (default: schemas/ or charts/reconciler/crds/)",
)
@click.option("--check", is_flag=True, help="write nothing; exit 1 if the files are stale")
@output_option("has no effect here", OUTPUTS)
@debug_option
def schema_command(what: str, directory: str | None, check: bool, output: str) -> int:
    from reconciler import crds, schema

    generator = crds if what == "crds" else schema
    where = Path(directory or ("charts/reconciler/crds" if what == "crds" else "schemas"))
    if check:
        stale = generator.stale(where)
        for name in stale:
            err(f"{where / name}: stale; run `reconciler schema {what} --dir {where}`")
        return EXIT_ERROR if stale else EXIT_OK
    for path in generator.write(where):
        out(f"wrote {path}")
    return EXIT_OK


@click.command(
    "iam-policy",
    short_help="print the least-privilege IAM policy the reconciler needs (-f narrows PassRole)",
    help="Print the least-privilege IAM policy the reconciler needs, derived from the calls "
    "the code makes. With -f, iam:PassRole is narrowed to the roles the manifests name. A "
    "managed policy holds at most 6,144 characters: --part N prints the Nth of the policies "
    "the document splits into (the whole fits an inline role policy).",
    cls=ExampleCommand,
    examples=[
        "reconciler iam-policy",
        "reconciler iam-policy -f stack/ --account 123456789012 > policy.json",
        "reconciler iam-policy --part 1 > part1.json; reconciler iam-policy --part 2 > part2.json",
    ],
)
@click.option("--partition", default="aws", help="ARN partition, e.g. aws-cn or aws-us-gov")
@click.option("--account", default="*", help="account ID in the ARNs")
@click.option(
    "--part",
    type=click.IntRange(min=1),
    default=None,
    help="the Nth managed-policy-sized part of the document",
)
@filename_option("manifests whose roles PassRole is narrowed to; repeatable")
@output_option("has no effect here: the policy is JSON", OUTPUTS)
@debug_option
def iam_policy_command(
    partition: str, account: str, part: int | None, filenames: tuple[str, ...], output: str
) -> int:
    from reconciler.aws import policy as iam

    roles = iam.roles_in(load_resources(filenames).resources) if filenames else None
    doc = iam.policy(roles, partition=partition, account=account)
    pieces = iam.parts(doc)
    if part is not None:
        if part > len(pieces):
            raise UsageError(f"--part {part}: the policy has {len(pieces)} part(s)")
        doc = pieces[part - 1]
    elif len(pieces) > 1:
        err(
            f"note: {iam.size(doc):,} characters, more than a managed policy's "
            f"{iam.MANAGED_POLICY_MAX:,}: create it as {len(pieces)} policies with --part 1.."
            f"{len(pieces)}, or attach it whole as an inline role policy"
        )
    print(iam.render(doc), end="")
    return EXIT_OK


@click.command(
    "operator",
    short_help="run the in-cluster operator for reconciler.io resources",
    help="Run the in-cluster operator for reconciler.io resources (the Helm chart runs it). "
    "Give --namespace (repeatable) or --all-namespaces.",
    cls=ExampleCommand,
    examples=[
        "reconciler operator --all-namespaces",
        "reconciler operator -n batch-prod -n 'batch-*' --standalone",
        "reconciler operator -A --liveness http://0.0.0.0:8080/healthz --peering reconciler",
    ],
)
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="serve this namespace (repeatable; globs allowed)",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="serve every namespace")
@click.option(
    "--drift-interval",
    type=values.positive_seconds(),
    metavar="S",
    envvar="RECONCILER_DRIFT_INTERVAL",
    show_envvar=True,
    default=300.0,
    help="seconds between drift checks of each resource",
)
@click.option(
    "--liveness",
    default=None,
    metavar="URL",
    help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
)
@click.option("--peering", default="reconciler", help="KopfPeering/ClusterKopfPeering name")
@click.option("--standalone", is_flag=True, help="no peering (a single replica)")
@click.option("--priority", type=int, default=0, help="peering priority")
@region_option
@endpoint_url_option("any AWS-compatible endpoint; AWS_ENDPOINT_URL works too")
@max_rps_option
@timeout_option
@click.option(
    "--workers",
    type=click.IntRange(1, values.MAX_PARALLELISM),
    default=16,
    help="engine calls running at once",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    envvar="RECONCILER_LOG_LEVEL",
    show_envvar=True,
    default="INFO",
    help="how much the operator logs (--debug means DEBUG)",
)
@output_option("has no effect here: the operator logs", OUTPUTS)
@debug_option
def operator_command(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    drift_interval: float,
    liveness: str | None,
    peering: str,
    standalone: bool,
    priority: int,
    region: str | None,
    endpoint_url: str | None,
    max_rps: float,
    timeout: float,
    workers: int,
    log_level: str,
    output: str,
) -> int:
    if bool(namespaces) == bool(all_namespaces):
        raise UsageError("give --namespace NS (repeatable) or --all-namespaces")
    from reconciler import operator
    from reconciler.aws.clients import AwsConfig

    operator.run(
        list(namespaces),
        all_namespaces,
        drift_interval,
        liveness=liveness,
        peering=peering,
        standalone=standalone,
        priority=priority,
        aws_config=AwsConfig(region=region, endpoint_url=endpoint_url, max_rps=max_rps),
        workers=workers,
        options={"wait_timeout": timeout},
        log_level="DEBUG" if debugging() else log_level,
    )
    return EXIT_OK


@click.command(
    "completion",
    short_help="print the shell completion script for bash, zsh or fish",
    help="Print the shell completion script for SHELL. Completes commands, options, choices "
    f"and paths; the shell calls reconciler back with {COMPLETE_VAR} set.",
    cls=ExampleCommand,
    examples=[
        'eval "$(reconciler completion bash)"             # in ~/.bashrc',
        'eval "$(reconciler completion zsh)"              # in ~/.zshrc',
        "reconciler completion fish > ~/.config/fish/completions/reconciler.fish",
    ],
)
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> int:
    root = click.get_current_context().find_root().command
    complete = get_completion_class(shell)
    assert complete is not None  # every name in SHELLS is one click ships
    print(complete(root, {}, PROG, COMPLETE_VAR).source(), end="")
    return EXIT_OK
