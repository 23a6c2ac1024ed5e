"""The operator end to end: kopf over HTTP against the emulator, the engine against moto.

Every test starts the operator the way a cluster would (a kubeconfig, AWS settings from the
environment) and waits for conditions with deadlines.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Mapping

from tests import stacks
from tests.conftest import client, tags_of
from tests.operator.conftest import NAMESPACE, condition, manifest, wait_for

TASK = """
apiVersion: reconciler.io/v1alpha1
kind: Task
metadata:
  name: one-off
spec:
  jobQueue: main-queue
  jobDefinition: leader
"""


def _ce(aws: str, name: str) -> dict | None:
    found = client(aws).describe_compute_environments(computeEnvironments=[name])
    live = [e for e in found["computeEnvironments"] if e.get("status") != "DELETED"]
    return live[0] if live else None


def test_every_kind_is_created_and_reports_ready(start_operator, aws):
    op = start_operator()
    for text in (stacks.ce(), stacks.jq(), stacks.jd("leader"), stacks.jd("follower")):
        op.client.create(NAMESPACE, manifest(text))
    op.client.create(NAMESPACE, manifest(stacks.pipeline(size=2)))
    op.client.create(NAMESPACE, manifest(TASK))

    ce = op.wait_condition("ComputeEnvironment", "spot-ce", "Ready", "True")
    assert ce["status"]["arn"] == _ce(aws, "spot-ce")["computeEnvironmentArn"]
    assert ce["status"]["awsStatus"] == "VALID"
    assert condition(ce, "Synced")["status"] == "True"
    assert ce["status"]["observedGeneration"] == 1

    jq = op.wait_condition("JobQueue", "main-queue", "Ready", "True")
    queue = client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"][0]
    assert jq["status"]["arn"] == queue["jobQueueArn"]
    assert queue["computeEnvironmentOrder"][0]["computeEnvironment"] == ce["status"]["arn"]

    jd = op.wait_condition("JobDefinition", "leader", "Ready", "True")
    assert jd["status"]["revision"] == 1
    assert jd["status"]["arn"].endswith("job-definition/leader:1")

    pipeline = op.wait_condition("Pipeline", "stress", "Ready", "True", timeout=30)
    run = pipeline["status"]["runId"]
    assert run and set(pipeline["status"]["tasks"]) == {"leader", "follower"}
    jobs = client(aws).list_jobs(
        jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": ["stress--*"]}]
    )["jobSummaryList"]
    assert sorted(j["jobName"] for j in jobs) == [
        f"stress--follower--{run}",
        f"stress--leader--{run}",
    ]
    task = op.wait_condition("Task", "one-off", "Ready", "True", timeout=30)
    assert task["status"]["runId"] and task["status"]["jobs"]

    created = {e["involvedObject"]["name"] for e in op.events("Created")}
    assert {"spot-ce", "main-queue", "leader", "follower"} <= created
    assert {e["involvedObject"]["name"] for e in op.events("Submitted")} == {"stress", "one-off"}


def test_spec_changes_reach_aws_and_advance_observed_generation(start_operator, aws):
    op = start_operator()
    op.client.create(NAMESPACE, manifest(stacks.ce()))
    op.client.create(NAMESPACE, manifest(stacks.jd("leader", env_value="s3://private-bucket")))
    op.wait_condition("ComputeEnvironment", "spot-ce", "Ready", "True")
    op.wait_condition("JobDefinition", "leader", "Ready", "True")

    op.client.patch(
        "ComputeEnvironment", NAMESPACE, "spot-ce", {"spec": {"computeResources": {"maxvCpus": 32}}}
    )
    op.client.patch(
        "JobDefinition",
        NAMESPACE,
        "leader",
        {"spec": {"containerProperties": {"image": "busybox:2"}}},
    )

    def updated(kind: str, name: str):
        obj = op.obj(kind, name)
        status = obj.get("status") or {}
        synced = condition(obj, "Synced")
        if status.get("observedGeneration") == 2 and synced.get("status") == "True":
            return obj
        return None

    wait_for("the compute environment update", lambda: updated("ComputeEnvironment", "spot-ce"))
    assert _ce(aws, "spot-ce")["computeResources"]["maxvCpus"] == 32
    jd = wait_for("the new revision", lambda: updated("JobDefinition", "leader"))
    assert jd["status"]["revision"] == 2
    live = client(aws).describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    latest = max(live["jobDefinitions"], key=lambda d: d["revision"])
    assert (latest["revision"], latest["containerProperties"]["image"]) == (2, "busybox:2")
    assert op.events("Updated") and op.events("NewRevision")
    # Events say what was done, never what the spec holds.
    assert not any("private-bucket" in e.get("message", "") for e in op.events())


def test_delete_removes_from_aws_unless_retained(start_operator, aws):
    op = start_operator()
    retained = manifest(stacks.ce("kept-ce"))
    retained["spec"]["deletionPolicy"] = "Retain"
    op.client.create(NAMESPACE, manifest(stacks.ce("gone-ce")))
    op.client.create(NAMESPACE, retained)
    gone = op.wait_condition("ComputeEnvironment", "gone-ce", "Ready", "True")
    op.wait_condition("ComputeEnvironment", "kept-ce", "Ready", "True")
    assert gone["metadata"]["finalizers"] == ["reconciler.io/finalizer"]

    op.client.delete("ComputeEnvironment", NAMESPACE, "gone-ce")
    op.client.delete("ComputeEnvironment", NAMESPACE, "kept-ce")
    wait_for("gone-ce to be released", lambda: op.obj("ComputeEnvironment", "gone-ce") is None)
    wait_for("kept-ce to be released", lambda: op.obj("ComputeEnvironment", "kept-ce") is None)
    assert _ce(aws, "gone-ce") is None  # the finalizer went only after AWS confirmed
    assert _ce(aws, "kept-ce") is not None
    assert [e["involvedObject"]["name"] for e in op.events("Deleted")] == ["gone-ce"]
    assert [e["involvedObject"]["name"] for e in op.events("Retained")] == ["kept-ce"]


def test_drift_made_by_hand_is_corrected_by_the_timer(start_operator, aws):
    op = start_operator(drift_interval=1.0)
    op.client.create(NAMESPACE, manifest(stacks.ce()))
    op.wait_condition("ComputeEnvironment", "spot-ce", "Ready", "True")

    client(aws).update_compute_environment(
        computeEnvironment="spot-ce", computeResources={"maxvCpus": 64}
    )
    drift = wait_for("a Drift event", lambda: op.events("Drift"), timeout=15)
    assert drift[0]["type"] == "Warning"
    assert "computeResources.maxvCpus" in drift[0]["message"]
    wait_for(
        "maxvCpus back to 16", lambda: _ce(aws, "spot-ce")["computeResources"]["maxvCpus"] == 16
    )
    obj = op.wait_condition("ComputeEnvironment", "spot-ce", "Synced", "True")
    assert condition(obj, "Ready")["status"] == "True"
    history = op.cluster.k8s.objects[
        "reconciler.io/v1alpha1/computeenvironments", NAMESPACE, "spot-ce"
    ].history
    reasons = [condition(dict(v), "Synced").get("reason") for v in history if v is not None]
    assert "Drift" in reasons  # Synced=False was written while correcting


def test_drift_of_a_secret_is_reported_without_its_value(start_operator, aws):
    """Events and conditions name the drifted field; neither the declared secret nor the one
    set by hand in AWS appears in them."""
    declared, by_hand = "declared-s3cr3t", "by-hand-s3cr3t"
    op = start_operator(drift_interval=1.0)
    jd = manifest(stacks.jd("leader"))
    jd["spec"]["containerProperties"]["environment"].append(
        {"name": "AWS_SECRET_ACCESS_KEY", "value": declared}
    )
    op.client.create(NAMESPACE, jd)
    op.wait_condition("JobDefinition", "leader", "Ready", "True")

    batch = client(aws)
    current = batch.describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    live = current["jobDefinitions"][0]
    env = [
        {**e, "value": by_hand} if e["name"] == "AWS_SECRET_ACCESS_KEY" else e
        for e in live["containerProperties"]["environment"]
    ]
    batch.register_job_definition(
        jobDefinitionName="leader",
        type="container",
        containerProperties={**live["containerProperties"], "environment": env},
        tags=live["tags"],
    )
    drift = wait_for("a Drift event", lambda: op.events("Drift"), timeout=15)
    assert "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value" in drift[0]["message"]

    def corrected() -> bool:
        found = batch.describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
        latest = max(found["jobDefinitions"], key=lambda d: d["revision"])
        values = {e["name"]: e["value"] for e in latest["containerProperties"]["environment"]}
        return values["AWS_SECRET_ACCESS_KEY"] == declared

    wait_for("the declared secret back in AWS", corrected)
    obj = op.wait_condition("JobDefinition", "leader", "Synced", "True")
    history = op.cluster.k8s.objects[
        "reconciler.io/v1alpha1/jobdefinitions", NAMESPACE, "leader"
    ].history
    written = json.dumps([_plain(dict(v).get("status")) for v in history if v is not None])
    said = json.dumps(_plain(op.events())) + written + json.dumps(_plain(obj.get("status")))
    assert declared not in said and by_hand not in said


def test_waiting_queue_is_woken_when_its_environment_becomes_ready(start_operator, aws):
    op = start_operator(drift_interval=60.0)  # the drift sweep cannot be what wakes it
    op.client.create(NAMESPACE, manifest(stacks.jq()))
    waiting = op.wait_condition("JobQueue", "main-queue", "Ready", "False", "DependencyNotReady")
    assert "ComputeEnvironment/spot-ce" in condition(waiting, "Ready")["message"]
    assert client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"] == []

    started = time.monotonic()
    op.client.create(NAMESPACE, manifest(stacks.ce()))
    ready = op.wait_condition("JobQueue", "main-queue", "Ready", "True", timeout=15)
    assert time.monotonic() - started < 15  # well before the 60 s drift pass
    assert ready["metadata"]["annotations"]["reconciler.io/dependencies-ready"]  # the nudge
    assert client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"]
    assert op.events("DependencyNotReady")


def test_invalid_spec_is_reported_once_without_a_hot_loop(start_operator, aws):
    op = start_operator(drift_interval=1.0)
    bad = manifest(stacks.ce("bad-ce"))
    bad["spec"]["computeResources"]["maxvCpus"] = -1
    op.client.create(NAMESPACE, bad)
    obj = op.wait_condition("ComputeEnvironment", "bad-ce", "Ready", "False", "InvalidSpec")
    assert "maxvCpus" in condition(obj, "Ready")["message"]
    assert condition(obj, "Synced")["reason"] == "InvalidSpec"
    wait_for("an InvalidSpec event", lambda: op.events("InvalidSpec"))

    writes_before = _writes(op)
    time.sleep(3.0)  # three drift passes: none may call AWS for it
    assert op.stats.total == 0, dict(op.stats.calls)
    assert _writes(op) - writes_before <= 1
    assert len(op.events("InvalidSpec")) == 1

    # Fixing the spec is an update: it reconciles at once.
    op.client.patch(
        "ComputeEnvironment", NAMESPACE, "bad-ce", {"spec": {"computeResources": {"maxvCpus": 8}}}
    )
    op.wait_condition("ComputeEnvironment", "bad-ce", "Ready", "True")
    assert _ce(aws, "bad-ce")["computeResources"]["maxvCpus"] == 8


def test_ownership_is_the_namespace_or_the_stack_label_and_adoption_is_explicit(
    start_operator, aws
):
    op = start_operator(namespaces=[NAMESPACE])  # namespaced mode, as a per-team install runs
    client(aws).register_job_definition(
        jobDefinitionName="leader",
        type="container",
        containerProperties={"image": "busybox:1", "vcpus": 1, "memory": 512},
    )
    op.client.create(NAMESPACE, manifest(stacks.jd("leader")))
    conflict = op.wait_condition("JobDefinition", "leader", "Synced", "False", "Conflict")
    assert "adopt" in condition(conflict, "Synced")["message"]
    assert op.events("Conflict")

    annotation = {"metadata": {"annotations": {"reconciler.io/adopt": "true"}}}
    op.client.patch("JobDefinition", NAMESPACE, "leader", annotation)
    adopted = op.wait_condition("JobDefinition", "leader", "Synced", "True")
    assert tags_of(aws, adopted["status"]["arn"])["reconciler.io/stack"] == NAMESPACE

    shared = manifest(stacks.jd("follower"))
    shared["metadata"]["labels"]["reconciler.io/stack"] = "shared"
    op.client.create(NAMESPACE, shared)
    follower = op.wait_condition("JobDefinition", "follower", "Ready", "True")
    tags = tags_of(aws, follower["status"]["arn"])
    assert (tags["reconciler.io/stack"], tags["team"]) == ("shared", "genomics")


def test_a_run_is_followed_until_it_ends_and_never_submitted_twice(
    start_operator, aws, monkeypatch
):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    op = start_operator(drift_interval=1.0)
    for text in (stacks.ce(), stacks.jq(), stacks.jd("leader"), TASK):
        op.client.create(NAMESPACE, manifest(text))
    op.wait_condition("Task", "one-off", "Ready", "True", timeout=30)

    def finished():
        status = (op.obj("Task", "one-off") or {}).get("status") or {}
        return status if status.get("runStatus") == "SUCCEEDED" else None

    status = wait_for("the run to succeed", finished, timeout=20)
    assert status["jobs"] == {"SUCCEEDED": 1}
    assert status["tasks"] == {"one-off": {"SUCCEEDED": 1}}
    described = op.stats.calls["batch:DescribeJobs"]
    time.sleep(2.5)  # drift passes: a finished run is not read again, nor submitted again
    assert op.stats.calls["batch:DescribeJobs"] == described
    assert op.stats.calls["batch:SubmitJob"] == 1


def test_aws_errors_are_reported_and_retried_with_backoff(start_operator, aws):
    op = start_operator()
    op.client.create(NAMESPACE, manifest(stacks.ce("ab")))  # moto wants 3 characters or more
    obj = op.wait_condition("ComputeEnvironment", "ab", "Synced", "False", "ReconcileError")
    assert condition(obj, "Ready")["reason"] == "ReconcileError"
    assert condition(obj, "Ready")["message"]
    assert wait_for("a ReconcileError event", lambda: op.events("ReconcileError"))
    assert op.stats.calls["batch:CreateComputeEnvironment"] == 1  # the next try is 5 s later


def test_liveness_probe_is_served(start_operator):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start_operator(liveness=f"http://127.0.0.1:{port}/healthz")

    def probe():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    assert "awsCalls" in wait_for("the liveness probe", probe, timeout=10)


def _plain(value):  # type: ignore[no-untyped-def]
    """The emulator's stored versions as plain JSON data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _writes(op) -> int:
    """PATCH requests the operator sent for objects of ours (status and metadata)."""
    return sum(
        1
        for r in list(op.cluster.k8s)
        if str(r.method.value).upper() == "PATCH" and "/apis/reconciler.io/" in str(r.url.path)
    )


def _object_reads(op) -> int:
    """GET requests the operator sent for one object of ours (not lists, not watches)."""
    return sum(
        1
        for r in list(op.cluster.k8s)
        if str(r.method.value).upper() == "GET"
        and str(r.url.path).startswith("/apis/reconciler.io/")
        and len(str(r.url.path).strip("/").split("/")) == 7
        and "watch" not in str(r.url.query)
    )


def test_a_drift_pass_reads_the_stack_once_for_all_its_objects(start_operator, aws):
    """The checks of a pass share one plan of the whole stack (operator/drift.py): with ten
    objects, a pass reads what the stack owns once or twice, not ten times. Objects that are
    Ready and Synced are checked from the index (operator/sweep.py): no Kubernetes call."""
    op = start_operator(drift_interval=2.0)
    texts = [stacks.ce(), stacks.jq(), *(stacks.jd(f"def-{i}") for i in range(8))]
    for text in texts:
        op.client.create(NAMESPACE, manifest(text))
    for text in texts:
        doc = manifest(text)
        op.wait_condition(doc["kind"], doc["metadata"]["name"], "Synced", "True")
        op.wait_condition(doc["kind"], doc["metadata"]["name"], "Ready", "True")
    time.sleep(2.5)  # the sweep has started: each object is checked once a pass
    before, reads, writes = dict(op.stats.calls), _object_reads(op), _writes(op)
    time.sleep(4.0)  # two passes
    made = {k: n - before.get(k, 0) for k, n in op.stats.calls.items() if n - before.get(k, 0)}
    assert 1 <= made.get("resourcegroupstaggingapi:GetResources", 0) <= 4, made
    assert made.get("batch:DescribeJobDefinitions", 0) <= 4, made
    assert not [k for k in made if not k.split(":")[1].startswith(("Describe", "List", "Get"))]
    assert not op.events("Drift")
    assert _object_reads(op) == reads, "a quiet pass reads no object from Kubernetes"
    assert _writes(op) == writes, "nor patches one"
