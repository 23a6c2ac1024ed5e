"""What the operator remembers per object between handler calls, and when it forgets it.

The operator runs for weeks over thousands of objects: whatever it keeps per object is paid
for by every object for as long as the process lives (issue #9: at most 150 MB with 1,000
objects). So what is only useful for a while goes when that while is over, not when the object
is deleted:
- `KeyedLocks`: one lock per object while a handler holds or waits for it, none otherwise;
- `RecentStatuses`: the status a handler last wrote, for `ttl` seconds (the time its patch may
  take to come back through the watch); older ones are never read, so they are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Callable
from typing import Any


class KeyedLocks:
    """`async with locks.hold(key)`: one holder per key at a time; a key nobody holds or waits
    for has no lock in memory."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # key -> (lock, users)

    def __len__(self) -> int:
        return len(self._locks)

    def __contains__(self, key: object) -> bool:
        """Whether a handler holds or waits for the key's lock now."""
        return key in self._locks

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users > 1:
                self._locks[key] = (lock, users - 1)
            else:
                del self._locks[key]


class RecentStatuses:
    """The status last written per object, kept `ttl` seconds (copies: callers change theirs)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: str, status: dict[str, Any]) -> None:
        now = self._clock()
        self._items.pop(key, None)  # re-inserted last: the dict stays ordered by time
        self._items[key] = (now, copy.deepcopy(status))
        self._expire(now)

    def get(self, key: str) -> dict[str, Any] | None:
        """A copy of the status written less than `ttl` seconds ago, else None."""
        now = self._clock()
        self._expire(now)
        found = self._items.get(key)
        return copy.deepcopy(found[1]) if found is not None else None

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def _expire(self, now: float) -> None:
        while self._items:
            key, (when, _status) = next(iter(self._items.items()))
            if now - when < self.ttl:
                return
            del self._items[key]
