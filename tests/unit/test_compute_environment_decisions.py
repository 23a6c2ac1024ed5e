"""How a compute environment change is carried out: scaling, infrastructure update, replace."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from reconciler.engine.context import Context
from reconciler.engine.planner import plan_resource
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.kinds.base import desired_tags, spec_dict
from reconciler.kinds.compute_environment import derived_name
from reconciler.models.compute_environment import ComputeEnvironment

ROLE = "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"
SERVICE_LINKED = (
    "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
)


def resource(name: str = "ce1", **compute: Any) -> ComputeEnvironment:
    cr = {
        "type": "EC2",
        "allocationStrategy": "BEST_FIT_PROGRESSIVE",
        "minvCpus": 0,
        "maxvCpus": 16,
        "instanceTypes": ["c5", "m5"],
        "subnets": ["subnet-0a"],
        "instanceRole": ROLE,
    }
    cr.update(compute)
    cr = {k: v for k, v in cr.items() if v is not None}
    return ComputeEnvironment.model_validate(
        {
            "kind": "ComputeEnvironment",
            "metadata": {"name": name, "labels": {"team": "genomics"}},
            "spec": {"computeResources": cr},
        }
    )


def desired_of(res: ComputeEnvironment) -> dict[str, Any]:
    """What the handler's `desired` returns when nothing needs resolving (IDs and ARNs given)."""
    spec = spec_dict(res)
    spec["tags"] = desired_tags(res, "default", spec.get("tags"))
    return spec


def observed(spec: dict[str, Any], aws_name: str = "ce1") -> Observed:
    return Observed(
        kind="ComputeEnvironment",
        aws_name=aws_name,
        arn=f"arn:aws:batch:us-east-1:123456789012:compute-environment/{aws_name}",
        spec=copy.deepcopy(spec),
        owner=None,
        status="VALID",
    )


def decide(
    ctx: Context,
    plan: Plan,
    res: ComputeEnvironment,
    current: Observed,
) -> list[Action]:
    plan.desired[res.key] = res
    return plan_resource(ctx, plan, res, current, desired_of(res))


def live(res: ComputeEnvironment, aws_name: str = "ce1", **extra: Any) -> Observed:
    """The live environment as AWS would describe it for `res`, with AWS's additions."""
    spec = desired_of(res)
    spec["serviceRole"] = SERVICE_LINKED
    spec["computeResources"]["desiredvCpus"] = 2
    spec.update(extra)
    return observed(spec, aws_name)


def test_no_changes_is_noop(ctx: Context, plan: Plan) -> None:
    res = resource()
    actions = decide(ctx, plan, res, live(res))
    assert len(actions) == 1
    (action,) = actions
    assert action.verb is Verb.NOOP
    assert action.changes == []
    assert action.run is None
    assert plan.targets[res.key] == "ce1"


def test_max_vcpus_change_is_a_scaling_update(ctx: Context, plan: Plan) -> None:
    current = live(resource(maxvCpus=16))
    actions = decide(ctx, plan, resource(maxvCpus=64), current)
    assert len(actions) == 1
    action = actions[0]
    assert action.verb is Verb.UPDATE
    assert "scaling update" in action.summary
    assert [c.path for c in action.changes] == ["computeResources.maxvCpus"]
    assert action.run is not None
    assert action.aws_name == "ce1"


def test_scaling_update_with_bestfit_is_still_in_place(ctx: Context, plan: Plan) -> None:
    # Scaling never needs a progressive strategy.
    current = live(resource(allocationStrategy="BEST_FIT", maxvCpus=16))
    (action,) = decide(ctx, plan, resource(allocationStrategy="BEST_FIT", maxvCpus=32), current)
    assert action.verb is Verb.UPDATE
    assert "scaling update" in action.summary


@pytest.mark.parametrize("service_role", [None, SERVICE_LINKED], ids=["absent", "service-linked"])
def test_instance_types_with_progressive_strategy_is_an_infrastructure_update(
    ctx: Context, plan: Plan, service_role: str | None
) -> None:
    current = live(resource(instanceTypes=["c5", "m5"]))
    if service_role is None:
        current.spec.pop("serviceRole")
    actions = decide(ctx, plan, resource(instanceTypes=["c6i", "m6i"]), current)
    assert len(actions) == 1
    action = actions[0]
    assert action.verb is Verb.UPDATE
    assert "infrastructure update" in action.summary
    assert [c.path for c in action.changes] == ["computeResources.instanceTypes"]
    assert plan.targets[("ComputeEnvironment", "ce1")] == "ce1"


def test_launch_template_version_is_an_infrastructure_update(ctx: Context, plan: Plan) -> None:
    old = resource(launchTemplate={"launchTemplateName": "lt", "version": "1"})
    new = resource(launchTemplate={"launchTemplateName": "lt", "version": "2"})
    (action,) = decide(ctx, plan, new, live(old))
    assert action.verb is Verb.UPDATE
    assert "infrastructure update" in action.summary
    assert [c.path for c in action.changes] == ["computeResources.launchTemplate.version"]


def test_custom_service_role_forces_replacement_of_infrastructure(ctx: Context, plan: Plan) -> None:
    current = live(resource(), serviceRole="arn:aws:iam::123456789012:role/MyBatchRole")
    actions = decide(ctx, plan, resource(instanceTypes=["c6i"]), current)
    assert [a.verb for a in actions] == [Verb.REPLACE, Verb.DELETE]
    assert "service-linked role" in actions[0].summary


def test_instance_types_with_best_fit_is_a_replacement(ctx: Context, plan: Plan) -> None:
    current = live(resource(allocationStrategy="BEST_FIT", instanceTypes=["c5"]))
    res = resource(allocationStrategy="BEST_FIT", instanceTypes=["m5"])
    actions = decide(ctx, plan, res, current)
    assert [a.verb for a in actions] == [Verb.REPLACE, Verb.DELETE]
    replace, retire = actions

    assert re.fullmatch(r"ce1-[0-9a-f]{6}", replace.aws_name)
    assert replace.id == "ComputeEnvironment/ce1"
    assert replace.run is not None
    assert [c.path for c in replace.changes] == ["computeResources.instanceTypes"]
    assert replace.aws_name in replace.summary and "ce1" in replace.summary
    assert plan.targets[res.key] == replace.aws_name

    assert retire.aws_name == "ce1"
    assert retire.name == "ce1"
    assert retire.id != replace.id
    assert retire.after == {replace.id}
    assert retire.run is not None
    assert replace.aws_name in retire.summary


def test_derived_name_is_stable_for_the_same_desired_spec(ctx: Context) -> None:
    def name_for(res: ComputeEnvironment, current: Observed) -> str:
        plan = Plan(stack="default", region="us-east-1")
        replace, _ = decide(ctx, plan, res, current)
        return replace.aws_name

    current = live(resource(allocationStrategy="BEST_FIT", instanceTypes=["c5"]))
    first = name_for(resource(allocationStrategy="BEST_FIT", instanceTypes=["m5", "r5"]), current)
    again = name_for(resource(allocationStrategy="BEST_FIT", instanceTypes=["m5", "r5"]), current)
    reordered = name_for(
        resource(allocationStrategy="BEST_FIT", instanceTypes=["r5", "m5"]), current
    )
    other = name_for(resource(allocationStrategy="BEST_FIT", instanceTypes=["m6i"]), current)
    assert first == again == reordered  # set order is not part of the spec
    assert other != first


def test_derived_name_ignores_tags_and_avoids_taken_names() -> None:
    spec = desired_of(resource())
    relabelled = {**spec, "tags": {"other": "tag"}}
    name = derived_name("ce1", spec, set())
    assert derived_name("ce1", relabelled, set()) == name
    assert re.fullmatch(r"ce1-[0-9a-f]{6}", name)
    other = derived_name("ce1", spec, {name})
    assert other != name
    assert re.fullmatch(r"ce1-[0-9a-f]{6}", other)


def test_derived_name_avoids_names_live_in_the_account(ctx: Context) -> None:
    res = resource(allocationStrategy="BEST_FIT", instanceTypes=["m5"])
    current = live(resource(allocationStrategy="BEST_FIT", instanceTypes=["c5"]))
    free = derived_name("ce1", desired_of(res), set())
    plan = Plan(stack="default", region="us-east-1")
    plan.observed_all["ComputeEnvironment"] = [current, observed(current.spec, free)]
    replace, _ = decide(ctx, plan, res, current)
    assert replace.aws_name != free


def test_compute_type_change_is_a_replacement_even_when_progressive(
    ctx: Context, plan: Plan
) -> None:
    current = live(resource(type="EC2", allocationStrategy="SPOT_CAPACITY_OPTIMIZED"))
    res = resource(type="SPOT", allocationStrategy="SPOT_CAPACITY_OPTIMIZED")
    actions = decide(ctx, plan, res, current)
    assert [a.verb for a in actions] == [Verb.REPLACE, Verb.DELETE]
    assert "computeResources.type" in actions[0].summary
    assert "cannot change in place" in actions[0].summary
    assert actions[1].after == {actions[0].id}


def test_placement_group_is_immutable(ctx: Context, plan: Plan) -> None:
    current = live(resource())
    actions = decide(ctx, plan, resource(placementGroup="pg"), current)
    assert actions[0].verb is Verb.REPLACE


def test_tags_only_is_an_update(ctx: Context, plan: Plan) -> None:
    current = live(resource())
    current.spec["tags"] = {**current.spec["tags"], "team": "other", "stale": "x"}
    (action,) = decide(ctx, plan, resource(), current)
    assert action.verb is Verb.UPDATE
    assert action.summary == "tags only"
    assert [c.path for c in action.changes] == ["tags.stale", "tags.team"]
    assert action.run is not None


def test_tags_on_a_best_fit_environment_never_replace(ctx: Context, plan: Plan) -> None:
    current = live(resource(allocationStrategy="BEST_FIT"))
    current.spec["tags"] = {}
    (action,) = decide(ctx, plan, resource(allocationStrategy="BEST_FIT"), current)
    assert action.verb is Verb.UPDATE
    assert action.summary == "tags only"


def test_instance_tags_are_infrastructure(ctx: Context, plan: Plan) -> None:
    current = live(resource(allocationStrategy="BEST_FIT"))
    actions = decide(
        ctx, plan, resource(allocationStrategy="BEST_FIT", tags={"Name": "w"}), current
    )
    assert actions[0].verb is Verb.REPLACE


def test_desired_vcpus_moved_by_batch_is_not_a_change(ctx: Context, plan: Plan) -> None:
    current = live(resource(maxvCpus=16))
    current.spec["computeResources"]["desiredvCpus"] = 9
    (action,) = decide(ctx, plan, resource(maxvCpus=16, desiredvCpus=0), current)
    assert action.verb is Verb.NOOP


def test_tracked_desired_vcpus_is_a_scaling_update(ctx: Context, plan: Plan) -> None:
    res = ComputeEnvironment.model_validate(
        {
            **resource(desiredvCpus=4).model_dump(mode="json", exclude_none=True),
            "spec": {
                **resource(desiredvCpus=4).spec.model_dump(mode="json", exclude_none=True),
                "trackDesiredvCpus": True,
            },
        }
    )
    current = live(resource())  # desiredvCpus 2 in AWS
    (action,) = decide(ctx, plan, res, current)
    assert action.verb is Verb.UPDATE
    assert [c.path for c in action.changes] == ["computeResources.desiredvCpus"]
    assert "scaling update" in action.summary


@pytest.mark.parametrize(
    ("edit", "summary"),
    [
        ({"state": "DISABLED"}, "scaling update"),
        ({"updatePolicy": {"terminateJobsOnUpdate": True}}, "update in place"),
    ],
)
def test_other_in_place_updates(
    ctx: Context, plan: Plan, edit: dict[str, Any], summary: str
) -> None:
    base = resource()
    res = ComputeEnvironment.model_validate(
        {
            **base.model_dump(mode="json", exclude_none=True),
            "spec": {**base.spec.model_dump(mode="json", exclude_none=True), **edit},
        }
    )
    (action,) = decide(ctx, plan, res, live(base))
    assert action.verb is Verb.UPDATE
    assert summary in action.summary
