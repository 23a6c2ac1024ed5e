"""The sandbox server's settings, taken from its environment variables.

`reconciler.sandbox.moto_ext.install()` creates one `SandboxConfig` when the server starts and
hands it to the patches that need it (`job_patches`, `resource_patches`). A setting is read
when it is used, not when the server starts: a job's timings when the job is submitted, the
relationship lag when a compute environment is deleted. That is what lets a test (whose moto
server runs in the test process for the whole session) change them from one test to the next.

The user-facing settings (`SETTINGS`) are what `reconciler sandbox status` shows and what the
manager keeps between restarts (`reconciler.sandbox.manager`); the server-only variables
(`ENDPOINT_ENV`, `SERVER_DIR_ENV`) are set by the manager for the server it starts. Nothing
here imports moto.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

STEP_ENV = "RECONCILER_SANDBOX_STEP_SECONDS"  # seconds a job spends in each state
RUN_ENV = "RECONCILER_SANDBOX_JOB_SECONDS"  # seconds a job (without a local command) runs
COMMANDS_ENV = "RECONCILER_SANDBOX_RUN_COMMANDS"  # "1": run a job's command as a local process
LAG_ENV = "RECONCILER_SANDBOX_RELATIONSHIP_LAG"  # seconds a queue's release of a CE lingers
TIME_SCALE_ENV = "RECONCILER_SANDBOX_TIME_SCALE"  # sandbox seconds per real second (schedules)
AWS_CLI_ENV = "RECONCILER_SANDBOX_AWS_CLI"  # "auto" (the real `aws` if any, else ours) | "shim"
PENDING_ENV = "RECONCILER_SANDBOX_INSTANCE_PENDING_SECONDS"  # an EC2 instance's time in pending
USER_DATA_ENV = "RECONCILER_SANDBOX_RUN_USER_DATA"  # "0": tool-tagged instances run nothing
# What the server's environment sets for users, in the order status shows them.
SETTINGS = (
    COMMANDS_ENV,
    STEP_ENV,
    RUN_ENV,
    LAG_ENV,
    AWS_CLI_ENV,
    TIME_SCALE_ENV,
    PENDING_ENV,
    USER_DATA_ENV,
)

# Set by the manager for the server it starts (a test's in-process server has neither):
ENDPOINT_ENV = "RECONCILER_SANDBOX_ENDPOINT"  # the URL jobs reach the sandbox at
SERVER_DIR_ENV = "RECONCILER_SANDBOX_SERVER_DIR"  # where the server keeps its job journal

DEFAULT_STEP_SECONDS = 0.2
DEFAULT_JOB_SECONDS = 1.0
DEFAULT_PENDING_SECONDS = 1.0
AWS_CLI_MODES = ("auto", "shim")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")

# The sandbox's account: every client of the sandbox, its jobs included, uses these.
REGION = "us-east-1"
CREDENTIALS: Mapping[str, str] = MappingProxyType(
    {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
)


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
    def aws_cli(self) -> str:
        """ "shim" puts the sandbox's own `aws` on a job's PATH even where the AWS CLI is
        installed (tests, or a CLI that misbehaves with the sandbox); "auto" only where not."""
        mode = self.environ.get(AWS_CLI_ENV, "").strip().lower()
        return mode if mode in AWS_CLI_MODES else "auto"

    @property
    def endpoint(self) -> str | None:
        return self.environ.get(ENDPOINT_ENV) or None

    @property
    def server_dir(self) -> str | None:
        return self.environ.get(SERVER_DIR_ENV) or None

    def settings(self) -> dict[str, object]:
        """The user-facing settings by the names status shows, parsed as the server uses them."""
        return {
            "runCommands": self.run_commands,
            "stepSeconds": self.step_seconds,
            "jobSeconds": self.job_seconds,
            "relationshipLag": self.relationship_lag,
            "awsCli": self.aws_cli,
            "timeScale": self.time_scale,
            "instancePendingSeconds": self.pending_seconds,
            "runUserData": self.run_user_data,
        }

    @property
    def pending_seconds(self) -> float:
        """How long a launched EC2 instance stays `pending` before it runs (its user data)."""
        return self._seconds(PENDING_ENV, DEFAULT_PENDING_SECONDS)

    @property
    def run_user_data(self) -> bool:
        """Whether an instance launched with the tool's ownership tags runs its user data: on
        unless turned off, since an EC2 task does nothing without it (untagged instances, not
        the tool's, never run anything)."""
        return self.environ.get(USER_DATA_ENV, "").strip().lower() not in FALSE

    @property
    def time_scale(self) -> float:
        return max(1.0, self._seconds(TIME_SCALE_ENV, 1.0))
