"""`spec.deletionPolicy`, one field for every kind, honoured by `delete`, `apply --prune` and
the operator alike; a bucket's default is Retain, every other kind's Delete."""

from __future__ import annotations

from tests import stacks
from tests.conftest import client
from tests.integration.test_bucket import bucket


def _buckets(aws: str) -> set[str]:
    return {b["Name"] for b in client(aws, "s3").list_buckets()["Buckets"]}


def test_a_pruned_bucket_is_retained_by_default_and_shown_so(run, write, aws):
    kept = write(bucket(name="kept-bkt", policy="Retain").replace("  deletionPolicy: Retain\n", ""))
    other = write(bucket(name="other-bkt", policy="Delete"), name="other.yaml")
    assert run("apply", "-f", kept, "-f", other).code == 0

    pruned = run("apply", "-f", other, "--prune", "--yes")
    assert pruned.code == 0, pruned.out + pruned.err
    assert "retain in AWS: deletionPolicy Retain: kept-bkt stays in AWS" in pruned.out, pruned.out
    assert "1 retained in AWS" in pruned.out
    assert "kept-bkt" in _buckets(aws)
    # Retaining is not a change: a re-run shows it again and `diff` exits 0.
    assert run("diff", "-f", other, "--prune").code == 0


def test_a_recorded_delete_policy_lets_prune_delete_the_bucket(run, write, aws):
    gone = write(bucket(name="gone-bkt", policy="Delete"))
    other = write(bucket(name="other-bkt", policy="Delete"), name="other.yaml")
    assert run("apply", "-f", gone, "-f", other).code == 0
    tags = client(aws, "s3").get_bucket_tagging(Bucket="gone-bkt")["TagSet"]
    assert {"Key": "reconciler.io/deletion-policy", "Value": "Delete"} in tags

    pruned = run("apply", "-f", other, "--prune", "--yes")
    assert pruned.code == 0, pruned.out + pruned.err
    assert "gone-bkt" not in _buckets(aws)


def test_retain_on_a_batch_kind_leaves_it_in_aws(run, write, aws):
    queue = stacks.jq().replace("spec:\n", "spec:\n  deletionPolicy: Retain\n", 1)
    path = write(stacks.stack(stacks.ce(), queue))
    kept_ce = stacks.ce().replace("spec:\n", "spec:\n  deletionPolicy: Retain\n", 1)
    both_kept = write(stacks.stack(kept_ce, queue), name="kept.yaml")
    assert run("apply", "-f", path).code == 0

    # The retained queue still uses its environment: deleting that is refused before any write.
    both = run("delete", "--yes", "-f", path)
    assert both.code == 1, both.out + both.err
    assert "refused: still used by JobQueue main-queue" in both.out, both.out
    assert "JobQueue/main-queue" in both.out and "retain in AWS" in both.out
    assert both.calls.get("batch:UpdateJobQueue") is None

    deleted = run("delete", "--yes", "-f", both_kept)
    assert deleted.code == 0, deleted.out + deleted.err
    assert "2 retained in AWS" in deleted.out
    [q] = client(aws, "batch").describe_job_queues(jobQueues=["main-queue"])["jobQueues"]
    assert q["state"] == "ENABLED"  # not even disabled


def test_an_unset_policy_adds_no_tag(run, write, aws):
    path = write(stacks.stack(stacks.ce()))
    assert run("apply", "-f", path).code == 0
    [ce] = client(aws, "batch").describe_compute_environments(computeEnvironments=["spot-ce"])[
        "computeEnvironments"
    ]
    assert "reconciler.io/deletion-policy" not in ce["tags"]
