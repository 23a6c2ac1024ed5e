"""Rendering plans and state: pure functions of a Plan."""

from __future__ import annotations

import json

from reconciler.engine.apply import Outcome
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.models.compute_environment import ComputeEnvironment
from reconciler.models.job_definition import JobDefinition
from reconciler.models.job_queue import JobQueue
from reconciler.render import plans as render

CE = "ComputeEnvironment"
JQ = "JobQueue"
JD = "JobDefinition"


def ce(name: str) -> ComputeEnvironment:
    return ComputeEnvironment.model_validate(
        {
            "kind": CE,
            "metadata": {"name": name},
            "spec": {
                "computeResources": {
                    "type": "FARGATE",
                    "maxvCpus": 4,
                    "subnets": ["subnet-0a"],
                }
            },
        }
    )


def jq(name: str) -> JobQueue:
    return JobQueue.model_validate(
        {
            "kind": JQ,
            "metadata": {"name": name},
            "spec": {
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "x"}],
            },
        }
    )


def jd(name: str) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "kind": JD,
            "metadata": {"name": name},
            "spec": {"containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512}},
        }
    )


def live(kind: str, aws_name: str, **kw: object) -> Observed:
    return Observed(
        kind=kind,
        aws_name=aws_name,
        arn=f"arn:aws:batch:us-east-1:123456789012:{kind.lower()}/{aws_name}",
        spec={"state": "ENABLED"},
        owner=None,
        status="VALID",
        **kw,  # type: ignore[arg-type]
    )


def sample_plan() -> Plan:
    plan = Plan(stack="prod", region="eu-west-1")
    plan.add(Action(id=f"{CE}/new", kind=CE, name="new", verb=Verb.CREATE, aws_name="new"))
    plan.add(
        Action(
            id=f"{CE}/spot",
            kind=CE,
            name="spot",
            verb=Verb.REPLACE,
            aws_name="spot-1a2b3c",
            summary="blue/green",
            changes=[Change("computeResources.instanceTypes", ["c5"], ["m5"])],
        )
    )
    plan.add(
        Action(
            id=f"{CE}/spot#delete:spot",
            kind=CE,
            name="spot",
            verb=Verb.DELETE,
            aws_name="spot",
            summary="replaced by spot-1a2b3c",
            after={f"{CE}/spot"},
        )
    )
    plan.add(
        Action(
            id=f"{JQ}/q",
            kind=JQ,
            name="q",
            verb=Verb.UPDATE,
            aws_name="q",
            summary="in place",
            changes=[Change("priority", 1, 5), Change("tags.team", None, "x")],
            notes=["jobs keep running"],
        )
    )
    plan.add(Action(id=f"{JD}/same", kind=JD, name="same", verb=Verb.NOOP, aws_name="same"))
    plan.add(
        Action(
            id=f"{JD}/jd",
            kind=JD,
            name="jd",
            verb=Verb.REVISION,
            aws_name="jd",
            changes=[Change("containerProperties.image", "a", "b")],
        )
    )
    plan.add(
        Action(id=f"{JQ}/theirs", kind=JQ, name="theirs", verb=Verb.CONFLICT, aws_name="theirs")
    )
    return plan


def test_plan_lines_show_symbols_changes_and_summary() -> None:
    lines = render.plan_lines(sample_plan())
    assert lines[0] == "Plan for stack 'prod' in eu-west-1:"
    text = "\n".join(lines)
    width = len("ComputeEnvironment/spot (spot-1a2b3c)")
    assert f"    + {'ComputeEnvironment/new':<{width}}  create" in lines
    assert f"  -/+ {'ComputeEnvironment/spot (spot-1a2b3c)':<{width}}  replace: blue/green" in lines
    assert f"    - {'ComputeEnvironment/spot':<{width}}  delete: replaced by spot-1a2b3c" in lines
    assert f"    ~ {'JobQueue/q':<{width}}  update in place: in place" in lines
    assert f"    + {'JobDefinition/jd':<{width}}  new revision" in lines
    assert f"    ! {'JobQueue/theirs':<{width}}  conflict" in lines
    assert '        computeResources.instanceTypes: ["c5"] -> ["m5"]' in lines
    assert "        priority: 1 -> 5" in lines
    assert "        tags.team: (unset) -> x" in lines
    assert "        containerProperties.image: a -> b" in lines
    assert "        note: jobs keep running" in lines
    assert "JobDefinition/same" not in text  # NOOPs hidden by default
    assert lines[-1] == (
        "Plan: 1 to create, 1 to update, 1 to replace, 1 new revision, 1 to delete, "
        "1 conflict, 1 unchanged."
    )


def test_changes_follow_their_action() -> None:
    lines = render.plan_lines(sample_plan())
    at = next(i for i, line in enumerate(lines) if "JobQueue/q " in line)
    assert lines[at + 1 : at + 4] == [
        "        priority: 1 -> 5",
        "        tags.team: (unset) -> x",
        "        note: jobs keep running",
    ]


def test_plan_lines_show_noop_on_request() -> None:
    lines = render.plan_lines(sample_plan(), show_noop=True)
    assert any(line.strip().startswith("= JobDefinition/same") for line in lines)
    assert any(line.rstrip().endswith("no changes") for line in lines)


def test_plan_without_changes() -> None:
    plan = Plan(stack="default", region="us-east-1")
    plan.add(Action(id=f"{JD}/a", kind=JD, name="a", verb=Verb.NOOP))
    assert render.plan_lines(plan) == [
        "Plan for stack 'default' in us-east-1:",
        "  No changes: AWS matches the manifests.",
        "Plan: 1 unchanged.",
    ]
    assert render.summary_line(Plan(stack="s", region="r")) == "Plan: nothing declared."


def test_plan_data_is_json_serialisable() -> None:
    data = render.plan_data(sample_plan())
    assert data["hasChanges"] is True
    assert [a["action"] for a in data["actions"]][:3] == ["create", "replace", "delete"]
    assert data["actions"][2]["after"] == [f"{CE}/spot"]
    assert json.loads(render.dump(data, "json")) == data
    assert "stack: prod" in render.dump(data, "yaml")


def test_state_rows_sync_column() -> None:
    plan = Plan(stack="default", region="us-east-1")
    resources = {
        "missing": ce("missing"),
        "insync": ce("insync"),
        "drift1": ce("drift1"),
        "replaced": ce("replaced"),
        "theirs": jq("theirs"),
        "history": jd("history"),
        "undecided": jd("undecided"),
    }
    plan.desired = {r.key: r for r in resources.values()}
    plan.add(Action(id=f"{CE}/missing", kind=CE, name="missing", verb=Verb.CREATE))
    plan.add(Action(id=f"{CE}/insync", kind=CE, name="insync", verb=Verb.NOOP))
    plan.observed[(CE, "insync")] = live(CE, "insync")
    plan.add(
        Action(
            id=f"{CE}/drift1",
            kind=CE,
            name="drift1",
            verb=Verb.UPDATE,
            changes=[Change("computeResources.maxvCpus", 4, 8)],
        )
    )
    plan.observed[(CE, "drift1")] = live(CE, "drift1")
    plan.add(
        Action(
            id=f"{CE}/replaced",
            kind=CE,
            name="replaced",
            verb=Verb.REPLACE,
            aws_name="replaced-abcdef",
            changes=[Change("computeResources.type", "EC2", "SPOT"), Change("tags.a", None, "b")],
        )
    )
    plan.add(
        Action(
            id=f"{CE}/replaced#delete:replaced",
            kind=CE,
            name="replaced",
            verb=Verb.DELETE,
            aws_name="replaced",
        )
    )
    plan.observed[(CE, "replaced")] = live(CE, "replaced")
    plan.add(Action(id=f"{JQ}/theirs", kind=JQ, name="theirs", verb=Verb.CONFLICT))
    plan.add(Action(id=f"{JD}/history", kind=JD, name="history", verb=Verb.NOOP))
    plan.add(Action(id=f"{JD}/history#history", kind=JD, name="history", verb=Verb.DELETE))
    plan.observed[(JD, "history")] = live(JD, "history", revision=7)
    # "undecided": declared but no action at all.

    rows = {r["name"]: r for r in render.state_rows(plan)}
    assert list(rows) == list(resources)
    assert {n: r["sync"] for n, r in rows.items()} == {
        "missing": "missing",
        "insync": "in sync",
        "drift1": "drift (1 field)",
        "replaced": "drift (2 fields)",
        "theirs": "conflict",
        "history": "changes pending",
        "undecided": "missing",
    }
    assert rows["missing"]["awsName"] is None and rows["missing"]["arn"] is None
    assert rows["insync"]["awsName"] == "insync"
    assert rows["insync"]["status"] == "VALID"
    assert rows["insync"]["state"] == "ENABLED"
    assert rows["insync"]["drift"] == []
    assert rows["drift1"]["drift"] == [{"path": "computeResources.maxvCpus", "old": 4, "new": 8}]
    assert rows["replaced"]["awsName"] == "replaced"  # what lives now, not the target
    assert rows["history"]["revision"] == 7
    assert rows["history"]["kind"] == JD


def test_table_aligns_columns_and_dashes_missing_values() -> None:
    rows = [{"name": "a", "sync": "in sync"}, {"name": "longer", "sync": None}]
    assert render.table(rows, ["name", "sync"]) == [
        "NAME    SYNC",
        "a       in sync",
        "longer  -",
    ]


def test_outcome_lines() -> None:
    a = Action(id=f"{CE}/x", kind=CE, name="x", verb=Verb.CREATE, aws_name="x")
    done = Outcome(a, "done", "x VALID", 12.34)
    failed = Outcome(a, "failed", "boom")
    assert render.outcome_line(done) == "  done      + ComputeEnvironment/x: x VALID (12.3s)"
    assert render.outcome_line(failed) == "  failed    + ComputeEnvironment/x: boom"
    assert render.outcome_summary([done], 1.0) == (
        "Apply complete: 1 done, 0 failed, 0 skipped in 1.0s."
    )
    assert render.outcome_summary([done, failed], 2.0).startswith("Apply FAILED: 1 done, 1 failed")


def test_get_prints_one_table_per_kind_with_the_columns_it_declares() -> None:
    plan = Plan(stack="default", region="us-east-1")
    plan.desired = {r.key: r for r in (ce("c1"), jd("d1"))}
    plan.add(Action(id=f"{CE}/c1", kind=CE, name="c1", verb=Verb.NOOP))
    plan.add(Action(id=f"{JD}/d1", kind=JD, name="d1", verb=Verb.NOOP))
    plan.observed[(JD, "d1")] = Observed(
        kind=JD, aws_name="d1", arn="arn:d1:7", spec={}, owner=None, status="ACTIVE", revision=7
    )
    lines = render.kind_tables(render.state_rows(plan))
    assert lines[0] == "ComputeEnvironment:"
    assert lines[1].split() == ["NAME", "AWS", "NAME", "STATUS", "STATE", "READY", "SYNC"]
    assert lines[2].split() == ["c1", "-", "-", "-", "False", "in", "sync"]
    d1 = lines.index("JobDefinition:")
    assert "REVISION" in lines[d1 + 1]
    assert lines[d1 + 2].split() == ["d1", "d1", "ACTIVE", "7", "True", "in", "sync"]
