"""Work that writes to a stack holds the stack's lease (aws/lock.py) for its whole length:
planning included, so two applies never plan the same submission. Read-only work (diff, get,
the operator's drift check) takes no lease."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.aws.lock import StackLock, force_unlock
from reconciler.engine.context import Context

__all__ = ["force_unlock", "holding_stack"]


@contextmanager
def holding_stack(ctx: Context, operation: str, timeout: float) -> Iterator[None]:
    lock = StackLock(ctx.aws, ctx.stack, operation)
    lock.acquire(timeout, ctx.log)
    try:
        yield
    finally:
        lock.release()
