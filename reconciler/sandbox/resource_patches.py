"""Compute environments and job queues on the sandbox: moto's calls, patched to behave like AWS.

`reconciler.sandbox.moto_ext.install()` creates one `ResourcePatches` per server and installs
it; each patched moto method calls the matching method here. Each patch mirrors a documented
AWS behaviour that the reconciler depends on, so that the sandbox (and the integration tests,
which run the same extended moto over HTTP) exercise the real code paths:
- UpdateComputeEnvironment applies computeResources, updatePolicy and unmanagedvCpus (moto
  drops them, which would show as perpetual drift).
- CreateComputeEnvironment without serviceRole uses the Batch service-linked role (AWS's
  behaviour; moto refuses) and keeps unmanagedvCpus.
- DeleteComputeEnvironment refuses an ENABLED environment and one still used by a queue, with
  AWS's own "Cannot delete, found existing JobQueue relationship" error; with
  RECONCILER_SANDBOX_RELATIONSHIP_LAG seconds set, the relationship lingers after a queue is
  re-pointed, as Batch's eventual consistency does.
- DeleteJobQueue refuses an ENABLED queue.
- A compute environment can be told to be INVALID (instance tag INVALID_TAG), as AWS
  reports one it cannot build.
Each place that departs from plain moto says so in a comment starting "AWS:".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.batch import models as batch_models
from moto.batch import responses as batch_responses
from moto.batch.exceptions import ClientException

from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.seed import SERVICE_LINKED_ROLE_NAME, SERVICE_LINKED_ROLE_PATH

# An environment whose instance tags carry this key is described as INVALID, with the value as
# its statusReason: how demos and tests see the reconciler fail the way AWS makes it fail.
INVALID_TAG = "reconciler.io/sandbox-invalid"

BatchBackend = batch_models.BatchBackend
BatchResponse = batch_responses.BatchResponse


def service_linked_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role{SERVICE_LINKED_ROLE_PATH}{SERVICE_LINKED_ROLE_NAME}"


class ResourcePatches:
    """moto's compute environment and job queue calls for one server, and what they remember."""

    _describe_ce: Callable[..., Any]  # moto's originals, set by install()
    _delete_ce: Callable[..., Any]
    _update_jq: Callable[..., Any]
    _delete_jq: Callable[..., Any]

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._released: dict[str, float] = {}  # environment ARN -> when a queue let go of it

    def install(self, patcher: Patcher) -> None:
        patcher.replace(BatchResponse, "createcomputeenvironment", self.create_ce)
        patcher.replace(BatchResponse, "updatecomputeenvironment", self.update_ce)
        backend, describe = BatchBackend, "describe_compute_environments"
        self._describe_ce = patcher.replace(backend, describe, self.describe_ce)
        self._delete_ce = patcher.replace(backend, "delete_compute_environment", self.delete_ce)
        self._update_jq = patcher.replace(backend, "update_job_queue", self.update_jq)
        self._delete_jq = patcher.replace(backend, "delete_job_queue", self.delete_jq)

    def _release(self, arn: str) -> None:
        with self._lock:
            self._released[arn] = time.monotonic()

    def _lingers(self, arn: str) -> bool:
        """A queue let go of the environment less than the relationship lag ago."""
        with self._lock:
            released = self._released.get(arn, float("-inf"))
        return time.monotonic() - released < self.config.relationship_lag

    # --- compute environments ---------------------------------------------------------------

    def create_ce(self, response: Any) -> str:
        backend = response.batch_backend
        # AWS: without serviceRole, Batch uses its service-linked role (moto refuses).
        service_role = response._get_param("serviceRole") or service_linked_arn(backend.account_id)
        env = backend.create_compute_environment(
            compute_environment_name=response._get_param("computeEnvironmentName"),
            _type=response._get_param("type"),
            state=response._get_param("state") or "ENABLED",
            compute_resources=response._get_param("computeResources"),
            service_role=service_role,
            tags=response._get_param("tags"),
        )
        env.unmanaged_vcpus = response._get_param("unmanagedvCpus")  # AWS: kept (moto drops it)
        return json.dumps({"computeEnvironmentArn": env.arn, "computeEnvironmentName": env.name})

    def update_ce(self, response: Any) -> str:
        backend = response.batch_backend
        name, arn = backend.update_compute_environment(
            compute_environment_name=response._get_param("computeEnvironment"),
            compute_resources=None,
            service_role=response._get_param("serviceRole"),
            state=response._get_param("state"),
        )
        # AWS: computeResources, updatePolicy and unmanagedvCpus apply (moto drops them).
        env = backend.get_compute_environment(name)
        resources = response._get_param("computeResources")
        if resources:
            env.compute_resources = {**(env.compute_resources or {}), **resources}
        if response._get_param("updatePolicy") is not None:
            env.update_policy = response._get_param("updatePolicy")
        if response._get_param("unmanagedvCpus") is not None:
            env.unmanaged_vcpus = response._get_param("unmanagedvCpus")
        return json.dumps({"computeEnvironmentArn": arn, "computeEnvironmentName": name})

    def describe_ce(
        self, backend: Any, environments: list[str] | None = None
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._describe_ce(backend, environments)
        for item in result:
            env = backend._compute_environments.get(item["computeEnvironmentArn"])
            # AWS: what update_ce applied is shown.
            if getattr(env, "update_policy", None):
                item["updatePolicy"] = env.update_policy
            if getattr(env, "unmanaged_vcpus", None) is not None:
                item["unmanagedvCpus"] = env.unmanaged_vcpus
            # AWS: an environment Batch cannot build is INVALID, with the reason.
            instance_tags = ((env.compute_resources if env else None) or {}).get("tags") or {}
            if instance_tags.get(INVALID_TAG):
                item["status"] = "INVALID"
                item["statusReason"] = f"CLIENT_ERROR - {instance_tags[INVALID_TAG]}"
        return result

    def delete_ce(self, backend: Any, compute_environment_name: str) -> None:
        env = backend.get_compute_environment(compute_environment_name)
        if env is not None:
            # AWS: only a DISABLED environment that no queue uses (or recently used) goes.
            if env.state != "DISABLED":
                raise ClientException(
                    f"Cannot delete, compute environment {env.name} is ENABLED: disable it first"
                )
            users = [q.name for q in backend._job_queues.values() if env in q.environments]
            if users or self._lingers(env.arn):
                raise ClientException("Cannot delete, found existing JobQueue relationship")
        self._delete_ce(backend, compute_environment_name)

    # --- job queues -------------------------------------------------------------------------

    def update_jq(
        self,
        backend: Any,
        queue_name: str,
        priority: Any,
        state: Any,
        compute_env_order: Any,
        schedule_policy: Any,
    ) -> tuple[str, str]:
        queue = backend.get_job_queue(queue_name)
        before = {e.arn for e in queue.environments} if queue is not None else set()
        result: tuple[str, str] = self._update_jq(
            backend, queue_name, priority, state, compute_env_order, schedule_policy
        )
        if queue is not None:  # AWS: the relationship lingers for the lag (eventual consistency)
            for arn in before - {e.arn for e in queue.environments}:
                self._release(arn)
        return result

    def delete_jq(self, backend: Any, queue_name: str) -> None:
        queue = backend.get_job_queue(queue_name)
        if queue is not None:
            if queue.state != "DISABLED":  # AWS: only a DISABLED queue goes
                raise ClientException(
                    f"Cannot delete, job queue {queue.name} is ENABLED: disable it first"
                )
            for env in queue.environments:  # AWS: the relationship lingers for the lag
                self._release(env.arn)
        self._delete_jq(backend, queue_name)
