"""Killed processes are waited for until they are gone, zombies included (a restore's orphans
are reaped by init, not by the server that killed them)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from reconciler.sandbox import procs


def test_a_killed_process_is_gone_when_wait_gone_returns() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert procs.alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        started = time.monotonic()
        procs.wait_gone([child.pid])
        assert not procs.alive(child.pid)  # a zombie: exited, not yet reaped by its parent
        assert time.monotonic() - started < procs.GONE_WAIT
    finally:
        child.kill()
        child.wait()
    assert not procs.alive(child.pid)  # reaped


def test_wait_gone_gives_up_on_a_process_that_lives_on() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        procs.wait_gone([child.pid], timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 5 and procs.alive(child.pid)
    finally:
        child.kill()
        child.wait()
