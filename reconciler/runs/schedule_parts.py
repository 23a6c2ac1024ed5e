"""The AWS parts a schedule is made of, written only where they differ from what was read.

A schedule (kinds/schedule.py) is several resources: its schedule group, the role Scheduler
assumes, a Step Functions state machine and its role (a DAG target), a dead-letter queue.
Creating and updating are one convergence over `want` (the desired parts) and `have` (those
observed; empty when creating), so a re-apply of an unchanged spec writes nothing and an
interrupted apply is finished by the next: every step is idempotent (a role or a schedule
that exists already is updated, a group that exists is used).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from reconciler.aws.tags import ownership_tags
from reconciler.engine.context import Context
from reconciler.engine.types import Pending, Step
from reconciler.errors import NotFoundError, ProviderError
from reconciler.runs.submit import ensure_barrier_definition

POLICY = "target"  # the inline policy of the roles made for a schedule
ROLE_WAIT = 60.0  # seconds IAM may take before a new role can be assumed
# The schedule's own fields: a change in any of them is one UpdateSchedule.
SCHEDULE_FIELDS = (
    "schedule",
    "timezone",
    "description",
    "state",
    "flexibleTimeWindow",
    "retryPolicy",
    "deadLetterArn",
    "targetArn",
    "roleArn",
    "input",
)


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
    new_roles = []
    for role, doc in (want.get("roles") or {}).items():
        if (have.get("roles") or {}).get(role) != doc:
            new_roles += [role] if _put_role(ctx, role, doc, tags) else []
    machine, had = want.get("stateMachine"), have.get("stateMachine")
    if machine and machine != had and want.get("barriers"):
        ensure_barrier_definition(ctx)  # the DAG's barrier jobs run this definition
    if machine and machine != had:
        _put_machine(ctx, want["targetArn"], want, tags, exists=had is not None)
    if created or any(want.get(k) != have.get(k) for k in SCHEDULE_FIELDS):
        step = _put_schedule(ctx, name, want, create=not have)
        if isinstance(step, Pending):
            return step
    for role in set(have.get("roles") or {}) - set(want.get("roles") or {}):
        delete_role(ctx, role)  # the schedule no longer uses it (it was given a role)
    if had and not machine:
        ctx.aws.client("stepfunctions").delete_state_machine(stateMachineArn=have["targetArn"])
    return f"{name} {'created' if created else 'updated'}"


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


def _put_role(ctx: Context, role: str, doc: dict[str, Any], tags: dict[str, str]) -> bool:
    """Creates the role or rewrites its trust and policy; True if it was created."""
    iam = ctx.aws.client("iam")
    created = False
    try:
        iam.create_role(
            RoleName=role,
            AssumeRolePolicyDocument=json.dumps(doc["trust"]),
            Description="reconciler: may only run one schedule's target",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        created = True
    except ProviderError as exc:
        if exc.code != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(doc["trust"]))
    iam.put_role_policy(RoleName=role, PolicyName=POLICY, PolicyDocument=json.dumps(doc["policy"]))
    return created


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


def _put_schedule(ctx: Context, name: str, want: dict[str, Any], create: bool) -> Step:
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
    scheduler = ctx.aws.client("scheduler")

    def attempt(c: Context) -> Step:
        try:
            if create:
                scheduler.create_schedule(**body)
            else:
                scheduler.update_schedule(**body)  # replaces every field: all are sent
        except ProviderError as exc:
            # IAM is eventually consistent: a role made a moment ago may not be assumable yet.
            if exc.code == "ValidationException" and "role" in str(exc).lower():
                return Pending(
                    f"waiting for IAM to propagate {want['roleArn']}", attempt, 5.0, ROLE_WAIT
                )
            if not (create and exc.code == "ConflictException"):
                raise
            scheduler.update_schedule(**body)  # an interrupted apply made it already
        return f"{name} written"

    return attempt(ctx)


def delete_role(ctx: Context, role: str) -> None:
    iam = ctx.aws.client("iam")
    with contextlib.suppress(NotFoundError):
        iam.delete_role_policy(RoleName=role, PolicyName=POLICY)
    with contextlib.suppress(NotFoundError):
        iam.delete_role(RoleName=role)


def delete_queue(ctx: Context, queue: str) -> None:
    sqs = ctx.aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except ProviderError:
        return  # already gone
    sqs.delete_queue(QueueUrl=url)
