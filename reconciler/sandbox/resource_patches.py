"""Compute environments and job queues on the sandbox: moto's calls, patched to behave like AWS.

`reconciler.sandbox.moto_ext.install()` creates one `ResourcePatches` per server and installs
it; each patched moto method calls the matching method here. Each patch mirrors a documented
AWS behaviour, for every client (the reconciler, the AWS CLI, a boto3 script: the patches sit
on moto's request handlers and backend, which every request goes through), so that the sandbox
(and the integration tests, which run the same extended moto over HTTP) teach what AWS does:
- UpdateComputeEnvironment applies computeResources, updatePolicy and unmanagedvCpus (moto
  drops them, which would show as perpetual drift).
- CreateComputeEnvironment checks the request as AWS does (`compute_checks`): minvCpus defaults
  to 0, securityGroupIds is optional outside Fargate, serviceRole may be a name and defaults to
  the Batch service-linked role, unmanagedvCpus is kept. A service role, instance profile,
  launch template or AMI that does not exist does not fail the call: the environment is
  created INVALID, with AWS's statusReason (an update checks again).
- CreateJobQueue without state creates an ENABLED queue (moto refuses).
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
from itertools import cycle
from typing import Any

from moto.batch import models as batch_models
from moto.batch import responses as batch_responses
from moto.batch.exceptions import ClientException
from moto.moto_api._internal import mock_random

from reconciler.sandbox import compute_checks
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.seed import SERVICE_LINKED_ROLE_NAME, SERVICE_LINKED_ROLE_PATH

# An environment whose instance tags carry this key is described as INVALID, with the value as
# its statusReason: how demos and tests see the reconciler fail the way AWS makes it fail.
INVALID_TAG = "reconciler.io/sandbox-invalid"
INVALID_ATTR = "sandbox_invalid"  # on moto's ComputeEnvironment: the statusReason, if INVALID
MOTO_IMAGE = "ami-03cf127a"  # the image moto starts every environment's instances from

BatchBackend = batch_models.BatchBackend
BatchResponse = batch_responses.BatchResponse


def service_linked_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role{SERVICE_LINKED_ROLE_PATH}{SERVICE_LINKED_ROLE_NAME}"


class ResourcePatches:
    """moto's compute environment and job queue calls for one server, and what they remember."""

    _describe_ce: Callable[..., Any]  # moto's originals, set by install()
    _delete_ce: Callable[..., Any]
    _create_jq: Callable[..., Any]
    _update_jq: Callable[..., Any]
    _delete_jq: Callable[..., Any]

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._released: dict[str, float] = {}  # environment ARN -> when a queue let go of it

    def install(self, patcher: Patcher) -> None:
        patcher.replace(BatchResponse, "createcomputeenvironment", self.create_ce_request)
        patcher.replace(BatchResponse, "updatecomputeenvironment", self.update_ce)
        backend, describe = BatchBackend, "describe_compute_environments"
        patcher.replace(backend, "create_compute_environment", self.create_ce)
        self._create_jq = patcher.replace(backend, "create_job_queue", self.create_jq)
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

    def create_ce_request(self, response: Any) -> str:
        """BatchResponse.createcomputeenvironment, also passing on unmanagedvCpus."""
        env = response.batch_backend.create_compute_environment(
            compute_environment_name=response._get_param("computeEnvironmentName"),
            _type=response._get_param("type"),
            state=response._get_param("state"),
            compute_resources=response._get_param("computeResources"),
            service_role=response._get_param("serviceRole"),
            tags=response._get_param("tags"),
        )
        env.unmanaged_vcpus = response._get_param("unmanagedvCpus")  # AWS: kept (moto drops it)
        return json.dumps({"computeEnvironmentArn": env.arn, "computeEnvironmentName": env.name})

    def create_ce(
        self,
        backend: Any,
        compute_environment_name: str,
        _type: str,
        state: str | None,
        compute_resources: dict[str, Any] | None,
        service_role: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Any:
        """BatchBackend.create_compute_environment, with AWS's checks instead of moto's."""
        # AWS: minvCpus and (outside Fargate) securityGroupIds are optional.
        check = compute_checks
        check.check_request(backend, compute_environment_name, _type, state, compute_resources)
        resources = check.with_defaults(compute_resources)
        # AWS: without serviceRole, Batch uses its service-linked role (moto refuses); a name
        # is read as a role with the path "/".
        role = (
            check.role_arn(backend, service_role)
            if service_role
            else service_linked_arn(backend.account_id)
        )
        env = batch_models.ComputeEnvironment(
            compute_environment_name,
            _type,
            state or "ENABLED",
            resources,
            role,
            account_id=backend.account_id,
            region_name=backend.region_name,
        )
        backend._compute_environments[env.arn] = env
        if tags:
            backend.tag_resource(env.arn, tags)
        # AWS: a missing service role, instance profile, launch template or AMI does not fail
        # the call (moto refuses the first two, accepts the others): the environment is INVALID.
        reason = check.invalid_reason(backend, role, resources)
        setattr(env, INVALID_ATTR, reason)
        managed = resources and _type == "MANAGED" and not check.is_fargate(resources)
        if managed and reason is None:  # AWS: an INVALID environment starts no instances
            self._start_instances(backend, env, resources)
        cluster_name = "OnDemand_Batch_" + str(mock_random.uuid4())  # as moto names it
        cluster = backend.ecs_backend.create_cluster(cluster_name)
        env.set_ecs(cluster.arn, cluster_name)
        return env

    @staticmethod
    def _start_instances(backend: Any, env: Any, resources: dict[str, Any]) -> None:
        """The instances a new environment starts with (desiredvCpus, else minvCpus), as moto."""
        cpus = int(resources.get("desiredvCpus", resources.get("minvCpus") or 0))
        subnets = cycle(resources["subnets"])
        overrides = [c.get("imageIdOverride") for c in resources.get("ec2Configuration") or []]
        # AWS: the instances run the environment's image (moto always uses its own).
        image = next((i for i in overrides if i), None) or resources.get("imageId") or MOTO_IMAGE
        ec2 = backend.ec2_backend
        groups = resources.get("securityGroupIds") or []
        if not groups:  # AWS: EC2 gives instances without a security group the VPC's default one
            vpc = ec2.get_subnet(resources["subnets"][0]).vpc_id
            default = ec2.get_default_security_group(vpc)
            groups = [default.id] if default is not None else []
        for instance_type in backend.find_min_instances_to_meet_vcpus(
            resources["instanceTypes"], cpus
        ):
            reservation = ec2.run_instances(
                image_id=image,
                count=1,
                user_data=None,
                security_group_names=[],
                instance_type=instance_type,
                region_name=backend.region_name,
                subnet_id=next(subnets),
                key_name=resources.get("ec2KeyPair", "AWS_OWNED"),
                security_group_ids=groups,
                is_instance_type_default=False,
            )
            env.add_instance(reservation.instances[0])

    def update_ce(self, response: Any) -> str:
        backend = response.batch_backend
        name, arn = backend.update_compute_environment(
            compute_environment_name=response._get_param("computeEnvironment"),
            compute_resources=None,
            service_role=None,
            state=response._get_param("state"),
        )
        env = backend.get_compute_environment(name)
        role = response._get_param("serviceRole")
        if role:  # AWS: a role that does not exist makes the environment INVALID (moto refuses)
            env.service_role = compute_checks.role_arn(backend, role)
        # AWS: computeResources, updatePolicy and unmanagedvCpus apply (moto drops them).
        resources = response._get_param("computeResources")
        if resources:
            env.compute_resources = {**(env.compute_resources or {}), **resources}
        if role or resources:  # AWS: Batch checks what it is to build again
            reason = compute_checks.invalid_reason(backend, env.service_role, env.compute_resources)
            setattr(env, INVALID_ATTR, reason)
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
            if getattr(env, INVALID_ATTR, None):
                item["status"] = "INVALID"
                item["statusReason"] = getattr(env, INVALID_ATTR)
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

    def create_jq(
        self,
        backend: Any,
        queue_name: str,
        priority: Any,
        schedule_policy: str | None,
        state: str | None,
        compute_env_order: list[dict[str, Any]],
        tags: dict[str, str] | None = None,
    ) -> Any:
        # AWS: state is optional and defaults to ENABLED (moto requires it).
        state = state or "ENABLED"
        return self._create_jq(
            backend, queue_name, priority, schedule_policy, state, compute_env_order, tags
        )

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
