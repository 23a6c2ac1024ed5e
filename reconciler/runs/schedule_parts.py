"""The AWS parts a schedule is made of, written only where they differ from what was read.

A schedule (kinds/schedule.py) is several resources: its schedule group, the role Scheduler
assumes, a Step Functions state machine and its role (a DAG target), a dead-letter queue.
Creating and updating are one convergence over `want` (the desired parts) and `have` (those
observed; empty when creating), so a re-apply of an unchanged spec writes nothing and an
interrupted apply is finished by the next: every step is idempotent (a role or a schedule
that exists already is updated, a group that exists is used). The schedule's own write is
asked again while IAM propagates a role made a moment ago (`after_iam`); the parts written
before it are not written again. Also here: the parts' names, and the next firings within a
schedule's start and end dates, as the plan and `get` show them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from reconciler.aws.service_roles import delete_service_role, put_changed_roles
from reconciler.aws.tags import ownership_tags
from reconciler.cron import firings_between
from reconciler.engine.context import Context
from reconciler.engine.types import Step
from reconciler.errors import ProviderError
from reconciler.kinds.polling import after_iam
from reconciler.runs.submit import ensure_barrier_definition

ROLE_DESCRIPTION = "reconciler: may only run one schedule's target"
POLICY = "target"  # the inline policy of the roles made for a schedule
SHOWN_FIRINGS = 3  # the plan shows the next three firings
# The schedule's own fields: a change in any of them is one UpdateSchedule.
SCHEDULE_FIELDS = (
    "schedule",
    "timezone",
    "description",
    "state",
    "startDate",
    "endDate",
    "flexibleTimeWindow",
    "retryPolicy",
    "deadLetterArn",
    "targetArn",
    "roleArn",
    "input",
)


def _short(text: str, limit: int, stack: str) -> str:
    """`text`, unique to the stack: a hash of the stack keeps two stacks' names apart."""
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    return f"{text[: limit - 7]}-{digest}"


def group_name(stack: str) -> str:
    name = f"reconciler-{stack}"
    return name if len(name) <= 64 else _short(name, 64, stack)


def part_names(stack: str, name: str) -> dict[str, str]:
    return {
        "role": _short(f"{name}-scheduler", 64, stack),
        "machineRole": _short(f"{name}-states", 64, stack),
        "machine": _short(f"reconciler-{name}", 80, stack),
        "queue": _short(f"{name}-dlq", 80, stack),
    }


def iso_date(when: dt.datetime | None, future_only: bool = False) -> str | None:
    """A date as compared: UTC, to the second. `future_only`: a StartDate that has passed is
    None on both sides, so it is never a change (AWS refuses to be sent one again)."""
    if when is None or (future_only and when <= dt.datetime.now(dt.UTC)):
        return None
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_firings(spec: Any, count: int = SHOWN_FIRINGS) -> list[dt.datetime]:
    """The next firings from now, within the spec's startDate and endDate."""
    now = dt.datetime.now(dt.UTC)
    return firings_between(spec.schedule, spec.timezone, now, count, spec.startDate, spec.endDate)


def shown_firings(spec: Any) -> str:
    when = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in next_firings(spec))
    return when or "none"


def _pascal(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {k[:1].upper() + k[1:]: v for k, v in data.items()}


def converge(
    ctx: Context, name: str, want: dict[str, Any], have: dict[str, Any], created: bool
) -> Step:
    tags = {**want["labels"], **ownership_tags(ctx.stack, name)}
    if created:
        _ensure_group(ctx, want["group"])
    if want.get("queueName") and want["deadLetterArn"] != have.get("deadLetterArn"):
        ctx.aws.client("sqs").create_queue(QueueName=want["queueName"], tags=tags)
    put_changed_roles(ctx.aws, want, have, POLICY, tags, ROLE_DESCRIPTION)
    machine, had = want.get("stateMachine"), have.get("stateMachine")
    if machine and machine != had and want.get("barriers"):
        ensure_barrier_definition(ctx)  # the DAG's barrier jobs run this definition
    if machine and machine != had:
        _put_machine(ctx, want["targetArn"], want, tags, exists=had is not None)

    def finish(c: Context) -> Step:
        if created or any(want.get(k) != have.get(k) for k in SCHEDULE_FIELDS):
            _put_schedule(c, name, want, create=not have)
        for role in set(have.get("roles") or {}) - set(want.get("roles") or {}):
            delete_role(c, role)  # the schedule no longer uses it (it was given a role)
        if had and not machine:
            c.aws.client("stepfunctions").delete_state_machine(stateMachineArn=have["targetArn"])
        return f"{name} {'created' if created else 'updated'}"

    # A role made a moment ago (above, or by a Role of the stack) may not be assumable yet:
    # Scheduler then refuses the schedule, and the write is asked again, bounded.
    return after_iam(finish, f"writing schedule {name}")(ctx)


def _ensure_group(ctx: Context, group: str) -> None:
    scheduler = ctx.aws.client("scheduler")
    try:
        scheduler.create_schedule_group(
            Name=group,
            Tags=[{"Key": k, "Value": v} for k, v in ownership_tags(ctx.stack, group).items()],
        )
    except ProviderError as exc:
        if exc.code != "ConflictException":  # it exists already: one group for the stack
            raise


def _put_machine(
    ctx: Context, arn: str, want: dict[str, Any], tags: dict[str, str], exists: bool
) -> None:
    sfn = ctx.aws.client("stepfunctions")
    definition = json.dumps(want["machineDefinition"])
    role = want["stateMachine"]["roleArn"]
    if exists:
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role)
        return
    sfn.create_state_machine(
        name=arn.rsplit(":", 1)[-1],
        definition=definition,
        roleArn=role,
        type="STANDARD",
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )


def _put_schedule(ctx: Context, name: str, want: dict[str, Any], create: bool) -> None:
    target: dict[str, Any] = {
        "Arn": want["targetArn"],
        "RoleArn": want["roleArn"],
        "Input": json.dumps(want["inputBody"] or {}),
        "RetryPolicy": _pascal(want["retryPolicy"]),
    }
    if want.get("deadLetterArn"):
        target["DeadLetterConfig"] = {"Arn": want["deadLetterArn"]}
    body: dict[str, Any] = {
        "GroupName": want["group"],
        "Name": name,
        "ScheduleExpression": want["schedule"],
        "ScheduleExpressionTimezone": want["timezone"],
        "FlexibleTimeWindow": _pascal(want["flexibleTimeWindow"]),
        "State": want["state"],
        "Target": target,
    }
    if want.get("description"):
        body["Description"] = want["description"]
    for key in ("startDate", "endDate"):  # a startDate that has passed is not sent again
        if want.get(key):
            body[key[:1].upper() + key[1:]] = dt.datetime.fromisoformat(want[key])
    scheduler = ctx.aws.client("scheduler")
    try:
        if create:
            scheduler.create_schedule(**body)
        else:
            scheduler.update_schedule(**body)  # replaces every field: all are sent
    except ProviderError as exc:
        if not (create and exc.code == "ConflictException"):
            raise
        scheduler.update_schedule(**body)  # an interrupted apply made it already


def delete_role(ctx: Context, role: str) -> None:
    delete_service_role(ctx.aws, role, [POLICY])


def delete_queue(ctx: Context, queue: str) -> None:
    sqs = ctx.aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except ProviderError:
        return  # already gone
    sqs.delete_queue(QueueUrl=url)
