"""Writes that must not happen twice, made safe to retry.

botocore retries a call whose reply was lost (a dropped connection, a timeout, a 5xx): for a
non-idempotent write such as SubmitJob or RegisterJobDefinition, AWS may have carried out the
first attempt, and the retry then makes a second job or an extra revision. These writes are sent
on a client without SDK retries; when the reply is lost, AWS is asked whether the write
happened (`find`) before it is sent again. Throttling means AWS did not act, so it is simply
retried after its delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from reconciler.aws.errors import THROTTLING
from reconciler.backoff import Backoff
from reconciler.errors import RetryableError

T = TypeVar("T")
ATTEMPTS = 6
BACKOFF = Backoff(first=0.5, ceiling=10.0, factor=2.0)


def write_once(
    send: Callable[[], T],
    find: Callable[[], T | None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`send()` at most as often as needed for it to have happened exactly once."""
    delay: float | None = None
    for attempt in range(ATTEMPTS):
        try:
            return send()
        except RetryableError as exc:
            if attempt == ATTEMPTS - 1:
                raise
            delay = BACKOFF.after(delay)
            if exc.code in THROTTLING:  # refused before anything was done
                sleep(max(delay, min(exc.delay, 10.0)))
                continue
            found = find()  # the reply was lost: did AWS do it?
            if found is not None:
                return found
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
