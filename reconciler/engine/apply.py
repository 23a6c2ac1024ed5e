"""Carrying out a plan: independent actions concurrently (bounded), dependent ones in order.

A failed action stops only what depends on it; everything else still runs, and the outcome
lists what was done, what failed and what was skipped, so that a re-run converges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from reconciler.aws.errors import message_of
from reconciler.engine.context import Context
from reconciler.engine.types import Action, Plan


@dataclass
class Outcome:
    action: Action
    status: str  # done | failed | skipped
    detail: str
    seconds: float = 0.0


def _run(ctx: Context, action: Action) -> tuple[str, float]:
    start = time.monotonic()
    assert action.run is not None
    detail = action.run(ctx) or ""
    return detail, time.monotonic() - start


def execute(
    ctx: Context, plan: Plan, report: Callable[[Outcome], None] = lambda _o: None
) -> list[Outcome]:
    todo = {a.id: a for a in plan.actions if a.verb.writes and a.run is not None}
    writing = set(todo)
    done: set[str] = set()
    stopped: set[str] = set()
    outcomes: list[Outcome] = []

    def finish(outcome: Outcome) -> None:
        outcomes.append(outcome)
        (done if outcome.status == "done" else stopped).add(outcome.action.id)
        report(outcome)

    with ThreadPoolExecutor(max_workers=max(1, ctx.options.parallelism)) as pool:
        running: dict[Future[tuple[str, float]], Action] = {}
        while todo or running:
            progressed = True
            while progressed:  # skipping one action may unblock (or skip) another
                progressed = False
                for action_id, action in list(todo.items()):
                    deps = action.after & writing
                    blocked = deps & stopped
                    if blocked:
                        del todo[action_id]
                        finish(Outcome(action, "skipped", f"after {', '.join(sorted(blocked))}"))
                        progressed = True
                    elif deps <= done:
                        del todo[action_id]
                        running[pool.submit(_run, ctx, action)] = action
            if not running:
                for action in todo.values():  # a dependency cycle: nothing can start
                    finish(Outcome(action, "skipped", "dependency cycle"))
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                action = running.pop(future)
                try:
                    detail, seconds = future.result()
                    finish(Outcome(action, "done", detail, seconds))
                except Exception as exc:  # every failure is reported, none is fatal to others
                    finish(Outcome(action, "failed", message_of(exc)))
    return outcomes
