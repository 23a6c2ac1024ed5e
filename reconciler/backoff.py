"""One way to wait: exponential backoff, capped, with a deadline.

Every poll in the tool (a compute environment settling, a queue draining, a run being followed,
a log stream being tailed) asks this module for its delays, so a fast emulator is not kept
waiting and a real account is not hammered, and every wait ends with the same kind of error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first: float = 0.2
    ceiling: float = 15.0
    factor: float = 1.6

    def after(self, delay: float | None) -> float:
        """The delay that follows `delay` (None: the first one)."""
        return self.first if delay is None else min(self.ceiling, delay * self.factor)


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    what: str,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Calls `fetch` until `done` holds for its value; RetryableError after `timeout` seconds."""
    deadline = clock() + timeout
    delay: float | None = None
    while True:
        value = fetch()
        if done(value):
            return value
        delay = backoff.after(delay)
        if clock() + delay > deadline:
            raise RetryableError(f"timed out after {timeout:.0f}s waiting for {what}")
        sleep(delay)
