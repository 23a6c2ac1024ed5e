"""What a resource's status says about its AWS side: the fields and the Ready condition that
`reconciler get` shows and the operator writes into a custom resource's status. No kopf here.

Infrastructure kinds report the live resource the plan observed (ARN, AWS name, AWS status,
and what the kind adds, such as a job definition's revision); readiness follows the statuses
the kind declares. Kinds of work report the run the spec calls for: its ID, its status and
how many jobs of each task are in each state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.engine import conditions as c
from reconciler.engine.context import Context
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Plan, Verb
from reconciler.errors import TerminalError
from reconciler.manifests.validate import ResourceSet
from reconciler.registry import kinds

FINISHED_RUN = ("SUCCEEDED", "FAILED")
MAX_BACKOFF = 300.0  # seconds between retries of a failing reconcile, at most
MAX_PROGRESS_DELAY = 60.0  # seconds between looks at work AWS is still doing, at most

Readiness = tuple[bool, str, str]  # ready, reason, message
# In a run's fields, not written to status: task -> its job's state as a line with the fields
# of the Slack message (notify/slack.py), which the operator posts as an event on a change.
JOB_LINES = "jobStateLines"


def resource_fields(plan: Plan, key: tuple[str, str]) -> dict[str, Any]:
    return kinds()[key[0]].status_fields(plan.desired.get(key), plan.observed.get(key))


def resource_readiness(kind: str, observed: Observed | None) -> Readiness:
    if observed is None:
        return False, c.UNAVAILABLE, "not found in AWS"
    found = kinds()[kind]
    if found.runs:
        return True, c.AVAILABLE, f"run {observed.spec.get('runId')}: {observed.status}"
    status = observed.status or ""
    if status in found.ready_statuses:
        return True, c.AVAILABLE, f"{observed.aws_name} is {status}"
    if status in found.busy_statuses:
        return False, c.CREATING, f"{observed.aws_name} is {status}"
    why = f": {observed.status_reason}" if observed.status_reason else ""
    return False, c.UNAVAILABLE, f"{observed.aws_name} is {status or 'in an unknown state'}{why}"


def desired_only(ctx: Context, declared: ResourceSet) -> Plan:
    """A plan that holds the desired resources only: enough to name the spec's run."""
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.desired = {r.key: r for r in declared.resources}
    return plan


def spec_run_id(ctx: Context, declared: ResourceSet, key: tuple[str, str]) -> str:
    """The run the spec calls for (a hash of the spec and its job definitions; no AWS call)."""
    plan = desired_only(ctx, declared)
    return str(kinds()[key[0]].run_id(plan.desired[key], Refs(plan)))


def run_fields(ctx: Context, plan: Plan, key: tuple[str, str]) -> dict[str, Any]:
    """The run the spec calls for, read from AWS (DescribeJobs, 100 jobs a call)."""
    return dict(kinds()[key[0]].run_status(ctx, plan.desired[key], Refs(plan)))


def run_readiness(fields: dict[str, Any], res: Any = None) -> Readiness:
    """A run's readiness; `res`, the declared resource: a template (`submitOnApply: false`),
    which only a schedule runs, is ready without a run of its own, so that what refers to it
    (the Schedule) is not held up waiting for one."""
    if not fields.get("runId"):
        if res is not None and getattr(res.spec, "submitOnApply", True) is False:
            return True, c.AVAILABLE, "runs only when a schedule fires (submitOnApply: false)"
        return False, c.UNAVAILABLE, "the run is not submitted"
    return True, c.AVAILABLE, f"run {fields['runId']}: {fields.get('runStatus')}"


def run_finished(status: dict[str, Any]) -> bool:
    return status.get("runStatus") in FINISHED_RUN


@dataclass(frozen=True)
class Verdict:
    """What a reconcile that did not simply converge means for the conditions, and when to
    look again. The operator writes it into status; nothing else decides these."""

    synced: bool
    reason: str
    message: str
    not_ready: bool  # Ready=False too: nothing usable exists in AWS (yet)
    retry_after: float | None  # None: wait for a human (a conflict, a refusal) or a watch
    permanent: bool = False  # will not get better by retrying the same spec


def backoff(retry: int) -> float:
    return min(MAX_BACKOFF, 5.0 * 2 ** min(retry, 10))


def progress_delay(retry: int, asked: float) -> float:
    """How soon to look at work AWS is still doing: soon at first, then less often."""
    return max(asked, min(MAX_PROGRESS_DELAY, 2.0 * 1.6 ** min(retry, 12)))


def error_verdict(exc: BaseException, retry: int, what: str) -> Verdict:
    """An exception before any action ran (planning, reading AWS)."""
    message = f"{what}: {exc}"
    if isinstance(exc, TerminalError):
        return Verdict(False, c.RECONCILE_ERROR, message, True, None, permanent=True)
    delay = max(backoff(retry), getattr(exc, "delay", 0.0))
    return Verdict(False, c.RECONCILE_ERROR, message, True, delay)


def verdict(result: Any, key: tuple[str, str], retry: int) -> Verdict | None:
    """For a reconcile Result (engine/reconcile.py): None when it converged or is waiting for
    a reference (the caller reports those)."""
    observed = result.plan.observed.get(key)
    if result.blocked:
        conflict = any(a.verb is Verb.CONFLICT for a in result.blocked)
        message = "; ".join(a.summary for a in result.blocked)
        reason = c.CONFLICT if conflict else c.REFUSED
        return Verdict(False, reason, message, observed is None, None)
    if result.failed:
        failed = result.failed
        message = "; ".join(
            f"{o.action.verb.label} {o.action.aws_name or o.action.name}: {o.detail}"
            for o in failed
        )
        errors = [o.error for o in failed if o.error is not None]
        permanent = bool(errors) and all(isinstance(e, TerminalError) for e in errors)
        asked = max((getattr(e, "delay", 0.0) for e in errors), default=0.0)
        delay = None if permanent else max(backoff(retry), asked)
        return Verdict(False, c.RECONCILE_ERROR, message, observed is None, delay, permanent)
    if result.pending:
        message = "; ".join(o.detail for o in result.pending)
        asked = min(o.retry_after for o in result.pending)
        # An existing resource stays usable while AWS updates it: Ready changes only when
        # nothing existed before.
        return Verdict(True, c.CREATING, message, observed is None, progress_delay(retry, asked))
    return None
