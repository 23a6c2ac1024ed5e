"""What the command line accepts as values, checked while it is parsed.

A value the tool cannot use is a usage error (exit 64) naming the option (and the environment
variable it came from), before anything is read or any AWS call is made, rather than a failure
half-way through a command or a traceback from deep inside boto3.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any

import click
import click.shell_completion

from reconciler.limits import STACK_MAX, STACK_PATTERN

# botocore's own check of a region name (botocore.utils.validate_region_name).
REGION_PATTERN = r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$"
MAX_PARALLELISM = 256  # threads working on resources at once: beyond that, only contention


class Seconds(click.FloatRange):
    """A number of seconds (or calls a second): within the range, `inf` allowed, never NaN,
    which every comparison, and so click's own range check, lets through."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class Duration(click.ParamType):
    """A length of time: `90s`, `15m`, `1h`, `2d`, or seconds; positive and finite."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        text = str(value).strip().lower()
        unit = self.UNITS.get(text[-1:]) if text else None
        try:
            number = float(text[:-1] if unit else text) * (unit or 1)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number <= 0:
            self.fail(
                f"{str(value)[:40]!r} is not a duration such as 90s, 15m, 1h or 2d", param, ctx
            )
        return number


class SafePath(click.Path):
    """click.Path, whose check of a path raises ValueError (not a usage error) for a NUL in it:
    no shell passes one, but `main([...])` may."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except ValueError as exc:
            self.fail(f"{str(value)[:80]!r}: {exc}", param, ctx)


def resources(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """KIND[/NAME] and KIND NAME... words name known kinds, in a form kubectl takes: checked
    before any AWS call, not after."""
    from reconciler.selectors import parse_targets

    try:
        parse_targets(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def complete_kinds(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of the first word: the kinds' plural names (then `KIND/`)."""
    from click.shell_completion import CompletionItem

    from reconciler.registry import models

    if ctx.params.get(param.name or "") or "/" in incomplete:
        return []  # names: only AWS knows them
    return [CompletionItem(m.PLURAL) for m in models().values() if m.PLURAL.startswith(incomplete)]


def label_selectors(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """`-l` requirements: key=value, key!=value, key, !key, comma-separated."""
    from reconciler.selectors import parse_labels

    try:
        parse_labels(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def positive_seconds() -> Seconds:
    return Seconds(min=0, min_open=True)


def stack_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The stack is recorded in a tag on everything the tool creates, and matched against the
    operator's namespaces and labels: a Kubernetes label value fits both."""
    if not re.match(STACK_PATTERN, value):
        raise click.BadParameter(
            f"{value[:80]!r} is not a stack name: up to {STACK_MAX} letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit",
            ctx,
            param,
        )
    return value


def region_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.match(REGION_PATTERN, value):
        raise click.BadParameter(f"{value[:80]!r} is not an AWS region name", ctx, param)
    return value


def endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An http(s) URL with a host: what botocore would otherwise refuse when making a client."""
    if value is None:
        return None
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise click.BadParameter(f"{value[:80]!r} is not a URL: {exc}", ctx, param) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{value[:80]!r} is not an http:// or https:// URL with a host", ctx, param
        )
    return value


def plan_hash(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A plan hash as `diff` prints it: 16 hex digits."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-9a-f]{16}", value.strip().lower()):
        raise click.BadParameter(f"{value[:40]!r} is not a plan hash (16 hex digits)", ctx, param)
    return value.strip().lower()
