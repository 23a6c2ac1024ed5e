"""How the command line helps: Examples sections, commands listed in groups, and the nearest
command suggested for a mistyped one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import click


def write_section(formatter: click.HelpFormatter, title: str, lines: Sequence[str]) -> None:
    """Writes lines as typed: click would rewrap them into a paragraph."""
    with formatter.section(title):
        for line in lines:
            formatter.write(f"{'':>{formatter.current_indent}}{line}\n" if line else "\n")


class ExampleCommand(click.Command):
    """A command whose help ends with the command lines a user would type."""

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.examples = list(examples)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.examples:
            write_section(formatter, "Examples", self.examples)


class SectionedGroup(click.Group):
    """Lists its commands in sections, ends its help with examples and exit codes, and suggests
    the nearest command for a mistyped one (click suggests only options before 8.4)."""

    def __init__(
        self,
        *args: Any,
        sections: Sequence[tuple[str, Sequence[click.Command]]] = (),
        examples: Sequence[str] = (),
        exit_codes: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sections = [(title, [c.name or "" for c in cmds]) for title, cmds in sections]
        self.examples = list(examples)
        self.exit_codes = list(exit_codes)
        for _, commands in sections:
            for command in commands:
                self.add_command(command)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        unknown = self.get_command(ctx, name) is None and not name.startswith("-")
        if unknown and not ctx.resilient_parsing:
            raise click.UsageError(self.no_such_command(ctx, name), ctx)
        return super().resolve_command(ctx, args)

    def no_such_command(self, ctx: click.Context, name: str) -> str:
        matches = difflib.get_close_matches(name, self.list_commands(ctx))
        if not matches:
            return f"No such command {name!r}."
        if len(matches) == 1:
            return f"No such command {name!r}. Did you mean {matches[0]!r}?"
        return f"No such command {name!r}. Did you mean one of {', '.join(map(repr, matches))}?"

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = {name for _, names in self.sections for name in names}
        other = [name for name in self.list_commands(ctx) if name not in listed]
        width = max(map(len, self.commands), default=0)
        limit = formatter.width - 6 - width
        for title, names in [*self.sections, ("Other", other)]:
            rows = [
                (name.ljust(width), command.get_short_help_str(limit))
                for name in names
                if (command := self.commands[name]) and not command.hidden
            ]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.examples:
            write_section(formatter, "Examples", self.examples)
        if self.exit_codes:
            write_section(formatter, "Exit codes", self.exit_codes)
