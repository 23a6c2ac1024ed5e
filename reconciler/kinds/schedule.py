"""Schedule: an EventBridge Scheduler schedule that runs a Task or a Pipeline; AWS calls.

What one Schedule owns, all named from the stack and the schedule (schedule_parts
`part_names`):
- the schedule, in the stack's schedule group `reconciler-<stack>`. Scheduler cannot tag a
  schedule, only a group [TagResource]: the group carries the ownership tags, and a schedule is
  ours when it is in our stack's group. A same-named group without our tags is a conflict.
- unless `spec.role` names one, the role Scheduler assumes: it trusts scheduler.amazonaws.com
  and may only submit to the target's queue and definitions (or start the state machine), and
  send to the dead-letter queue;
- a Pipeline target: a Step Functions state machine generated from the DAG (runs/scheduled.py
  says why) and the role it runs as (submits to the pipeline's queues and definitions);
- `deadLetterQueue: {create: true}`: an SQS queue.
Create and update are one convergence (schedule_parts `converge`): each part is written only
if it differs from what was observed, so a re-apply of an unchanged spec writes nothing.

AWS quirks handled here:
- UpdateSchedule replaces the whole schedule: every field is sent, whatever changed.
- CreateSchedule refuses a role IAM has not propagated yet ("The execution role you provide
  must allow AWS EventBridge Scheduler to assume the role"): the schedule's write is asked
  again under `kinds/polling.after_iam`, bounded, as a compute environment's create is.
- Scheduler and moto accept an expression that never fires: models/schedule.py refuses one
  that can never fire, preflight one that never fires again (an `at()` in the past, an
  `endDate` that has passed).
- Scheduler refuses a StartDate more than five minutes in the past, on an update too: one
  that has passed is neither sent again nor compared (schedule_parts `iso_date`).
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from reconciler.aws.lookups import partition_of
from reconciler.aws.tags import Owner, owner_of
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Work
from reconciler.errors import NotFoundError, ProviderError
from reconciler.kinds.base import Column, Kind, Permission
from reconciler.models.common import RoleReference
from reconciler.models.job_queue import JobQueue
from reconciler.models.role import Role, normal_document, trust_document
from reconciler.models.schedule import Schedule
from reconciler.runs.schedule_parts import (
    POLICY,
    converge,
    delete_queue,
    delete_role,
    group_name,
    iso_date,
    next_firings,
    part_names,
    shown_firings,
)
from reconciler.runs.scheduled import (
    SUBMIT_JOB_TARGET,
    camel,
    comparable_definition,
    state_machine,
    submit_job_input,
)
from reconciler.runs.submit import BARRIER_DEFINITION, barrier_count

SCHEDULER, STATES = "scheduler.amazonaws.com", "states.amazonaws.com"


class ScheduleView(BaseModel):
    """What is compared: the schedule and the parts the tool made for it."""

    schedule: str | None = None
    timezone: str | None = None
    description: str | None = None
    state: str | None = None
    startDate: str | None = None  # only while in the future: one that passed changes nothing
    endDate: str | None = None
    flexibleTimeWindow: dict[str, Any] | None = None
    retryPolicy: dict[str, Any] | None = None
    deadLetterArn: str | None = None
    targetArn: str | None = None
    roleArn: str | None = None
    input: dict[str, Any] | None = None
    roles: dict[str, Any] | None = None  # role name -> {trust, policy}
    stateMachine: dict[str, Any] | None = None  # {definition, roleArn}


def _camel(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {k[:1].lower() + k[1:]: v for k, v in data.items()}


def _allow(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def read_role(ctx: Context, name: str) -> dict[str, Any] | None:
    """A role made for a schedule: its trust and its policy documents, as IAM has them."""
    iam = ctx.aws.client("iam")
    try:
        role = iam.get_role(RoleName=name)["Role"]
        policy = iam.get_role_policy(RoleName=name, PolicyName=POLICY)["PolicyDocument"]
    except NotFoundError:
        return None
    trust = role.get("AssumeRolePolicyDocument")
    trust = json.loads(trust) if isinstance(trust, str) else trust
    policy = json.loads(policy) if isinstance(policy, str) else policy
    return {"trust": normal_document(trust or {}), "policy": normal_document(policy or {})}


def trust_of(ctx: Context, role: str) -> set[str] | None:
    """The services a given role trusts; None if it cannot be read (then AWS decides)."""
    try:
        raw = ctx.aws.client("iam").get_role(RoleName=role.rsplit("/", 1)[-1])["Role"]
    except ProviderError:
        return None
    doc = raw.get("AssumeRolePolicyDocument")
    doc = json.loads(doc) if isinstance(doc, str) else doc or {}
    services: set[str] = set()
    for s in doc.get("Statement") or []:
        found = (s.get("Principal") or {}).get("Service") if s.get("Effect") == "Allow" else None
        services.update([found] if isinstance(found, str) else found or [])
    return services


class ScheduleKind(Kind):
    model = Schedule
    spec_model = ScheduleView
    busy_statuses = ()
    ready_statuses = ("ENABLED", "DISABLED")
    columns = (
        Column("Schedule", "expression", description="The schedule expression."),
        Column("State", "state", description="ENABLED or DISABLED."),
        Column("Next", "nextFiring", description="The next firing, in the schedule's timezone."),
        Column("Target", "target", description="The Task or Pipeline each firing runs."),
    )
    permissions = (
        Permission(
            "Schedules",
            "scheduler",
            (
                "GetSchedule",
                "ListSchedules",
                "CreateSchedule",
                "UpdateSchedule",
                "DeleteSchedule",
                "CreateScheduleGroup",
                "ListScheduleGroups",
                "ListTagsForResource",
                "TagResource",  # CreateScheduleGroup with Tags
            ),
            ("schedule/*", "schedule-group/*"),
        ),
        Permission(
            "ScheduleRoles",
            "iam",
            (
                "GetRole",
                "GetRolePolicy",
                "CreateRole",
                "TagRole",
                "PutRolePolicy",
                "UpdateAssumeRolePolicy",
                "DeleteRolePolicy",
                "DeleteRole",
            ),
            # The roles this kind names (_names); a role given by name is read under the
            # Role kind's statement, which covers every role.
            (
                "arn:{partition}:iam::{account}:role/*-scheduler-*",
                "arn:{partition}:iam::{account}:role/*-states-*",
            ),
        ),
        Permission(
            "ScheduleStateMachines",
            "states",
            (
                "DescribeStateMachine",
                "CreateStateMachine",
                "UpdateStateMachine",
                "DeleteStateMachine",
                "TagResource",
            ),
            ("stateMachine:*",),
        ),
        Permission(
            "ScheduleDeadLetterQueues",
            "sqs",
            ("CreateQueue", "GetQueueUrl", "DeleteQueue", "TagQueue"),
            ("*-dlq-*",),  # the queues this kind names (_names)
        ),
    )

    # -- reading -------------------------------------------------------------------------------

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        if not declared and not everything:
            return []
        scheduler = ctx.aws.client("scheduler")
        group = group_name(ctx.stack)
        groups = scheduler.list_schedule_groups(NamePrefix=group).get("ScheduleGroups") or []
        found = next((g for g in groups if g.get("Name") == group), None)
        if found is None:
            return []
        ctx.resolver.learn_account(found["Arn"])
        tags = {
            t["Key"]: t["Value"]
            for t in scheduler.list_tags_for_resource(ResourceArn=found["Arn"]).get("Tags") or []
        }
        group_owner = owner_of(tags)
        listed = [
            s["Name"]
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
            for s in page["Schedules"]
        ]
        wanted = set(listed) if everything else {r.name for r in declared} & set(listed)
        with ThreadPoolExecutor(max_workers=max(1, ctx.options.parallelism)) as pool:
            return list(pool.map(lambda n: self._read(ctx, group, n, group_owner), sorted(wanted)))

    def _read(self, ctx: Context, group: str, name: str, group_owner: Owner | None) -> Observed:
        raw = ctx.aws.client("scheduler").get_schedule(GroupName=group, Name=name)
        target = raw.get("Target") or {}
        names = part_names(ctx.stack, name)
        roles: dict[str, Any] = {}
        role_arn = str(target.get("RoleArn") or "")
        machine = None
        if target.get("Arn", "").startswith(f"arn:{partition_of(ctx.aws.region)}:states:"):
            machine = self._machine(ctx, target["Arn"])
        for role in (names["role"], names["machineRole"]):
            if role_arn.endswith(f"/{role}") or (machine and machine["roleArn"].endswith(role)):
                roles[role] = read_role(ctx, role)
        input_text = target.get("Input")
        owner = Owner(group_owner.stack, name) if group_owner else None
        return Observed(
            kind=self.name,
            aws_name=name,
            arn=raw.get("Arn", ""),
            spec={
                "schedule": raw.get("ScheduleExpression"),
                "timezone": raw.get("ScheduleExpressionTimezone") or "UTC",
                "description": raw.get("Description") or None,
                "state": raw.get("State"),
                "startDate": iso_date(raw.get("StartDate"), future_only=True),
                "endDate": iso_date(raw.get("EndDate")),
                "flexibleTimeWindow": _camel(raw.get("FlexibleTimeWindow")),
                "retryPolicy": _camel(target.get("RetryPolicy")),
                "deadLetterArn": (target.get("DeadLetterConfig") or {}).get("Arn"),
                "targetArn": target.get("Arn"),
                "roleArn": role_arn or None,
                "input": camel(json.loads(input_text)) if input_text else None,
                "roles": {k: v for k, v in roles.items() if v} or None,
                "stateMachine": machine,
            },
            owner=owner,
            status=raw.get("State"),
        )

    def _machine(self, ctx: Context, arn: str) -> dict[str, Any] | None:
        try:
            raw = ctx.aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
        except NotFoundError:
            return None
        except ProviderError as exc:
            if "StateMachineDoesNotExist" not in exc.code:
                raise
            return None
        definition = comparable_definition(json.loads(raw["definition"]))
        return {"definition": definition, "roleArn": raw["roleArn"]}

    def observed_refs(self, live: Observed) -> list[tuple[str, str]]:
        """The queues its firings submit to (its SubmitJob input, or its state machine's
        states): deleting one is refused while the schedule would still fire into it."""
        found: set[str] = set()

        def walk(value: Any) -> None:
            for key, sub in value.items() if isinstance(value, dict) else enumerate(value):
                if key in ("jobQueue", "JobQueue") and isinstance(sub, str):
                    found.add(sub.rsplit("/", 1)[-1])
                elif isinstance(sub, dict | list):
                    walk(sub)

        walk([live.spec.get("input"), live.spec.get("stateMachine")])
        return [(JobQueue.KIND, q) for q in sorted(found)]

    # -- desired -------------------------------------------------------------------------------

    def desired(self, ctx: Context, res: Schedule, refs: Refs) -> dict[str, Any]:
        spec, names = res.spec, part_names(ctx.stack, res.name)
        region, partition = ctx.aws.region, partition_of(ctx.aws.region)
        account = ctx.resolver.account_id
        arn = f"arn:{partition}:{{}}:{region}:{account}:{{}}"
        target = refs.resource(spec.target.kind, spec.target.name)
        queues: dict[str, str] = {}
        for task in target.task_list() if target is not None else []:
            queue = task.jobQueue or target.spec.jobQueue
            queues[task.name] = refs.aws_name(JobQueue.KIND, queue)
        definitions = (
            sorted({t.jobDefinition for t in target.task_list() if t.jobDefinition})
            if target
            else []
        )
        submit = [arn.format("batch", f"job-queue/{q}") for q in sorted(set(queues.values()))]
        for d in [*definitions, BARRIER_DEFINITION]:
            submit += [
                arn.format("batch", f"job-definition/{d}"),
                arn.format("batch", f"job-definition/{d}:*"),
            ]
        may_submit = [
            _allow(["batch:SubmitJob"], submit),
            # Tags given to SubmitJob are authorised as batch:TagResource on the new job.
            _allow(["batch:TagResource"], [arn.format("batch", "job/*")]),
        ]
        dlq = None
        if spec.deadLetterQueue is not None:
            dlq = spec.deadLetterQueue.arn or arn.format("sqs", names["queue"])
        roles: dict[str, Any] = {}
        machine = sent_definition = None
        if target is None:
            target_arn, body = "", None
        elif spec.target.task:
            target_arn = SUBMIT_JOB_TARGET.format(partition=partition)
            task = target.task_list()[0]
            body = submit_job_input(ctx, target, task, queues[task.name])
            own = may_submit
        else:
            target_arn = arn.format("states", f"stateMachine:{names['machine']}")
            body = {}
            comment = f"reconciler: submits the Pipeline {target.name}, stack {ctx.stack}"
            definition = state_machine(ctx, target, target.task_list(), queues, comment)
            machine_role = f"arn:{partition}:iam::{account}:role/{names['machineRole']}"
            machine = {"definition": comparable_definition(definition), "roleArn": machine_role}
            sent_definition = definition
            roles[names["machineRole"]] = self._role_doc(STATES, may_submit)
            own = [_allow(["states:StartExecution"], [target_arn])]
        if isinstance(spec.role, RoleReference):  # a Role of the stack
            role_arn = refs.output(ctx, Role.KIND, spec.role.role, "arn")
        elif spec.role:
            role_arn = ctx.resolver.role_arn(spec.role)
        else:
            role_arn = f"arn:{partition}:iam::{account}:role/{names['role']}"
            extra = [_allow(["sqs:SendMessage"], [dlq])] if dlq else []
            if target is not None:
                roles[names["role"]] = self._role_doc(SCHEDULER, own + extra)
        retry = spec.retryPolicy.model_dump() if spec.retryPolicy else {}
        return {
            "schedule": spec.schedule,
            "timezone": spec.timezone,
            "description": spec.description,
            "state": spec.state,
            "startDate": iso_date(spec.startDate, future_only=True),
            "endDate": iso_date(spec.endDate),
            "flexibleTimeWindow": spec.flexibleTimeWindow.model_dump(exclude_none=True),
            "retryPolicy": {
                "maximumEventAgeInSeconds": retry.get("maximumEventAgeInSeconds", 86400),
                "maximumRetryAttempts": retry.get("maximumRetryAttempts", 185),
            },
            "deadLetterArn": dlq,
            "targetArn": target_arn,
            "roleArn": role_arn,
            "input": camel(body) if body is not None else None,
            "roles": roles or None,
            "stateMachine": machine,
            # Not compared (ScheduleView has no such fields): what carrying out needs.
            "group": group_name(ctx.stack),
            "inputBody": body,  # what is sent (`input` is its comparable form), and below
            "machineDefinition": sent_definition,
            "queueName": names["queue"]
            if spec.deadLetterQueue and spec.deadLetterQueue.create
            else None,
            "labels": dict(res.metadata.labels),
            "targetQueues": sorted(set(queues.values())),
            "barriers": bool(spec.target.pipeline and target and barrier_count(target.task_list())),
        }

    @staticmethod
    def _role_doc(service: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
        policy = {"Version": "2012-10-17", "Statement": statements}
        return {"trust": trust_document([service]), "policy": normal_document(policy)}

    # -- deciding and carrying out ---------------------------------------------------------------

    def _preflight(
        self, ctx: Context, res: Schedule, desired: dict[str, Any], refs: Refs
    ) -> list[str]:
        """What people get wrong, refused in the plan before anything is written."""
        spec, problems = res.spec, []
        if not next_firings(spec, 1):
            end = f" before its endDate {iso_date(spec.endDate)}" if spec.endDate else ""
            problems.append(f"{spec.schedule} never fires again{end} ({spec.timezone})")
        if spec.state == "ENABLED":
            for queue in desired["targetQueues"]:
                declared = refs.resource(JobQueue.KIND, queue)
                live = refs.live(JobQueue.KIND, queue)
                state = declared.spec.state if declared is not None else None
                state = state or (live.spec.get("state") if live is not None else None)
                if state == "DISABLED":
                    problems.append(
                        f"job queue {queue} is DISABLED: every firing would fail to submit"
                    )
        if isinstance(spec.role, RoleReference):
            # A Role of the stack: its trust is what its manifest declares.
            role = refs.resource(Role.KIND, spec.role.role)
            trust = set(role.spec.trustedServices) if role is not None else None
            name = spec.role.role
        else:
            trust = trust_of(ctx, spec.role) if spec.role else None
            name = spec.role or ""
        if trust is not None and SCHEDULER not in trust:
            problems.append(f"role {name} does not trust {SCHEDULER}: Scheduler cannot assume it")
        return problems

    def _notes(self, res: Schedule, desired: dict[str, Any], refs: Refs) -> list[str]:
        spec = res.spec
        notes = [
            f"next firings: {shown_firings(spec)}"
            + (" (DISABLED)" if spec.state == "DISABLED" else "")
        ]
        target = refs.resource(spec.target.kind, spec.target.name)
        if target is not None and target.spec.submitOnApply:
            notes.append(
                f"{spec.target.kind}/{spec.target.name} also runs when applied: set "
                "submitOnApply: false to run it only when the schedule fires"
            )
        return notes

    def _work(
        self,
        ctx: Context,
        res: Schedule,
        desired: dict[str, Any],
        have: dict[str, Any],
        refs: Refs,
        summary: str = "",
    ) -> Work:
        work = Work(summary=summary, notes=self._notes(res, desired, refs))
        problems = self._preflight(ctx, res, desired, refs)
        if problems:
            work.refused = "; ".join(problems)
            return work
        work.run = lambda c: converge(c, res.name, desired, have, created=not have)
        return work

    def create(
        self, ctx: Context, res: Schedule, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        return self._work(ctx, res, desired, {}, refs)

    def update(
        self,
        ctx: Context,
        res: Schedule,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        fields = sorted({c.path.split(".", 1)[0] for c in changes})
        return self._work(ctx, res, desired, current.spec, refs, ", ".join(fields))

    def unchanged(self, ctx: Context, res: Schedule, current: Observed) -> Work:
        return Work(summary=f"{res.spec.state}; next firings: {shown_firings(res.spec)}")

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        group, name = group_name(ctx.stack), live.aws_name
        names = part_names(ctx.stack, name)

        def run(c: Context) -> str:
            with contextlib.suppress(NotFoundError):
                c.aws.client("scheduler").delete_schedule(GroupName=group, Name=name)
            machine = live.spec.get("stateMachine")
            if machine:
                c.aws.client("stepfunctions").delete_state_machine(
                    stateMachineArn=live.spec["targetArn"]
                )
            for role in live.spec.get("roles") or {}:
                delete_role(c, role)
            dlq = live.spec.get("deadLetterArn") or ""
            if dlq.endswith(":" + names["queue"]):
                delete_queue(c, names["queue"])
            return f"{name} deleted"

        return Work(run=run, summary=why, aws_name=name)

    # -- reporting -----------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        spec = res.spec if res is not None else None
        out["expression"] = spec.schedule if spec else None
        out["state"] = live.spec.get("state") if live else None
        shown = next_firings(spec, 1) if spec else []
        out["nextFiring"] = shown[0].strftime("%Y-%m-%d %H:%M %Z") if shown and live else None
        out["target"] = f"{spec.target.kind}/{spec.target.name}" if spec else None
        return out


KINDS = (ScheduleKind(),)
