"""The sandbox's extensions to moto: where moto's Batch falls short of AWS, behave like AWS.

`install()` patches moto once per process, before the server handles its first request; the
sandbox server (`reconciler.sandbox.server`) and the tests' moto fixture (tests/conftest.py)
call it. It returns the `Extensions` that own everything the patches keep between requests
(settings, the job scheduler and its thread, its journal, what queues let go of): nothing of
that is a module global. The patches themselves are in
- `reconciler.sandbox.resource_patches`: compute environments and job queues, with
  `compute_checks` (what CreateComputeEnvironment refuses, and what leaves it INVALID);
- `reconciler.sandbox.tagging_patches`: the Resource Groups Tagging API lists Batch resources;
- `reconciler.sandbox.definition_patches`: job definitions asked for as `name:revision`;
- `reconciler.sandbox.job_patches`: the job API, on top of `job_scheduler` (AWS's job states,
  dependencies, arrays, retries, timeouts), `job_runner` (commands run as local processes)
  and `job_journal` / `job_restore` (finished jobs kept as they were across restarts);
- `reconciler.sandbox.durability_patches`: what a replayed recording needs to come back whole
  (S3 multipart uploads, no job running during the replay).
- `reconciler.sandbox.states_patches`: Step Functions' Batch states get AWS's request shape.
- `reconciler.sandbox.image_patches`: DeregisterImage deletes the image's snapshots when asked.
- `reconciler.sandbox.iam_patches`: IAM backends are made only where used (moto made six per
  account to find a request's account), AWS's managed policies parsed once per process.
- `reconciler.sandbox.ec2_patches`: EC2 instances go through `pending`, honour ClientToken,
  have their spot requests, and those launched with the tool's tags run their user data
  (`ec2_host`, `ec2_machine`); launch faults and instance deaths can be injected
  (`ec2_faults`).
Besides the patches, `schedule_firing.ScheduleClock` fires EventBridge Scheduler's schedules,
which moto only stores (the server starts its thread; tests and `reconciler sandbox clock
advance` move it forward through `clock_api`'s route), and
`batch_events.BatchEvents` emits Batch job state change events and delivers them to rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from moto.batch import models as batch_models

from reconciler.sandbox import clock_api
from reconciler.sandbox.batch_events import BatchEvents
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.definition_patches import DefinitionPatches
from reconciler.sandbox.durability_patches import DurabilityPatches
from reconciler.sandbox.ec2_host import InstanceHost
from reconciler.sandbox.ec2_patches import Ec2Patches
from reconciler.sandbox.iam_patches import IamPatches
from reconciler.sandbox.image_patches import ImagePatches
from reconciler.sandbox.job_journal import Journal
from reconciler.sandbox.job_patches import JobPatches
from reconciler.sandbox.job_restore import restore
from reconciler.sandbox.job_runner import LocalRunner
from reconciler.sandbox.job_scheduler import JobScheduler
from reconciler.sandbox.patching import Patcher, owner_of
from reconciler.sandbox.resource_patches import ResourcePatches
from reconciler.sandbox.schedule_firing import ScheduleClock
from reconciler.sandbox.states_patches import StatesPatches
from reconciler.sandbox.tagging_patches import TaggingPatches

# A method every installation replaces: whoever replaced it owns the installation.
_PROBE = (batch_models.BatchBackend, "list_jobs")


@dataclass(eq=False)
class Extensions:
    """What the patched moto of one server process keeps; made by `install()`."""

    config: SandboxConfig
    scheduler: JobScheduler
    resources: ResourcePatches
    jobs: JobPatches
    tagging: TaggingPatches
    definitions: DefinitionPatches
    durability: DurabilityPatches
    clock: ScheduleClock
    states: StatesPatches
    events: BatchEvents
    ec2: InstanceHost
    instances: Ec2Patches
    iam: IamPatches


IAM_MANAGED_POLICIES = "MOTO_IAM_LOAD_MANAGED_POLICIES"


def installed() -> Extensions | None:
    """The extensions moto was patched with in this process, if any."""
    owner = owner_of(*_PROBE)
    return owner if isinstance(owner, Extensions) else None


def install(config: SandboxConfig | None = None) -> Extensions:
    """Patches moto (once: a second call returns the first call's extensions)."""
    current = installed()
    if current is not None:
        return current
    config = config or SandboxConfig()
    # AWS's managed policies exist in every account (a role attaches
    # service-role/AmazonEC2ContainerServiceforEC2Role); moto has them only when asked.
    os.environ.setdefault(IAM_MANAGED_POLICIES, "true")
    journal = Journal.in_directory(config.server_dir)  # none for a test's in-process server
    scheduler = JobScheduler(LocalRunner(config), journal, restore)
    resources, jobs = ResourcePatches(config), JobPatches(config, scheduler)
    clock = ScheduleClock(config)
    clock_api.install(clock)  # `reconciler sandbox clock`: the clock over HTTP
    events = BatchEvents(clock)
    scheduler.listeners.append(events.changed)
    ec2 = InstanceHost(config)
    states = StatesPatches()
    durability = DurabilityPatches(scheduler, clock, states)
    extensions = Extensions(
        config,
        scheduler,
        resources,
        jobs,
        TaggingPatches(),
        DefinitionPatches(),
        durability,
        clock,
        states,
        events,
        ec2,
        Ec2Patches(ec2),
        IamPatches(durability.streams),
    )
    patcher = Patcher(owner=extensions)
    extensions.resources.install(patcher)
    extensions.jobs.install(patcher)
    extensions.tagging.install(patcher)
    extensions.definitions.install(patcher)
    extensions.durability.install(patcher)
    extensions.states.install(patcher)
    extensions.instances.install(patcher)  # after durability: both wrap the replay
    ImagePatches().install(patcher)  # keeps no state
    extensions.iam.install(patcher)
    return extensions
