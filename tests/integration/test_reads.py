"""Reads at the floor: what a stack owns is found by its tags, whatever else the account holds."""

from __future__ import annotations

from reconciler.kinds.job_definition import JobDefinitionKind
from tests.conftest import client
from tests.stacks import ce, jd, jq, stack

CONTAINER = {"image": "busybox", "vcpus": 1, "memory": 128}


def _others(aws: str, n: int) -> None:
    """Another team's job definitions in the same account, untagged by us."""
    batch = client(aws)
    for i in range(n):
        batch.register_job_definition(
            jobDefinitionName=f"other-{i:03d}", type="container", containerProperties=CONTAINER
        )


def test_a_noop_reapply_reads_a_few_pages_whatever_the_account_holds(run, write, aws):
    _others(aws, 30)
    path = write(stack(ce(), jq(), *(jd(f"def-{i:02d}") for i in range(12))))
    assert run("apply", "-f", path).code == 0
    again = run("apply", "-f", path)
    assert again.code == 0 and "No changes" in again.out
    assert again.writes == 0
    # 12 owned definitions: one tagging page, one DescribeJobDefinitions by ARN (with the
    # next-revision probes), one listing per other kind; no read per definition name.
    assert again.calls["resourcegroupstaggingapi:GetResources"] == 1, again.calls
    assert again.calls["batch:DescribeJobDefinitions"] == 1, again.calls
    batch_reads = sum(n for k, n in again.calls.items() if k.startswith("batch:"))
    assert batch_reads <= 3, again.calls


def test_a_revision_the_tagging_index_does_not_show_yet_is_still_found(
    run, write, aws, monkeypatch
):
    """The tagging index lags in AWS: the next revision is asked for by name:revision."""
    path = write(jd())
    assert run("apply", "-f", path).code == 0
    assert run("apply", "-f", write(jd(image="busybox:2"))).code == 0  # revision 2
    original = JobDefinitionKind._owned_revisions

    def lagging(self, ctx):  # type: ignore[no-untyped-def]
        return {
            name: [a for a in arns if not a.endswith(":2")]
            for name, arns in original(self, ctx).items()
        }

    monkeypatch.setattr(JobDefinitionKind, "_owned_revisions", lagging)
    again = run("apply", "-f", write(jd(image="busybox:2")))
    assert again.code == 0 and "No changes" in again.out, again.out
    assert again.calls.get("batch:RegisterJobDefinition", 0) == 0


def test_a_revision_registered_by_hand_is_drift_not_a_conflict(run, write, aws):
    path = write(jd())
    assert run("apply", "-f", path).code == 0
    client(aws).register_job_definition(
        jobDefinitionName="leader",
        type="container",
        containerProperties={**CONTAINER, "image": "hand-made"},
    )
    plan = run("diff", "-f", path)
    assert plan.code == 2, plan.out
    assert "revision 2 was registered outside reconciler" in plan.out
    applied = run("apply", "-f", path)
    assert applied.code == 0 and applied.calls["batch:RegisterJobDefinition"] == 1
    latest = client(aws).describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    newest = max(latest["jobDefinitions"], key=lambda d: d["revision"])
    assert newest["revision"] == 3 and newest["containerProperties"]["image"] != "hand-made"
    assert run("apply", "-f", path).writes == 0


def test_a_no_op_reads_the_same_however_many_revisions_were_retired(run, write, aws):
    """Revisions deregistered beyond revisionHistoryLimit lose the ownership tags, so the
    tagging API stops listing them: a definition's history does not grow a no-op's reads."""
    names = [f"def-{i:02d}" for i in range(60)]

    def defs(image: str) -> str:
        return write(stack(*(jd(n, image=image, limit=1) for n in names)))

    assert run("apply", "-f", defs("busybox:1")).code == 0
    first = run("apply", "-f", defs("busybox:1"))
    for i in range(2, 5):
        assert run("apply", "-f", defs(f"busybox:{i}")).code == 0
    later = run("apply", "-f", defs("busybox:4"))
    assert later.writes == 0 and "No changes" in later.out
    reads = ("resourcegroupstaggingapi:GetResources", "batch:DescribeJobDefinitions")
    assert {k: later.calls[k] for k in reads} == {k: first.calls[k] for k in reads}
    retired = client(aws).describe_job_definitions(jobDefinitions=["def-00:1", "def-00:3"])
    assert [(d["revision"], d["status"]) for d in retired["jobDefinitions"]] == [
        (1, "INACTIVE"),
        (3, "INACTIVE"),
    ]
    assert all(
        not k.startswith("reconciler.io/") for d in retired["jobDefinitions"] for k in d["tags"]
    )
    # 60 names: one tagging page, and 60 owned revisions plus 60 next-revision probes.
    assert later.calls["resourcegroupstaggingapi:GetResources"] == 1
    assert later.calls["batch:DescribeJobDefinitions"] == 2
