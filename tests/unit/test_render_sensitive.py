"""Every rendering of a plan and of live state shows a changed secret as a change, never its
value: text, JSON, YAML, the pull-request markdown and `get`'s rows and drift lines. The
changes come from the real diff, as the planner makes them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.engine.diff import diff
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.models.job_definition import JobDefinition, JobDefinitionSpec
from reconciler.models.sensitive import SENSITIVE, sensitivity_flags
from reconciler.render import markdown
from reconciler.render import plans as render

JD = "JobDefinition"
SECRETS = ("old-s3cr3t-value", "new-s3cr3t-value", "db-old.internal", "db-new.internal")
PATH = "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value"


def _spec(secret: str, host: str, mode: str, flag: bool = False) -> dict[str, Any]:
    db: dict[str, Any] = {"name": "DB_HOST", "value": host}
    if flag:
        db["sensitive"] = True
    return {
        "type": "container",
        "containerProperties": {
            "image": "busybox",
            "vcpus": 1,
            "memory": 512,
            "environment": [
                {"name": "AWS_SECRET_ACCESS_KEY", "value": secret},
                db,
                {"name": "MODE", "value": mode},
            ],
        },
    }


@pytest.fixture
def plan() -> Plan:
    declared = JobDefinition.model_validate(
        {
            "kind": JD,
            "metadata": {"name": "leader"},
            "spec": _spec(SECRETS[1], SECRETS[3], "slow", flag=True),
        }
    )
    desired = _spec(SECRETS[1], SECRETS[3], "slow")  # what is sent: the flag is ours
    actual = _spec(SECRETS[0], SECRETS[2], "fast")
    changes = diff(desired, actual, JobDefinitionSpec, flags=sensitivity_flags(declared.spec))
    assert len(changes) == 3, "every change is still found"
    built = Plan(stack="prod", region="eu-west-1")
    built.desired = {declared.key: declared}
    built.observed[declared.key] = Observed(
        kind=JD,
        aws_name="leader",
        arn="arn:aws:batch:eu-west-1:123456789012:job-definition/leader:1",
        spec=actual,
        owner=None,
        status="ACTIVE",
        revision=1,
    )
    built.add(
        Action(
            id=f"{JD}/leader",
            kind=JD,
            name="leader",
            verb=Verb.REVISION,
            aws_name="leader",
            summary="new revision after 1",
            changes=changes,
        )
    )
    return built


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} printed"


def test_text_plan(plan: Plan) -> None:
    text = "\n".join(render.plan_lines(plan))
    _no_secret(text)
    assert f"{PATH}: (sensitive value changed)" in text
    assert "containerProperties.environment.DB_HOST.value: (sensitive value changed)" in text
    assert "containerProperties.environment.MODE.value: fast -> slow" in text


def test_json_plan(plan: Plan) -> None:
    text = render.dump(render.plan_data(plan), "json")
    _no_secret(text)
    changes = {c["path"]: c for c in json.loads(text)["actions"][0]["changes"]}
    assert changes[PATH] == {"path": PATH, "old": SENSITIVE, "new": SENSITIVE, "sensitive": True}
    assert changes["containerProperties.environment.MODE.value"]["new"] == "slow"


def test_yaml_plan(plan: Plan) -> None:
    text = render.dump(render.plan_data(plan), "yaml")
    _no_secret(text)
    changes = {c["path"]: c for c in YAML(typ="safe").load(text)["actions"][0]["changes"]}
    assert changes[PATH]["sensitive"] is True and changes[PATH]["new"] == SENSITIVE


def test_markdown_plan(plan: Plan) -> None:
    text = markdown.plan_markdown(plan)
    _no_secret(text)
    assert f"| {markdown.escape(PATH)} | *(sensitive value)* | *(sensitive value)* |" in text
    assert "| fast | slow |" in text


def test_get_rows_and_drift_lines(plan: Plan) -> None:
    rows = render.state_rows(plan)
    for fmt in ("json", "yaml"):
        _no_secret(render.dump(rows, fmt))
    assert rows[0]["sync"] == "drift (3 fields)"
    lines = render.kind_tables(rows) + render.drift_lines(rows)
    _no_secret("\n".join(lines))
    assert f"  {JD}/leader: {PATH}: (sensitive value changed)" in lines
    assert f"  {JD}/leader: containerProperties.environment.MODE.value: fast -> slow" in lines
