"""A restore's replay holds the schedule clock: moto records nothing while it replays, so a
schedule firing then (an hourly poller crossing the hour during a restart) would submit a job
the next restart never sees again."""

from __future__ import annotations

import threading
from typing import Any

import moto.scheduler.models  # noqa: F401  (imported here, so a tick below is quick)

from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.durability_patches import DurabilityPatches
from reconciler.sandbox.schedule_firing import ScheduleClock
from reconciler.sandbox.states_patches import StatesPatches


class _Scheduler:
    """The job scheduler's pause, recorded (the jobs are not what this test is about)."""

    def __init__(self) -> None:
        self.paused: list[bool] = []

    def pause(self, paused: bool) -> None:
        self.paused.append(paused)


def test_no_tick_runs_while_the_recording_is_replayed() -> None:
    clock = ScheduleClock(SandboxConfig({}))
    scheduler = _Scheduler()
    patches = DurabilityPatches(scheduler, clock, StatesPatches())  # type: ignore[arg-type]
    ticked = threading.Event()

    def tick() -> None:
        clock.tick()
        ticked.set()

    replayed: list[Any] = []

    def replay(recorder: Any, host: str | None) -> None:
        threading.Thread(target=tick, daemon=True).start()
        assert not ticked.wait(1.0), "the clock ticked while the recording was replayed"
        replayed.append(recorder)

    patches._replay = replay  # type: ignore[method-assign]
    recorder = object()
    patches.replay_recording(recorder)
    assert replayed == [recorder]
    assert ticked.wait(10), "the clock ticks again once the replay is done"
    assert scheduler.paused == [True, False] and patches.whole
