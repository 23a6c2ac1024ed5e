"""Schedule over HTTP to the sandbox's moto: create, no-op re-apply, update, delete, preflight."""

from __future__ import annotations

import json
import time

import pytest

from reconciler.aws import lock
from tests.conftest import client
from tests.stacks import infra, pipeline, stack


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)


def task(name: str = "poller", *, submit_on_apply: bool = False, fail: bool = False) -> str:
    outcome = "\n  sandbox: {outcome: fail, exitCode: 3}" if fail else ""
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Task
metadata:
  name: {name}
spec:
  jobQueue: main-queue
  jobDefinition: leader
  submitOnApply: {str(submit_on_apply).lower()}
  containerOverrides:
    command: [poll, --once]{outcome}
"""


def schedule(
    name: str = "hourly",
    *,
    expression: str = "cron(0 * * * ? *)",
    timezone: str = "Europe/Paris",
    state: str = "ENABLED",
    target: str = "{task: poller}",
    extra: str = "",
) -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Schedule
metadata:
  name: {name}
  labels: {{team: data}}
spec:
  schedule: "{expression}"
  timezone: {timezone}
  state: {state}
  target: {target}{extra}
"""


GROUP = "reconciler-default"


def _schedule(aws: str, name: str = "hourly") -> dict:
    return client(aws, "scheduler").get_schedule(GroupName=GROUP, Name=name)


def test_task_schedule_create_noop_update_delete(run, write, aws):
    path = write(stack(infra(), task(), schedule()))
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    assert "Schedule/hourly" in first.out
    assert "next firings:" in first.out and "CET" in first.out
    live = _schedule(aws)
    assert live["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert live["ScheduleExpressionTimezone"] == "Europe/Paris"
    target = live["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    body = json.loads(target["Input"])
    assert body["JobQueue"] == "main-queue" and body["JobDefinition"] == "leader"
    assert body["ContainerOverrides"] == {"Command": ["poll", "--once"]}
    assert body["Tags"]["reconciler.io/run"] == "<aws.scheduler.execution-id>"
    assert body["Tags"]["reconciler.io/kind"] == "Task"
    assert body["JobName"].startswith("poller--poller--")
    # The group carries the ownership (schedules have no tags); the role is the schedule's own.
    group = client(aws, "scheduler").list_schedule_groups(NamePrefix=GROUP)["ScheduleGroups"]
    tags = client(aws, "scheduler").list_tags_for_resource(ResourceArn=group[0]["Arn"])["Tags"]
    assert {"Key": "reconciler.io/stack", "Value": "default"} in tags
    role = target["RoleArn"].rsplit("/", 1)[-1]
    iam = client(aws, "iam")
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert "scheduler.amazonaws.com" in json.dumps(trust)
    policy = json.dumps(iam.get_role_policy(RoleName=role, PolicyName="target")["PolicyDocument"])
    assert "job-queue/main-queue" in policy and "job-definition/leader" in policy
    # submitOnApply: false: the task itself submitted nothing.
    assert (
        client(aws).list_jobs(jobQueue="main-queue", jobStatus="SUBMITTED")["jobSummaryList"] == []
    )

    again = run("apply", "-f", path)
    assert again.code == 0, again.out + again.err
    assert again.writes == 0, again.calls
    assert "No changes" in again.out

    changed = write(stack(infra(), task(), schedule(expression="rate(2 hours)", state="DISABLED")))
    diff = run("diff", "-f", changed)
    assert diff.code == 2, diff.out + diff.err
    assert "schedule: cron(0 * * * ? *) -> rate(2 hours)" in diff.out
    updated = run("apply", "-f", changed)
    assert updated.code == 0, updated.out + updated.err
    assert updated.calls.get("scheduler:UpdateSchedule") == 1
    writes = {
        k: n
        for k, n in updated.calls.items()
        if k.split(":")[1].startswith(("Create", "Update", "Put", "Delete", "Tag"))
        and not k.startswith("dynamodb")
    }
    assert writes == {"scheduler:UpdateSchedule": 1}, updated.calls
    assert _schedule(aws)["State"] == "DISABLED"
    assert run("apply", "-f", changed).writes == 0

    gone = run("delete", "--yes", "-f", changed)
    assert gone.code == 0, gone.out + gone.err
    names = [s["Name"] for s in client(aws, "scheduler").list_schedules()["Schedules"]]
    assert "hourly" not in names
    assert role not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


def test_pipeline_schedule_generates_a_state_machine(run, write, aws):
    target = "{pipeline: stress}"
    body = pipeline(extra="").replace(
        "concurrencyPolicy", "submitOnApply: false\n  concurrencyPolicy"
    )
    path = write(stack(infra(), body, schedule(target=target, expression="rate(1 hour)")))
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    writes = {
        k: n
        for k, n in first.calls.items()
        if k.split(":")[0] in ("iam", "stepfunctions", "scheduler")
        and not k.split(":")[1].startswith(("Get", "List", "Describe"))
    }
    assert writes == {
        "iam:CreateRole": 2,  # Scheduler's role and the state machine's
        "iam:PutRolePolicy": 2,
        "stepfunctions:CreateStateMachine": 1,
        "scheduler:CreateScheduleGroup": 1,
        "scheduler:CreateSchedule": 1,
    }, first.calls
    live = _schedule(aws)
    arn = live["Target"]["Arn"]
    assert ":states:" in arn and ":stateMachine:" in arn
    machine = client(aws, "stepfunctions").describe_state_machine(stateMachineArn=arn)
    definition = json.loads(machine["definition"])
    states = definition["States"]
    submits = [s for s in states.values() if s["Type"] == "Task"]
    assert [s["Parameters"]["Tags"]["reconciler.io/task"] for s in submits] == [
        "leader",
        "follower",
    ]
    follower = submits[1]["Parameters"]
    assert follower["DependsOn"] == [{"JobId.$": "$.jobs.u0.JobId"}]
    assert follower["ArrayProperties"] == {"Size": 4}
    again = run("apply", "-f", path)
    assert again.writes == 0, again.calls


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 0 30 2 ? *)", "never fires: no date matches it"),
        ("cron(0 * * * *)", "5 fields; AWS's cron has six"),
        ("cron(0 * * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(61 * * * ? *)", "minutes: 61 is out of range 0-59"),
        ("rate(1 hours)", "AWS wants 1 hour"),
        ("every hour", "is not cron(...), rate(...) or at(...)"),
        ("at(2027-02-30T00:00:00)", "day is out of range for month"),
    ],
)
def test_bad_expressions_are_reported_at_their_line(run, write, expression, message):
    path = write(stack(infra(), task(), schedule(expression=expression)))
    out = run("validate", "-f", path)
    assert out.code == 1
    assert "Schedule/hourly: spec.schedule: " in out.err + out.out
    assert message in out.err + out.out


def test_preflight_refuses_what_would_never_run(run, write, aws):
    from tests.stacks import ce, jd, jq

    disabled = stack(ce(), jq(state="DISABLED"), jd(), task(), schedule())
    out = run("apply", "-f", write(disabled))
    assert out.code == 1, out.out + out.err
    assert "job queue main-queue is DISABLED: every firing would fail to submit" in out.out

    past = stack(infra(), task(), schedule(expression="at(2020-01-01T00:00:00)"))
    out = run("diff", "-f", write(past))
    assert out.code == 1, out.out + out.err
    assert "at(2020-01-01T00:00:00) never fires again (Europe/Paris)" in out.out

    iam = client(aws, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="not-for-scheduler", AssumeRolePolicyDocument=json.dumps(trust))
    given = stack(infra(), task(), schedule(extra="\n  role: not-for-scheduler"))
    out = run("diff", "-f", write(given))
    assert out.code == 1, out.out + out.err
    assert "role not-for-scheduler does not trust scheduler.amazonaws.com" in out.out
    assert client(aws, "scheduler").list_schedules()["Schedules"] == []


def test_a_given_role_is_used_and_no_role_is_made(run, write, aws):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    client(aws, "iam").create_role(
        RoleName="ops-scheduler", AssumeRolePolicyDocument=json.dumps(trust)
    )
    path = write(stack(infra(), task(), schedule(extra="\n  role: ops-scheduler")))
    out = run("apply", "-f", path)
    assert out.code == 0, out.out + out.err
    assert out.calls.get("iam:CreateRole", 0) == 0, out.calls
    assert _schedule(aws)["Target"]["RoleArn"].endswith(":role/ops-scheduler")
    assert run("apply", "-f", path).writes == 0


def test_a_schedule_group_the_stack_does_not_own_is_a_conflict(run, write, aws):
    client(aws, "scheduler").create_schedule_group(Name=GROUP)
    client(aws, "scheduler").create_schedule(
        GroupName=GROUP,
        Name="hourly",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:sqs:us-east-1:123456789012:q",
            "RoleArn": "arn:aws:iam::123456789012:role/r",
        },
    )
    out = run("apply", "-f", write(stack(infra(), task(), schedule())))
    assert out.code == 1, out.out + out.err
    assert "--adopt" in out.out
    assert _schedule(aws)["ScheduleExpression"] == "rate(1 hour)"  # left alone


def test_a_stack_without_schedules_reads_no_schedules(run, write, aws):
    path = write(stack(infra(), task()))  # no run: a delete is not held up by jobs
    out = run("apply", "-f", path)
    assert out.code == 0, out.out + out.err
    assert not [k for k in out.calls if k.startswith(("scheduler:", "events:"))], out.calls
    # A delete looks whether a schedule or a notification of the stack still uses the queue it
    # deletes: one list call each in its one plan (the apply's lease ended before it began:
    # engine/locking.py), and nothing more when there are none.
    time.sleep(lock.CLOCK_SKEW + 0.1)
    out = run("delete", "-f", path, "--yes")
    assert out.code == 0, out.out + out.err
    looked = {k: n for k, n in out.calls.items() if k.startswith(("scheduler:", "events:"))}
    assert looked == {"scheduler:ListScheduleGroups": 1, "events:ListRules": 1}, out.calls


def test_a_secret_in_the_target_is_never_shown(run, write, aws):
    def secret_task(password: str) -> str:
        return task().replace(
            "command: [poll, --once]",
            f"command: [poll]\n    environment: [{{name: DB_PASSWORD, value: {password}}}]",
        )

    first = run("apply", "-f", write(stack(infra(), secret_task("hunter2"), schedule())))
    assert first.code == 0, first.out + first.err
    assert run("apply", "-f", write(stack(infra(), secret_task("hunter2"), schedule()))).writes == 0
    changed = write(stack(infra(), secret_task("correct-horse"), schedule()))
    for out in (run("diff", "-f", changed), run("diff", "-f", changed, "-o", "json")):
        assert out.code == 2, out.out + out.err
        assert "hunter2" not in out.out + out.err and "correct-horse" not in out.out + out.err
        assert "sensitive" in out.out
