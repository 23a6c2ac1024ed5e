"""Manifest text for tests, built from a few parameters."""

from __future__ import annotations


def ce(
    name: str = "spot-ce",
    *,
    type_: str = "SPOT",
    strategy: str = "SPOT_CAPACITY_OPTIMIZED",
    max_vcpus: int = 16,
    instance_types: str = "[optimal]",
    state: str = "ENABLED",
    service_role: str | None = None,
    labels: str = "{team: genomics}",
    network: tuple[list[str], list[str]] | None = None,
) -> str:
    """`network`: the subnets and security groups by ID; by default the default VPC's, looked
    up (`{defaultVpc: true}`)."""
    role = f"\n  serviceRole: {service_role}" if service_role else ""
    subnets, groups = ("[{defaultVpc: true}]",) * 2
    if network is not None:
        subnets, groups = (f"[{', '.join(ids)}]" for ids in network)
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: ComputeEnvironment
metadata:
  name: {name}
  labels: {labels}
spec:
  state: {state}{role}
  computeResources:
    type: {type_}
    allocationStrategy: {strategy}
    minvCpus: 0
    maxvCpus: {max_vcpus}
    instanceTypes: {instance_types}
    instanceRole: ecsInstanceRole
    subnets: {subnets}
    securityGroupIds: {groups}
"""


def jq(
    name: str = "main-queue",
    *,
    envs: tuple[str, ...] = ("spot-ce",),
    priority: int = 10,
    state: str = "ENABLED",
) -> str:
    order = "\n".join(
        f"    - {{order: {i + 1}, computeEnvironment: {e}}}" for i, e in enumerate(envs)
    )
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: JobQueue
metadata:
  name: {name}
spec:
  priority: {priority}
  state: {state}
  computeEnvironmentOrder:
{order}
"""


def jd(
    name: str = "leader",
    *,
    image: str = "busybox:1",
    limit: int = 5,
    env_value: str = "s3://bucket",
    labels: str = "{team: genomics}",
) -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: JobDefinition
metadata:
  name: {name}
  labels: {labels}
spec:
  containerProperties:
    image: {image}
    vcpus: 1
    memory: 512
    jobRoleArn: BatchJobRole
    environment:
      - {{name: STRESS_BUCKET, value: "{env_value}"}}
      - {{name: MODE, value: fast}}
  retryStrategy: {{attempts: 2}}
  revisionHistoryLimit: {limit}
"""


def stack(*docs: str) -> str:
    return "---".join(docs)


def pipeline(
    name: str = "stress",
    *,
    queue: str = "main-queue",
    policy: str = "Forbid",
    size: int = 4,
    leader_fails: bool = False,
    extra: str = "",
    rerun: int = 0,
) -> str:
    fail = "\n      sandbox: {outcome: fail, exitCode: 3}" if leader_fails else ""
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Pipeline
metadata:
  name: {name}
spec:
  jobQueue: {queue}
  concurrencyPolicy: {policy}
  rerun: {rerun}
  tasks:
    - name: leader
      jobDefinition: leader
      containerOverrides:
        environment: [{{name: STRESS_BUCKET, value: "s3://bucket"}}]{fail}
    - name: follower
      jobDefinition: follower
      arrayProperties: {{size: {size}}}
      dependsOn: [{{task: leader}}]
      retryStrategy: {{attempts: 2}}{extra}
"""


def infra(**jd_kw: str) -> str:
    return stack(ce(), jq(), jd(**jd_kw), jd("follower"))
