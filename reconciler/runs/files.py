"""File dependencies (BigDataScript's `dep` and `goal`): is a task's work already done?

A task whose outputs all exist and are newer than every one of its inputs is up to date, and
is skipped. One HeadObject per file, only for tasks that declare outputs, when they are about
to start (a run's earlier tasks may just have written their inputs).
"""

from __future__ import annotations

from datetime import datetime

from reconciler.engine.context import Context
from reconciler.errors import NotFoundError, ProviderError


def split_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def modified(ctx: Context, url: str) -> datetime | None:
    """When the object was last written; None if it does not exist."""
    bucket, key = split_url(url)
    try:
        head = ctx.aws.client("s3").head_object(Bucket=bucket, Key=key)
    except NotFoundError:
        return None
    except ProviderError as exc:  # HeadObject has no body: a missing key is a bare 404
        if exc.code in ("404", "NotFound"):
            return None
        raise
    value = head.get("LastModified")
    return value if isinstance(value, datetime) else None


def up_to_date(ctx: Context, inputs: list[str], outputs: list[str]) -> bool:
    if not outputs:
        return False
    made = [modified(ctx, u) for u in outputs]
    if any(m is None for m in made):
        return False
    read = [modified(ctx, u) for u in inputs]
    if any(r is None for r in read):
        return False  # a missing input: let the task run (and say what is missing)
    oldest_output = min(m for m in made if m is not None)
    return all(r <= oldest_output for r in read if r is not None)
