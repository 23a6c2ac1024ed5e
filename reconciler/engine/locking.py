"""Work that writes to a stack holds the stack's lease (aws/lock.py) for its whole length, and
carries out only a plan made under it or made while no one else held it, so two applies never
carry out the same submission. Read-only work (diff, get, the operator's drift check) takes no
lease."""

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
    nothing to do (or blocked) is read without writing anything, the lease included.

    With work, the lease is taken in one conditional write that succeeds only if no one has held
    it since the plan began: then no other writer of the stack changed anything the plan read,
    and the plan is carried out as it was made, planned once (what terraform and kubectl do,
    lock then plan, minus the lease write of a plan with nothing to do). If someone held it
    since (or holds it), the lease is waited for and the plan made again under it, so what it
    does is what AWS says now. Either way the plan shown and confirmed is the one carried out,
    under the lease from before it is shown until the work ends."""
    lock = StackLock(ctx.aws, ctx.stack, operation)
    started = lock.now()
    plan = make_plan()
    if plan.blocked or not has_work(plan):
        yield plan
        return
    if not lock.take_if_unused_since(started):
        lock.acquire(timeout, ctx.log)
        try:
            plan = make_plan()
        except BaseException:
            lock.release()
            raise
    try:
        yield plan
    finally:
        lock.release()
