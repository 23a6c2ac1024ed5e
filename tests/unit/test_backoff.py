"""The one backoff every poll uses: growing delays, capped, and a deadline."""

from __future__ import annotations

import pytest

from reconciler.backoff import Backoff, poll
from reconciler.errors import RetryableError


def test_delays_grow_to_the_ceiling() -> None:
    b = Backoff(first=1.0, ceiling=4.0, factor=2.0)
    delays, d = [], None
    for _ in range(5):
        d = b.after(d)
        delays.append(d)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_poll_returns_the_first_value_that_is_done() -> None:
    values = iter([1, 2, 3, 4])
    slept: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    got = poll(
        lambda: next(values),
        lambda v: v == 3,
        60,
        "three",
        Backoff(1, 10, 2),
        sleep,
        lambda: now[0],
    )
    assert got == 3 and slept == [1, 2]


def test_poll_gives_up_at_the_deadline_with_a_retryable_error() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(RetryableError, match="timed out after 5s waiting for never"):
        poll(lambda: 0, lambda v: False, 5, "never", Backoff(1, 10, 2), sleep, lambda: now[0])
    assert now[0] <= 5
