"""Where moto's Batch falls short of AWS, the sandbox behaves like AWS.

Each patch mirrors a documented AWS behaviour that the reconciler depends on, so that the
sandbox (and the integration tests, which run the same extended moto over HTTP) exercise the
real code paths:
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
- Jobs move through AWS's states, honour dependsOn, array, retry and timeout settings, and can
  fail or run locally on demand (moto's no-Docker backend finishes every job at once): see
  `reconciler.sandbox.jobs`.
`install()` is idempotent and must run before the server handles its first request.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from moto.batch import models as batch_models
from moto.batch import responses as batch_responses
from moto.batch.exceptions import ClientException

from reconciler.sandbox import jobs

SERVICE_LINKED_ROLE_NAME = "AWSServiceRoleForBatch"
SERVICE_LINKED_ROLE_PATH = "/aws-service-role/batch.amazonaws.com/"

# An environment whose instance tags carry this key is described as INVALID, with the value as
# its statusReason: how demos and tests see the reconciler fail the way AWS makes it fail.
INVALID_TAG = "reconciler.io/sandbox-invalid"

_installed = False
_released: dict[str, float] = {}  # compute environment ARN -> when a queue last let go of it


def _lag() -> float:
    return float(os.environ.get("RECONCILER_SANDBOX_RELATIONSHIP_LAG", "0") or 0)


def _service_linked_arn(backend: Any) -> str:
    return (
        f"arn:aws:iam::{backend.account_id}:role{SERVICE_LINKED_ROLE_PATH}"
        f"{SERVICE_LINKED_ROLE_NAME}"
    )


def _create_ce(self: Any) -> str:
    service_role = self._get_param("serviceRole") or _service_linked_arn(self.batch_backend)
    env = self.batch_backend.create_compute_environment(
        compute_environment_name=self._get_param("computeEnvironmentName"),
        _type=self._get_param("type"),
        state=self._get_param("state") or "ENABLED",
        compute_resources=self._get_param("computeResources"),
        service_role=service_role,
        tags=self._get_param("tags"),
    )
    env.unmanaged_vcpus = self._get_param("unmanagedvCpus")
    return json.dumps({"computeEnvironmentArn": env.arn, "computeEnvironmentName": env.name})


def _update_ce(self: Any) -> str:
    backend = self.batch_backend
    name, arn = backend.update_compute_environment(
        compute_environment_name=self._get_param("computeEnvironment"),
        compute_resources=None,
        service_role=self._get_param("serviceRole"),
        state=self._get_param("state"),
    )
    env = backend.get_compute_environment(name)
    resources = self._get_param("computeResources")
    if resources:
        env.compute_resources = {**(env.compute_resources or {}), **resources}
    if self._get_param("updatePolicy") is not None:
        env.update_policy = self._get_param("updatePolicy")
    if self._get_param("unmanagedvCpus") is not None:
        env.unmanaged_vcpus = self._get_param("unmanagedvCpus")
    return json.dumps({"computeEnvironmentArn": arn, "computeEnvironmentName": name})


_original_describe_ce = batch_models.BatchBackend.describe_compute_environments


def _describe_ce(self: Any, environments: list[str] | None = None) -> list[dict[str, Any]]:
    result = _original_describe_ce(self, environments)
    for item in result:
        env = self._compute_environments.get(item["computeEnvironmentArn"])
        if getattr(env, "update_policy", None):
            item["updatePolicy"] = env.update_policy
        if getattr(env, "unmanaged_vcpus", None) is not None:
            item["unmanagedvCpus"] = env.unmanaged_vcpus
        instance_tags = ((env.compute_resources if env else None) or {}).get("tags") or {}
        if instance_tags.get(INVALID_TAG):
            item["status"] = "INVALID"
            item["statusReason"] = f"CLIENT_ERROR - {instance_tags[INVALID_TAG]}"
    return result


def _delete_ce(self: Any, compute_environment_name: str) -> None:
    env = self.get_compute_environment(compute_environment_name)
    if env is not None:
        if env.state != "DISABLED":
            raise ClientException(
                f"Cannot delete, compute environment {env.name} is ENABLED: disable it first"
            )
        users = [q.name for q in self._job_queues.values() if env in q.environments]
        lingering = time.monotonic() - _released.get(env.arn, float("-inf")) < _lag()
        if users or lingering:
            raise ClientException("Cannot delete, found existing JobQueue relationship")
    _original_delete_ce(self, compute_environment_name)


_original_delete_ce = batch_models.BatchBackend.delete_compute_environment
_original_update_jq = batch_models.BatchBackend.update_job_queue


def _update_jq(
    self: Any,
    queue_name: str,
    priority: Any,
    state: Any,
    compute_env_order: Any,
    schedule_policy: Any,
) -> tuple[str, str]:
    queue = self.get_job_queue(queue_name)
    before = {e.arn for e in queue.environments} if queue is not None else set()
    result = _original_update_jq(
        self, queue_name, priority, state, compute_env_order, schedule_policy
    )
    if queue is not None:
        for arn in before - {e.arn for e in queue.environments}:
            _released[arn] = time.monotonic()
    return result


_original_delete_jq = batch_models.BatchBackend.delete_job_queue


def _delete_jq(self: Any, queue_name: str) -> None:
    queue = self.get_job_queue(queue_name)
    if queue is not None:
        if queue.state != "DISABLED":
            raise ClientException(
                f"Cannot delete, job queue {queue.name} is ENABLED: disable it first"
            )
        for env in queue.environments:
            _released[env.arn] = time.monotonic()
    _original_delete_jq(self, queue_name)


def install() -> None:
    global _installed
    if _installed:
        return
    batch_responses.BatchResponse.createcomputeenvironment = _create_ce
    batch_responses.BatchResponse.updatecomputeenvironment = _update_ce
    batch_models.BatchBackend.describe_compute_environments = _describe_ce
    batch_models.BatchBackend.delete_compute_environment = _delete_ce
    batch_models.BatchBackend.update_job_queue = _update_jq
    batch_models.BatchBackend.delete_job_queue = _delete_jq
    jobs.install()
    _installed = True
