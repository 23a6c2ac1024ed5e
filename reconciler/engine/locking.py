"""Work that writes to a stack holds the stack's lease (aws/lock.py) for its whole length:
planning included, so two applies never plan the same submission. Read-only work (diff, get,
the operator's drift check) takes no lease."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reconciler.aws.lock import StackLock, force_unlock
from reconciler.engine.apply import has_work
from reconciler.engine.context import Context
from reconciler.engine.types import Plan

__all__ = ["force_unlock", "holding_stack", "leased_plan"]


@contextmanager
def holding_stack(ctx: Context, operation: str, timeout: float) -> Iterator[None]:
    lock = StackLock(ctx.aws, ctx.stack, operation)
    lock.acquire(timeout, ctx.log)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def leased_plan(
    ctx: Context, operation: str, timeout: float, make_plan: Callable[[], Plan]
) -> Iterator[Plan]:
    """A plan to carry out under the stack's lease, taken only when there is work: a plan with
    nothing to do (or blocked) is read without writing anything, the lease included. With work,
    the plan is made again once the lease is held, so what it does is what AWS says now."""
    plan = make_plan()
    if plan.blocked or not has_work(plan):
        yield plan
        return
    with holding_stack(ctx, operation, timeout):
        yield make_plan()
