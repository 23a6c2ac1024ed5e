"""SchedulingPolicy, the kind added by docs/adding-a-kind.md, over HTTP to moto."""

from __future__ import annotations

from tests.conftest import client, tags_of


def policy(
    name: str = "fair", weight: float = 1.0, reservation: int = 10, labels: str = "{}"
) -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: SchedulingPolicy
metadata:
  name: {name}
  labels: {labels}
spec:
  fairsharePolicy:
    shareDecaySeconds: 3600
    computeReservation: {reservation}
    shareDistribution:
      - {{shareIdentifier: teamA, weightFactor: {weight}}}
      - {{shareIdentifier: teamB}}
"""


def _described(aws: str, name: str) -> dict:
    batch = client(aws)
    arns = [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]]
    found = batch.describe_scheduling_policies(arns=arns)["schedulingPolicies"]
    return next(p for p in found if p["name"] == name)


def test_create_reapply_update_and_delete(run, write, aws):
    path = write(policy(labels="{team: genomics}"))
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    assert "Plan: 1 to create." in first.out
    live = _described(aws, "fair")
    assert live["fairsharePolicy"]["computeReservation"] == 10
    tags = tags_of(aws, live["arn"])
    assert tags["reconciler.io/stack"] == "default" and tags["team"] == "genomics"

    again = run("apply", "-f", path)
    assert again.code == 0 and "No changes" in again.out
    assert again.writes == 0, again.calls

    changed = write(policy(weight=0.5, reservation=20, labels="{team: genomics}"))
    diff = run("diff", "-f", changed)
    assert diff.code == 2
    assert "fairsharePolicy.computeReservation: 10 -> 20" in diff.out
    assert "fairsharePolicy.shareDistribution" in diff.out
    updated = run("apply", "-f", changed)
    assert updated.code == 0, updated.out
    assert updated.calls.get("batch:UpdateSchedulingPolicy") == 1
    assert updated.calls.get("batch:CreateSchedulingPolicy", 0) == 0
    policy_now = _described(aws, "fair")["fairsharePolicy"]
    assert policy_now["computeReservation"] == 20
    assert run("apply", "-f", changed).writes == 0

    shown = run("get", "-f", changed, "-o", "json")
    assert shown.code == 0 and '"SchedulingPolicy"' in shown.out

    gone = run("delete", "--yes", "-f", changed)
    assert gone.code == 0, gone.out
    assert gone.calls.get("batch:DeleteSchedulingPolicy") == 1
    names = [
        p["arn"].rsplit("/", 1)[-1]
        for p in client(aws).list_scheduling_policies()["schedulingPolicies"]
    ]
    assert "fair" not in names


def test_an_unowned_policy_of_the_same_name_is_a_conflict(run, write, aws):
    client(aws).create_scheduling_policy(name="theirs", fairsharePolicy={"computeReservation": 5})
    path = write(policy(name="theirs"))
    plan = run("apply", "-f", path)
    assert plan.code == 1
    assert "use --adopt to take it over" in plan.out
    assert plan.writes == 0
    deleted = run("delete", "--yes", "-f", path)
    assert deleted.code == 0 and deleted.writes == 0
    assert _described(aws, "theirs")["fairsharePolicy"]["computeReservation"] == 5
