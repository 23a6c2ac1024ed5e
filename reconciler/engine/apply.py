"""Carrying out a plan: independent actions concurrently (bounded), dependent ones in order.

An action's run returns at once: done, or `Pending` (AWS is still working). Pending checks are
polled from this loop with one backoff (reconciler/backoff.py), never by a sleeping worker
thread, so a 30-minute update holds nothing, checks due together share one describe call, and
Ctrl-C stops at once: the only threads are those making a single AWS call. A failed action
stops only what depends on it; everything else still runs, and the outcome lists what was
done, what failed and what was skipped, so that a re-run converges.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from reconciler.aws.errors import message_of
from reconciler.backoff import Backoff
from reconciler.engine.context import Context
from reconciler.engine.types import Action, Pending, Plan, Step, Verb

BACKOFF = Backoff(first=0.2, ceiling=15.0)


@dataclass
class Outcome:
    action: Action
    status: str  # done | failed | skipped | pending
    detail: str
    seconds: float = 0.0
    retry_after: float = 0.0  # pending: when to look again
    error: BaseException | None = None  # failed: what went wrong (its class says what next)


@dataclass
class _Waiting:
    action: Action
    pending: Pending
    started: float
    delay: float


def _chain_lengths(actions: list[Action], runnable: set[str]) -> dict[str, int]:
    """For each action, the length of the longest chain of actions that wait for it."""
    waiting: dict[str, list[str]] = {a.id: [] for a in actions}
    for a in actions:
        for dep in a.after & runnable:
            waiting.setdefault(dep, []).append(a.id)
    lengths: dict[str, int] = {}

    def length(action_id: str, seen: frozenset[str] = frozenset()) -> int:
        if action_id in lengths:
            return lengths[action_id]
        if action_id in seen:  # a cycle: the executor reports it; any number will do
            return 0
        inner = seen | {action_id}
        value = 1 + max((length(w, inner) for w in waiting.get(action_id, [])), default=0)
        lengths[action_id] = value
        return value

    for a in actions:
        length(a.id)
    return lengths


def _step(ctx: Context, run: Callable[[Context], Step | None]) -> Step:
    return run(ctx) or ""


def execute(
    ctx: Context,
    plan: Plan,
    report: Callable[[Outcome], None] = lambda _o: None,
    follow: bool = True,
) -> list[Outcome]:
    """Runs the plan's actions. With `follow` false (the operator), a pending action is
    reported as such and left for a later reconcile instead of being polled here."""
    todo = {a.id: a for a in plan.actions if a.verb.runs and a.run is not None}
    runnable = set(todo)
    done: set[str] = set()
    stopped: set[str] = set()
    outcomes: list[Outcome] = []
    started: dict[str, float] = {}
    timers: list[tuple[float, int, _Waiting]] = []  # due time, tie-breaker, what
    tie = itertools.count()

    def finish(outcome: Outcome) -> None:
        outcomes.append(outcome)
        (done if outcome.status == "done" else stopped).add(outcome.action.id)
        report(outcome)

    priority = _chain_lengths(plan.actions, runnable)
    # Room for the actions and for the checks of pending work, which are short reads.
    pool = ThreadPoolExecutor(max_workers=max(1, ctx.options.parallelism) + 4)
    running: dict[Future[Step], tuple[Action, _Waiting | None]] = {}
    try:
        while todo or running or timers:
            progressed = True
            while progressed:  # skipping one action may unblock (or skip) another
                progressed = False
                for action_id, action in list(todo.items()):
                    blocked = action.after & runnable & stopped
                    if blocked:
                        del todo[action_id]
                        finish(Outcome(action, "skipped", f"after {', '.join(sorted(blocked))}"))
                        progressed = True
            # The critical path first: of the actions ready to start, those with the longest
            # chain of actions waiting behind them (a queue before 200 independent job
            # definitions), up to the parallelism, so nothing queues up behind the rest.
            ready = [a for a in todo.values() if a.after & runnable <= done]
            ready.sort(key=lambda a: -priority[a.id])
            free = max(1, ctx.options.parallelism) - sum(1 for _, w in running.values() if not w)
            for action in ready[: max(0, free)]:
                del todo[action.id]
                started[action.id] = time.monotonic()
                assert action.run is not None
                running[pool.submit(_step, ctx, action.run)] = (action, None)
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, _, waiting = heapq.heappop(timers)
                future = pool.submit(_step, ctx, waiting.pending.check)
                running[future] = (waiting.action, waiting)
            if not running:
                if timers:
                    time.sleep(max(0.0, timers[0][0] - time.monotonic()))
                    continue
                for action in todo.values():  # a dependency cycle: nothing can start
                    finish(Outcome(action, "skipped", "dependency cycle"))
                break
            timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
            finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                action, was = running.pop(future)
                seconds = time.monotonic() - started[action.id]
                try:
                    result = future.result()
                except Exception as exc:  # every failure is reported, none is fatal to others
                    finish(Outcome(action, "failed", message_of(exc), seconds, error=exc))
                    continue
                if not isinstance(result, Pending):
                    finish(Outcome(action, "done", result, seconds))
                    continue
                if not follow:
                    delay = result.delay or BACKOFF.first
                    finish(Outcome(action, "pending", result.detail, seconds, delay))
                    continue
                patience = result.patience or ctx.options.wait_timeout
                if seconds > patience:
                    finish(
                        Outcome(
                            action,
                            "failed",
                            f"timed out after {patience:.0f}s: {result.detail}",
                            seconds,
                        )
                    )
                    continue
                delay = result.delay or BACKOFF.after(was.delay if was else None)
                waiting = _Waiting(action, result, started[action.id], delay)
                heapq.heappush(timers, (time.monotonic() + delay, next(tie), waiting))
    except KeyboardInterrupt:
        ctx.interrupted()  # what must not outlive the command (a followed run's instances)
        raise
    finally:
        # Never join worker threads on the way out: at most one AWS call each is in flight,
        # and Ctrl-C must stop at once. What was started is converged by a re-run.
        pool.shutdown(wait=False, cancel_futures=True)
    return outcomes


def converge(
    ctx: Context,
    plan: Plan,
    replan: Callable[[], Plan] | None = None,
    report: Callable[[Outcome], None] = lambda _o: None,
    rounds: int = 3,
) -> tuple[Plan, list[Outcome]]:
    """Carries out `plan`, following pending work to its end. A resource that was busy when
    planned was waited for, not changed: once everything has run, plan again (from what AWS
    says now) and carry out what is left, a few rounds at most."""
    outcomes = last = execute(ctx, plan, report)
    for _ in range(rounds):
        waited = [
            o
            for o in last
            if o.status == "done" and o.action.verb is Verb.WAIT and o.action.changes
        ]
        if replan is None or not waited or any(o.status != "done" for o in last):
            break
        plan = replan()
        if plan.blocked or not plan.has_changes:
            break
        last = execute(ctx, plan, report)
        outcomes = outcomes + last
    return plan, outcomes


def has_work(plan: Plan) -> bool:
    """Something to carry out: changes, or busy resources to wait for."""
    return any(a.verb.runs and a.run is not None for a in plan.actions)
