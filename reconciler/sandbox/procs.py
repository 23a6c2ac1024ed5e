"""Waiting for killed processes to be gone.

SIGKILL is delivered when the target next runs: on a busy host a process killed a moment ago
may still be alive, its command line still readable, when the call that killed it returns. A
restore that says a lost host's attempts are gone (or an instance's user data ended) must
return only once they are.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

GONE_WAIT = 5.0  # seconds: far more than a SIGKILL takes even under heavy load
STOP_WAIT = 10.0  # seconds a sandbox server told to stop has to exit before it is killed


def alive(pid: int) -> bool:
    """False once the process has exited (a zombie waiting for its parent has too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[:1]  # the command may hold spaces and brackets
    return state not in (["Z"], ["X"])


def wait_gone(pids: Iterable[int], timeout: float = GONE_WAIT) -> None:
    """Returns once none of the processes is alive, or after `timeout` (they are killed
    already; this only waits for the kernel to finish it)."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = [pid for pid in left if alive(pid)]
