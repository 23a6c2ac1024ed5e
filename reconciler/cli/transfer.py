"""Manifests from what exists elsewhere: `export` (live AWS resources, owned or not) and
`import` (another tool's stack file). Both print manifests `apply` takes.

Only the commands are declared here; what they need is imported when they run, so that
`--help` and completion stay light (tests/unit/test_startup.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import values
from reconciler.cli.help import ExampleCommand
from reconciler.cli.options import (
    Target,
    debug_option,
    err,
    resources_argument,
    selector_option,
    target_options,
)
from reconciler.errors import EXIT_OK, UsageError

FORMATS = ("yaml", "json", "text", "wide")


@click.command(
    "export",
    short_help="write manifests of existing resources, owned or not, to adopt them",
    help="Write manifests of existing AWS resources, owned by this stack or not, so that "
    "adopting what was made by hand is one command: export, then `apply --adopt`. Without "
    "KIND/NAME: what this stack owns (--unowned: what no stack owns; --all-stacks: "
    "everything). A named resource is looked for in this stack, then by its AWS name whoever "
    "owns it. What an exported resource uses (a queue's compute environments) is exported "
    "with it, so the output applies on its own. Secret values are never written: a "
    "placeholder stands in, with a warning.",
    cls=ExampleCommand,
    examples=[
        "reconciler export computeenvironments/my-ce > ce.yaml && "
        "reconciler apply -f ce.yaml --adopt",
        "reconciler export --unowned -o text                # what could be adopted",
        "reconciler export jobdefinitions -l team=genomics --all-stacks",
    ],
)
@resources_argument()
@selector_option
@click.option("--all-stacks", is_flag=True, help="every resource, whoever owns it")
@click.option("--unowned", is_flag=True, help="only resources that no stack owns")
@target_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="yaml",
    help="yaml or json manifests; text or wide: a table of what would be exported",
)
@debug_option
def export_command(
    resources: tuple[str, ...],
    selector: tuple[str, ...],
    all_stacks: bool,
    unowned: bool,
    target: Target,
    output: str,
) -> int:
    if all_stacks and unowned:
        raise UsageError("--all-stacks and --unowned exclude each other")
    from reconciler.cli.live import export_live

    scope = "all" if all_stacks else "unowned" if unowned else "stack"
    return export_live(resources, selector, scope, True, target, output)


@click.command(
    "import",
    short_help="convert another tool's stack file (batchbeagle) into manifests",
    help="Convert another tool's stack file into manifests: `beagle` reads a batchbeagle "
    "stack (`beagle -f stack.yml assemble`): its compute environments, queues and job "
    "definitions. Manifests go to stdout, or one file per resource into --output-dir. What "
    "cannot be converted is an error at its line; what batchbeagle itself ignores is left out "
    "with a warning. Makes no AWS call.",
    cls=ExampleCommand,
    examples=[
        "reconciler import beagle stack.yml > stack.yaml && reconciler diff -f stack.yaml",
        "reconciler import beagle stack/prod/service.yml -o manifests/prod/",
    ],
)
@click.argument("source_format", metavar="FORMAT", type=click.Choice(["beagle"]))
@click.argument("stack_file", metavar="STACK_FILE", type=values.SafePath(allow_dash=True))
@click.option(
    "-o",
    "--output-dir",
    default=None,
    metavar="DIR",
    type=values.SafePath(file_okay=False),
    help="write one file per resource into DIR instead of stdout",
)
@debug_option
def import_command(source_format: str, stack_file: str, output_dir: str | None) -> int:
    from reconciler.manifests.beagle import convert
    from reconciler.manifests.writing import dump_manifests

    converted = convert(stack_file)
    for problem in converted.warnings:
        err(f"warning: {problem}")
    if output_dir is None:
        print(dump_manifests(converted.documents, "yaml"), end="")
        return EXIT_OK
    target = Path(output_dir)
    target.mkdir(parents=True, exist_ok=True)
    for doc in converted.documents:
        path = target / f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        path.write_text(dump_manifests([doc], "yaml"))
        err(f"wrote {path}")
    return EXIT_OK
