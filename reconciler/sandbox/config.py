"""The sandbox server's settings, taken from its environment variables.

`reconciler.sandbox.moto_ext.install()` creates one `SandboxConfig` when the server starts and
hands it to the patches that need it (`job_patches`, `resource_patches`). A setting is read
when it is used, not when the server starts: a job's timings when the job is submitted, the
relationship lag when a compute environment is deleted. That is what lets a test (whose moto
server runs in the test process for the whole session) change them from one test to the next.
Nothing here imports moto.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

STEP_ENV = "RECONCILER_SANDBOX_STEP_SECONDS"  # seconds a job spends in each state
RUN_ENV = "RECONCILER_SANDBOX_JOB_SECONDS"  # seconds a job (without a local command) runs
COMMANDS_ENV = "RECONCILER_SANDBOX_RUN_COMMANDS"  # "1": run a job's command as a local process
LAG_ENV = "RECONCILER_SANDBOX_RELATIONSHIP_LAG"  # seconds a queue's release of a CE lingers
TIME_SCALE_ENV = "RECONCILER_SANDBOX_TIME_SCALE"  # sandbox seconds per real second (schedules)

DEFAULT_STEP_SECONDS = 0.2
DEFAULT_JOB_SECONDS = 1.0
TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SandboxConfig:
    """Live view of the settings in `environ` (the server's own environment by default)."""

    # Not in the repr: the environment holds credentials.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def _seconds(self, name: str, default: float) -> float:
        try:
            return max(0.0, float(self.environ.get(name, "") or default))
        except ValueError:
            return default

    @property
    def step_seconds(self) -> float:
        return self._seconds(STEP_ENV, DEFAULT_STEP_SECONDS)

    @property
    def job_seconds(self) -> float:
        return self._seconds(RUN_ENV, DEFAULT_JOB_SECONDS)

    @property
    def run_commands(self) -> bool:
        return self.environ.get(COMMANDS_ENV, "").lower() in TRUE

    @property
    def relationship_lag(self) -> float:
        return self._seconds(LAG_ENV, 0.0)

    @property
    def time_scale(self) -> float:
        return max(1.0, self._seconds(TIME_SCALE_ENV, 1.0))
