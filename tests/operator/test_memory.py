"""What the operator keeps per object is forgotten once it is no use (operator/memory.py)."""

from __future__ import annotations

import asyncio

from reconciler.operator.memory import KeyedLocks, RecentStatuses


def test_a_lock_exists_only_while_held_or_awaited() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def holder(key: str, name: str, hold: float) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    async def main() -> int:
        first = asyncio.ensure_future(holder("uid-1", "a", 0.05))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(holder("uid-1", "b", 0))
        other = asyncio.ensure_future(holder("uid-2", "c", 0))
        await asyncio.sleep(0.01)
        held = len(locks)
        await asyncio.gather(first, second, other)
        return held

    held = asyncio.run(main())
    assert held == 1  # uid-2's holder is done; uid-1 has a holder and a waiter on one lock
    assert order.index("a out") < order.index("b in")  # one holder of a key at a time
    assert len(locks) == 0


def test_a_lock_is_released_when_its_holder_fails() -> None:
    locks = KeyedLocks()

    async def main() -> None:
        try:
            async with locks.hold("uid-1"):
                raise ValueError("boom")
        except ValueError:
            pass
        async with locks.hold("uid-1"):  # would wait forever if the lock were still held
            pass

    asyncio.run(asyncio.wait_for(main(), 5))
    assert len(locks) == 0


def test_a_written_status_is_kept_for_its_time_then_forgotten() -> None:
    now = [100.0]
    statuses = RecentStatuses(30.0, clock=lambda: now[0])
    status = {"conditions": [{"type": "Ready", "status": "True"}]}
    statuses.put("uid-1", status)
    status["conditions"][0]["status"] = "False"  # the caller's later changes are not kept
    now[0] += 10
    statuses.put("uid-2", {"arn": "x"})
    got = statuses.get("uid-1")
    assert got == {"conditions": [{"type": "Ready", "status": "True"}]}
    assert got is not None
    got["arn"] = "changed"  # nor the reader's
    assert statuses.get("uid-1") == {"conditions": [{"type": "Ready", "status": "True"}]}
    now[0] += 25  # uid-1 written 35 s ago, uid-2 25 s ago
    assert statuses.get("uid-1") is None
    assert statuses.get("uid-2") == {"arn": "x"}
    assert len(statuses) == 1  # the expired one is gone from memory, not only hidden
    now[0] += 10
    statuses.put("uid-3", {})  # writing expires the others too
    assert len(statuses) == 1
    statuses.forget("uid-3")
    assert len(statuses) == 0


def test_malloc_arenas_are_limited_unless_the_environment_says(monkeypatch) -> None:
    import ctypes.util

    from reconciler.operator.runner import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_malloc_arenas(), "the environment's value wins"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = ctypes.util.find_library("c") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    assert limit_malloc_arenas() == bool(glibc)
