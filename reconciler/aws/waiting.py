"""Waiting for many resources with few calls.

Every thread that waits for a resource registers its name with the kind's StatusPoller; one
describe call (up to 100 names) then answers all of them. Polls back off from `first` to
`ceiling` seconds, so a fast emulator is not kept waiting and a real account is not hammered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from reconciler.errors import RetryableError

Describe = Callable[[list[str]], dict[str, dict[str, Any]]]
BATCH = 100


class StatusPoller:
    def __init__(self, describe: Describe, first: float = 0.2, ceiling: float = 15.0):
        self._describe = describe
        self._first = first
        self._ceiling = ceiling
        self._lock = threading.Lock()
        self._waiting: set[str] = set()
        self._latest: dict[str, dict[str, Any] | None] = {}
        self._polled_at: dict[str, int] = {}  # name -> generation of the last poll that saw it
        self._generation = 0

    def _poll(self) -> None:
        names = sorted(self._waiting)
        seen: dict[str, dict[str, Any]] = {}
        for i in range(0, len(names), BATCH):
            seen.update(self._describe(names[i : i + BATCH]))
        self._generation += 1
        for name in names:
            self._latest[name] = seen.get(name)
            self._polled_at[name] = self._generation

    def wait(
        self,
        name: str,
        done: Callable[[dict[str, Any] | None], bool],
        timeout: float,
        what: str,
    ) -> dict[str, Any] | None:
        """Returns the first description for which `done` holds; raises on timeout."""
        deadline = time.monotonic() + timeout
        delay = self._first
        seen_generation = -1
        with self._lock:
            self._waiting.add(name)
        try:
            while True:
                with self._lock:
                    # Another waiter may have polled for us while we slept: reuse its answer.
                    if self._polled_at.get(name, -1) <= seen_generation:
                        self._poll()
                    seen_generation = self._polled_at[name]
                    latest = self._latest.get(name)
                if done(latest):
                    return latest
                if time.monotonic() + delay > deadline:
                    raise RetryableError(f"timed out after {timeout:.0f}s waiting for {what}")
                time.sleep(delay)
                delay = min(self._ceiling, delay * 1.6)
        finally:
            with self._lock:
                self._waiting.discard(name)
