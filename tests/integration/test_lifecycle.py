"""Create, no-op re-apply, in-place updates, revisions, prune and delete, over HTTP to moto."""

from __future__ import annotations

from tests.conftest import client, tags_of
from tests.stacks import ce, jd, jq, stack


def test_create_then_reapply_is_a_noop(run, write, aws):
    path = write(
        stack(
            ce(),
            ce("od-ce", type_="EC2", strategy="BEST_FIT_PROGRESSIVE"),
            jq(envs=("spot-ce", "od-ce")),
            jd(),
        )
    )
    first = run("apply", "-f", path)
    assert first.code == 0, first.err
    assert "Plan: 4 to create." in first.out
    assert "Apply complete: 4 done, 0 failed, 0 skipped" in first.out

    batch = client(aws)
    envs = batch.describe_compute_environments()["computeEnvironments"]
    assert sorted(e["computeEnvironmentName"] for e in envs) == ["od-ce", "spot-ce"]
    spot = next(e for e in envs if e["computeEnvironmentName"] == "spot-ce")
    assert spot["computeResources"]["subnets"], "the default-VPC lookup resolved to subnets"
    tags = tags_of(aws, spot["computeEnvironmentArn"])
    assert tags["reconciler.io/managed-by"] == "reconciler"
    assert tags["reconciler.io/stack"] == "default"
    assert tags["team"] == "genomics"
    queue = batch.describe_job_queues(jobQueues=["main-queue"])["jobQueues"][0]
    assert [
        e["computeEnvironment"].split("/")[-1]
        for e in sorted(queue["computeEnvironmentOrder"], key=lambda e: e["order"])
    ] == ["spot-ce", "od-ce"]
    job_def = batch.describe_job_definitions(jobDefinitionName="leader")["jobDefinitions"][0]
    assert job_def["containerProperties"]["jobRoleArn"].endswith(":role/BatchJobRole")

    again = run("apply", "-f", path)
    assert again.code == 0
    assert "No changes" in again.out
    assert again.writes == 0, again.calls
    # one listing per kind, one read per job definition name, lookups cached
    assert again.calls["batch:DescribeComputeEnvironments"] == 1
    assert again.calls["batch:DescribeJobQueues"] == 1
    assert again.calls["batch:DescribeJobDefinitions"] == 1

    diff = run("diff", "-f", path)
    assert diff.code == 0 and diff.writes == 0


def test_scaling_and_queue_updates_happen_in_place(run, write, aws):
    run("apply", "-f", write(stack(ce(), jq(), jd())))
    path = write(stack(ce(max_vcpus=64), jq(priority=50), jd()))
    diff = run("diff", "-f", path)
    assert diff.code == 2
    assert "computeResources.maxvCpus: 16 -> 64" in diff.out
    assert "scaling update (quick)" in diff.out
    assert "priority: 10 -> 50" in diff.out
    assert diff.writes == 0

    applied = run("apply", "-f", path)
    assert applied.code == 0, applied.out + applied.err
    assert applied.calls.get("batch:CreateComputeEnvironment", 0) == 0
    env = client(aws).describe_compute_environments(computeEnvironments=["spot-ce"])
    assert env["computeEnvironments"][0]["computeResources"]["maxvCpus"] == 64
    queue = client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"][0]
    assert queue["priority"] == 50
    assert run("diff", "-f", path).code == 0


def test_label_change_retags_without_other_writes(run, write, aws):
    run("apply", "-f", write(stack(ce(), jq(), jd())))
    applied = run("apply", "-f", write(stack(ce(labels="{team: proteomics}"), jq(), jd())))
    assert applied.code == 0
    assert "tags.team: genomics -> proteomics" in applied.out
    assert (
        set(applied.calls) & {"batch:UpdateComputeEnvironment", "batch:CreateComputeEnvironment"}
        == set()
    )
    arn = client(aws).describe_compute_environments(computeEnvironments=["spot-ce"])[
        "computeEnvironments"
    ][0]["computeEnvironmentArn"]
    assert tags_of(aws, arn)["team"] == "proteomics"


def test_job_definition_revisions_and_history_limit(run, write, aws):
    run("apply", "-f", write(jd(limit=2)))
    changed = run("apply", "-f", write(jd(image="busybox:2", limit=2)))
    assert changed.code == 0
    assert "new revision: revision 2 (after 1)" in changed.out
    assert "containerProperties.image: busybox:1 -> busybox:2" in changed.out
    assert changed.calls["batch:RegisterJobDefinition"] == 1

    unchanged = run("apply", "-f", write(jd(image="busybox:2", limit=2)))
    assert unchanged.writes == 0

    third = run("apply", "-f", write(jd(image="busybox:3", limit=2)))
    assert "deregister revision 1 (beyond revisionHistoryLimit 2)" in third.out
    active = client(aws).describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    assert sorted(d["revision"] for d in active["jobDefinitions"]) == [2, 3]
    assert run("diff", "-f", write(jd(image="busybox:3", limit=2))).code == 0


def test_environment_order_changes_are_not_drift_but_values_are(run, write, aws):
    run("apply", "-f", write(jd()))
    reordered = jd().replace(
        '      - {name: STRESS_BUCKET, value: "s3://bucket"}\n      - {name: MODE, value: fast}',
        '      - {name: MODE, value: fast}\n      - {name: STRESS_BUCKET, value: "s3://bucket"}',
    )
    assert reordered != jd()
    assert run("diff", "-f", write(reordered)).code == 0
    changed = run("diff", "-f", write(jd(env_value="s3://other")))
    assert changed.code == 2
    assert "containerProperties.environment.STRESS_BUCKET.value: s3://bucket -> s3://other" in (
        changed.out
    )


def test_prune_deletes_only_what_the_stack_owns_and_no_longer_declares(run, write, aws):
    run("apply", "-f", write(stack(ce(), jq(), jd(), jd("follower"))))
    smaller = write(stack(ce(), jq(), jd()))
    kept = run("apply", "-f", smaller)
    assert kept.code == 0 and kept.writes == 0, "without --prune nothing is deleted"

    pruned = run("apply", "-f", smaller, "--prune", "--yes")
    assert pruned.code == 0, pruned.err
    assert "JobDefinition/follower" in pruned.out and "no longer declared" in pruned.out
    active = client(aws).describe_job_definitions(jobDefinitionName="follower", status="ACTIVE")
    assert active["jobDefinitions"] == []
    assert run("apply", "-f", smaller, "--prune", "--yes").writes == 0


def test_prune_removes_a_queue_before_its_environment(run, write, aws):
    run(
        "apply",
        "-f",
        write(
            stack(
                ce(),
                ce("od-ce", type_="EC2", strategy="BEST_FIT"),
                jq(envs=("spot-ce", "od-ce")),
                jq("other", envs=("od-ce",)),
            )
        ),
    )
    pruned = run("apply", "-f", write(stack(ce(), jq(envs=("spot-ce",)))), "--prune", "--yes")
    assert pruned.code == 0, pruned.out + pruned.err
    batch = client(aws)
    assert [
        e["computeEnvironmentName"]
        for e in batch.describe_compute_environments()["computeEnvironments"]
    ] == ["spot-ce"]
    assert [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]] == ["main-queue"]


def test_delete_removes_everything_in_dependency_order(run, write, aws):
    path = write(stack(ce(), jq(), jd()))
    run("apply", "-f", path)
    deleted = run("delete", "--yes", "-f", path)
    assert deleted.code == 0, deleted.out + deleted.err
    batch = client(aws)
    assert batch.describe_compute_environments()["computeEnvironments"] == []
    assert batch.describe_job_queues()["jobQueues"] == []
    assert batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"] == []
    again = run("delete", "--yes", "-f", path)
    assert again.code == 0 and again.writes == 0
    assert "No changes" in run("delete", "-f", path, "--dry-run").out


def test_drift_made_by_hand_is_shown_and_corrected(run, write, aws):
    path = write(stack(ce(), jq(), jd()))
    run("apply", "-f", path)
    client(aws).update_compute_environment(
        computeEnvironment="spot-ce", computeResources={"maxvCpus": 99}
    )
    got = run("get", "-f", path)
    assert "drift (1 field)" in got.out
    assert "computeResources.maxvCpus: 99 -> 16" in got.out
    assert got.writes == 0
    fixed = run("apply", "-f", path)
    assert fixed.code == 0 and fixed.calls["batch:UpdateComputeEnvironment"] == 1
    assert run("diff", "-f", path).code == 0


def test_desired_vcpus_moved_by_batch_is_not_drift_unless_tracked(run, write, aws):
    path = write(ce())
    run("apply", "-f", path)
    client(aws).update_compute_environment(
        computeEnvironment="spot-ce", computeResources={"desiredvCpus": 8}
    )
    assert run("diff", "-f", path).code == 0
    pinned = ce().replace("    minvCpus: 0\n", "    minvCpus: 0\n    desiredvCpus: 4\n")
    assert "desiredvCpus: 4" in pinned
    assert run("diff", "-f", write(pinned, "pinned.yaml")).code == 0, "service-managed"
    tracked = pinned.replace("spec:\n", "spec:\n  trackDesiredvCpus: true\n")
    diff = run("diff", "-f", write(tracked, "tracked.yaml"))
    assert diff.code == 2 and "computeResources.desiredvCpus: 8 -> 4" in diff.out


def test_an_invalid_compute_environment_fails_the_apply_with_aws_reason(run, write, aws):
    broken = ce().replace(
        "    instanceRole: ecsInstanceRole\n",
        "    instanceRole: ecsInstanceRole\n"
        '    tags: {reconciler.io/sandbox-invalid: "no subnet capacity"}\n',
    )
    assert "sandbox-invalid" in broken
    applied = run("apply", "-f", write(stack(broken, jq())))
    assert applied.code == 1
    assert "spot-ce is INVALID: CLIENT_ERROR - no subnet capacity" in applied.out
    assert "skipped" in applied.out and "JobQueue/main-queue" in applied.out
