"""Job definition decisions: new revisions, re-tagging, and the revision history limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.aws.tags import ownership_tags
from reconciler.engine.context import Context
from reconciler.engine.planner import plan_resource
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.kinds.base import desired_tags, spec_dict
from reconciler.models.job_definition import JobDefinition

ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:{}"


def resource(limit: int = 5, image: str = "busybox:1", **spec: Any) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "kind": "JobDefinition",
            "metadata": {"name": "jd1", "labels": {"team": "genomics"}},
            "spec": {
                "containerProperties": {
                    "image": image,
                    "command": ["run"],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": 1},
                        {"type": "MEMORY", "value": 512},
                    ],
                },
                "revisionHistoryLimit": limit,
                **spec,
            },
        }
    )


def desired_of(res: JobDefinition) -> dict[str, Any]:
    spec = spec_dict(res)
    spec["tags"] = desired_tags(res, "default", spec.get("tags"))
    return spec


def live(res: JobDefinition, revisions: list[int]) -> Observed:
    """The latest ACTIVE revision as AWS describes it, with AWS's defaults filled in."""
    spec = copy.deepcopy(desired_of(res))
    spec.update(platformCapabilities=["EC2"], propagateTags=False)
    spec["containerProperties"].update(volumes=[], environment=[], mountPoints=[], ulimits=[])
    latest = max(revisions)
    return Observed(
        kind="JobDefinition",
        aws_name="jd1",
        arn=ARN.format(latest),
        spec=spec,
        owner=None,
        status="ACTIVE",
        revision=latest,
        extra={"revisions": [(r, ARN.format(r)) for r in sorted(revisions)]},
    )


def decide(ctx: Context, plan: Plan, res: JobDefinition, current: Observed) -> list[Action]:
    plan.desired[res.key] = res
    return plan_resource(ctx, plan, res, current, desired_of(res))


def test_unchanged_spec_within_the_limit_is_noop(ctx: Context, plan: Plan) -> None:
    (action,) = decide(ctx, plan, resource(), live(resource(), [1, 2, 3]))
    assert action.verb is Verb.NOOP
    assert action.run is None
    assert action.summary == "revision 3"


def test_spec_change_registers_a_new_revision(ctx: Context, plan: Plan) -> None:
    current = live(resource(image="busybox:1"), [1, 2])
    (action,) = decide(ctx, plan, resource(image="busybox:2"), current)
    assert action.verb is Verb.REVISION
    assert action.id == "JobDefinition/jd1"
    assert action.run is not None
    assert action.summary == "revision 3 (after 2)"
    assert [(c.path, c.old, c.new) for c in action.changes] == [
        ("containerProperties.image", "busybox:1", "busybox:2")
    ]


def test_local_history_limit_change_alone_registers_nothing(ctx: Context, plan: Plan) -> None:
    (action,) = decide(ctx, plan, resource(limit=10), live(resource(limit=3), [1, 2]))
    assert action.verb is Verb.NOOP


def test_tags_only_is_an_update_of_the_latest_revision(ctx: Context, plan: Plan) -> None:
    current = live(resource(), [1, 2, 3])
    current.spec["tags"] = {**current.spec["tags"], "team": "old"}
    (action,) = decide(ctx, plan, resource(), current)
    assert action.verb is Verb.UPDATE
    assert action.summary == "tags of revision 3"
    assert [c.path for c in action.changes] == ["tags.team"]
    assert action.run is not None


def test_history_limit_deregisters_oldest_after_the_registration(ctx: Context, plan: Plan) -> None:
    # Three ACTIVE revisions plus the new one, limit 2: revisions 1 and 2 go.
    current = live(resource(limit=2, image="busybox:1"), [1, 2, 3])
    actions = decide(ctx, plan, resource(limit=2, image="busybox:2"), current)
    assert [a.verb for a in actions] == [Verb.REVISION, Verb.DELETE]
    register, history = actions
    assert history.after == {register.id}
    assert history.id != register.id
    assert history.run is not None
    assert "deregister revisions 1, 2" in history.summary
    assert "revisionHistoryLimit 2" in history.summary


def test_history_limit_run_deregisters_exactly_the_oldest(
    ctx: Context, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = live(resource(limit=2, image="busybox:1"), [4, 7, 9])
    _, history = decide(ctx, plan, resource(limit=2, image="busybox:2"), current)

    calls: list[str] = []

    class FakeBatch:
        def deregister_job_definition(self, jobDefinition: str) -> None:
            calls.append(jobDefinition)

        def untag_resource(self, resourceArn: str, tagKeys: list[str]) -> None:
            calls.append(f"untag {resourceArn} {sorted(tagKeys)}")

    monkeypatch.setattr(ctx.aws, "client", lambda _service: FakeBatch())  # no AWS call
    assert history.run is not None
    assert history.run(ctx) == "2 revisions deregistered"
    keys = sorted(ownership_tags("", ""))
    assert calls == [
        ARN.format(4),
        f"untag {ARN.format(4)} {keys}",  # after: an untagged ACTIVE revision would be lost
        ARN.format(7),
        f"untag {ARN.format(7)} {keys}",
    ]


def test_history_at_the_limit_with_a_new_revision_drops_one(ctx: Context, plan: Plan) -> None:
    current = live(resource(limit=3, image="busybox:1"), [1, 2, 3])
    _, history = decide(ctx, plan, resource(limit=3, image="busybox:2"), current)
    assert history.summary.startswith("deregister revision 1 ")


def test_limit_one_replaces_the_only_revision(ctx: Context, plan: Plan) -> None:
    current = live(resource(limit=1, image="busybox:1"), [5])
    register, history = decide(ctx, plan, resource(limit=1, image="busybox:2"), current)
    assert register.verb is Verb.REVISION
    assert "deregister revision 5 " in history.summary
    assert history.after == {register.id}


def test_within_the_limit_no_history_action(ctx: Context, plan: Plan) -> None:
    current = live(resource(limit=5, image="busybox:1"), [1, 2, 3, 4])
    actions = decide(ctx, plan, resource(limit=5, image="busybox:2"), current)
    assert [a.verb for a in actions] == [Verb.REVISION]


def test_no_change_but_too_many_revisions_only_deregisters(ctx: Context, plan: Plan) -> None:
    current = live(resource(limit=2), [1, 2, 3, 4])
    actions = decide(ctx, plan, resource(limit=2), current)
    assert [a.verb for a in actions] == [Verb.NOOP, Verb.DELETE]
    noop, history = actions
    assert noop.run is None  # nothing registered
    assert history.after == set()  # nothing to wait for
    assert "deregister revisions 1, 2 " in history.summary


def test_tags_only_with_too_many_revisions_waits_for_the_retag(ctx: Context, plan: Plan) -> None:
    current = live(resource(limit=1), [1, 2])
    current.spec["tags"] = {}
    actions = decide(ctx, plan, resource(limit=1), current)
    assert [a.verb for a in actions] == [Verb.UPDATE, Verb.DELETE]
    assert actions[1].after == {actions[0].id}
    assert "deregister revision 1 " in actions[1].summary
