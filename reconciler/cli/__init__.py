"""The command line: parse, call the engine, render, exit. Nothing here decides anything.

click parses; `main` turns every outcome into an exit code and returns it, so tests and
embedders can call it. It drives click's context itself rather than `Group.main`, which exits
the process for shell completion and broken pipes and turns Ctrl-C into its own Abort.

Exit codes (reconciler/errors.py): 0 success (diff: no changes), 1 error, 2 diff found changes,
64 the command line is wrong, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import Any, NoReturn

import click
from click.shell_completion import shell_complete

from reconciler import __version__
from reconciler.cli.admin import (
    COMPLETE_VAR,
    PROG,
    completion_command,
    iam_policy_command,
    operator_command,
    sandbox_command,
    schema_command,
)
from reconciler.cli.agent import agent_group
from reconciler.cli.get import get_command
from reconciler.cli.help import SectionedGroup
from reconciler.cli.options import DEBUG_KEY, err
from reconciler.cli.plans import (
    apply_command,
    delete_command,
    diff_command,
    unlock_command,
    validate_command,
)
from reconciler.cli.runs import gc_command, logs_command, report_command
from reconciler.cli.transfer import export_command, import_command
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ManifestError,
    ReconcilerError,
)

__all__ = ["main", "reconciler", "run"]

SECTIONS: list[tuple[str, list[click.Command]]] = [
    (
        "Plan and apply",
        [validate_command, diff_command, apply_command, delete_command, get_command],
    ),
    ("Adopt and convert", [export_command, import_command]),
    ("Runs", [logs_command, report_command, gc_command]),
    ("Cluster", [operator_command]),
    ("EC2 tasks", [agent_group]),
    (
        "Tools",
        [sandbox_command, schema_command, iam_policy_command, unlock_command, completion_command],
    ),
]
INTERRUPTED = "interrupted: re-run the same command to converge"


@click.group(
    cls=SectionedGroup,
    name=PROG,
    sections=SECTIONS,
    help="Declarative reconciler for AWS Batch: declare compute environments, queues, job "
    "definitions, tasks and pipelines in YAML, see the plan, converge AWS to it.",
    examples=[
        "reconciler validate -f manifests/examples/           # every problem; no AWS call",
        "reconciler diff -f manifests/examples/ --sandbox     # the plan; changes nothing",
        "reconciler apply -f manifests/examples/ --sandbox    # converge the sandbox to it",
        "reconciler apply --help                              # options and examples",
    ],
    exit_codes=[
        "0    success (diff: no changes)",
        "1    error",
        "2    diff found changes",
        "64   the command line is wrong (unknown command or option, bad value)",
        "130  interrupted: re-run the same command to converge",
    ],
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "max_content_width": 100,
    },
    no_args_is_help=False,  # a missing command is a usage error (64) in every click version
)
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
def reconciler() -> None:
    """Only dispatches: everything happens in the commands."""


def main(argv: list[str] | None = None) -> int:
    """Runs one command line and returns its exit code; never calls sys.exit."""
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:  # the shell asking for completions: click's protocol, answered here
        try:
            return shell_complete(reconciler, {}, PROG, COMPLETE_VAR, instruction)
        except (ValueError, KeyError, IndexError) as exc:  # COMP_* variables set by hand
            err(f"error: shell completion: {type(exc).__name__}: {exc}")
            return EXIT_USAGE
    meta: dict[str, Any] = {}
    try:
        with reconciler.make_context(PROG, list(sys.argv[1:] if argv is None else argv)) as ctx:
            meta = ctx.meta
            return int(reconciler.invoke(ctx) or EXIT_OK)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE  # not click's 2: diff exits 2 for "changes"
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        err(INTERRUPTED)
        return EXIT_INTERRUPTED
    except ManifestError as exc:
        if not exc.problems:
            err("error: no manifests given: use -f FILE|DIR|-")
        for problem in exc.problems:
            err(str(problem))
        if exc.problems:
            err(f"{len(exc.problems)} error(s); nothing was sent to AWS.")
        return exc.exit_code
    except ReconcilerError as exc:
        if meta.get(DEBUG_KEY):
            raise
        err(f"error: {str(exc) or type(exc).__name__}")
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`reconciler get | head`): nothing left to tell it.
        # Point stdout at /dev/null so that flushing it at exit does not fail a second time.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:  # a file or directory the user named cannot be read or written
        if meta.get(DEBUG_KEY):
            raise
        err(f"error: {exc}")
        return EXIT_ERROR


def run() -> NoReturn:
    """The process's entry point (the `reconciler` script and `python -m reconciler`).

    At exit the interpreter collects every object the command made, the validators of the kinds
    it used included, before freeing them anyway: an eighth of `validate`'s wall time (issue #9).
    Freezing them first skips that pass; what is not garbage is still freed by reference counts,
    and atexit handlers and the flush of stdout and stderr still run. Only here, not in `main`,
    which tests and embedders call in processes that go on.
    """
    code = main()
    gc.freeze()
    sys.exit(code)
