"""kopf handlers for the five kinds: each one calls the engine for one object and writes status.

Per kind: create, update and resume converge the object; delete removes its AWS side (unless
`deletionPolicy: Retain`) before kopf lets its finalizer go; one sweep checks every object's
drift each `drift_interval` seconds (operator/sweep.py, no kopf timer); two indices keep every
object's manifest and the objects that refer to each name; a watch handler wakes the objects
that wait for another one.

Decisions, in the order `Operator.converge` takes them:
1. The spec alone is invalid: Ready=False and Synced=False with reason InvalidSpec, a Warning
   event, and kopf.PermanentError (kopf stops retrying; the sweep leaves it alone: no AWS
   call, so nothing loops).
2. A reference is missing, invalid or not Ready: Synced=False DependencyNotReady (Ready
   stays as the AWS side is), no AWS call, and the handler returns normally.
3. Otherwise the engine plans the object with what it refers to and runs its own actions.
   Pending actions of others (`waiting_for`) are treated as in 2; a conflict or refusal is
   reported and waits for a human (annotation, label or spec change); a failure is
   ReconcileError and kopf.TemporaryError with exponential backoff.

Waking waiting objects as soon as what they wait for is ready: operator/waking.py.

Drift: the sweep looks at an object that is Ready and Synced at its current generation in a
plan of its whole stack shared by the checks of a pass (operator/drift.py). If its own actions
would write (a change made by hand), it posts a Warning event "Drift" with the changed fields,
writes Synced=False (reason Drift) at once, and reconciles.

Runs: once a pipeline's or task's run is in its status, that run (the spec's run ID) is never
submitted again, by any handler: the sweep refreshes its job counts until it finishes, then
stops reading AWS for it. A changed spec (or `spec.rerun`) names a new run, which is planned
and submitted as the engine decides (concurrencyPolicy included).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from reconciler.aws.clients import Aws
from reconciler.engine import conditions as c
from reconciler.engine.context import Context, Options
from reconciler.engine.reconcile import Result, reconcile
from reconciler.engine.runs import is_run_kind
from reconciler.engine.status import (
    JOB_LINES,
    Verdict,
    desired_only,
    error_verdict,
    resource_fields,
    resource_readiness,
    run_fields,
    run_finished,
    run_readiness,
    spec_run_id,
    verdict,
)
from reconciler.engine.types import Action, Verb
from reconciler.manifests.validate import ResourceSet
from reconciler.operator import kube
from reconciler.operator.deleting import Deleting
from reconciler.operator.draft import STATUS_FIELDS, Draft
from reconciler.operator.drift import DriftPasses, drift_result, observe
from reconciler.operator.kube import PausingMemories
from reconciler.operator.memory import KeyedLocks, RecentStatuses
from reconciler.operator.objects import (
    GROUP,
    VERSION,
    InvalidSpec,
    Summary,
    adopting,
    check,
    closure,
    deleting_jobs,
    manifest_of,
    plain,
    plural_of,
    stack_of,
    summarize,
)
from reconciler.operator.sweep import Sweep, operator_indices
from reconciler.operator.waking import Waker, objects_index, referrers_index, summaries
from reconciler.registry import models

logger = logging.getLogger(__name__)

EVENT_REASONS = {
    Verb.CREATE: "Created",
    Verb.UPDATE: "Updated",
    Verb.REPLACE: "Replaced",
    Verb.REVISION: "NewRevision",
    Verb.SUBMIT: "Submitted",
    Verb.DELETE: "Deleted",
    Verb.ADOPT: "Adopted",
}
WRITTEN_TTL = 30.0  # seconds for which a status we wrote is fresher than the watched one


def _subject(body: kopf.Body) -> str:
    """How log lines name an object: `JobQueue default/stress-ng-queue`."""
    meta = body.get("metadata") or {}
    return f"{body.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


class Operator(Deleting):
    """Handlers bound to one AWS account; `register` adds them to a kopf registry."""

    def __init__(
        self,
        aws: Aws,
        settings: kopf.OperatorSettings,
        drift_interval: float,
        workers: int = 16,
        options: dict[str, Any] | None = None,
        memories: PausingMemories | None = None,
    ):
        self.aws = aws
        self.settings = settings
        self.drift_interval = drift_interval
        self.options = dict(options or {})
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")
        self._locks = KeyedLocks()  # uid -> a lock while a handler holds it
        self._written = RecentStatuses(WRITTEN_TTL)  # uid -> the status last written
        self.waker = Waker(settings)
        self.drift = DriftPasses(drift_interval)  # the stacks' shared drift plans
        self.memories = memories or PausingMemories()  # kopf's, which tell a pause (sweep.py)
        self.sweep = Sweep.of(self)
        self._sweeping: asyncio.Task[None] | None = None
        self._deleting: dict[str, Action] = {}  # uid -> a delete AWS is still carrying out
        self._job_states: dict[str, dict[str, str]] = {}  # uid -> task -> job status said

    # -- registration --------------------------------------------------------------------------

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for kind in models():
            where: dict[str, Any] = {"registry": registry}
            resource = (GROUP, VERSION, plural_of(kind))
            kopf.index(*resource, id=objects_index(kind), **where)(self._indexer(kind))
            kopf.index(*resource, id=referrers_index(kind), **where)(self._referrers(kind))
            change = self._change_handler(kind)
            kopf.on.resume(*resource, id="reconcile-resume", **where)(change)
            kopf.on.create(*resource, id="reconcile-create", **where)(change)
            kopf.on.update(*resource, id="reconcile-update", **where)(change)
            kopf.on.delete(*resource, id="remove", **where)(self._delete_handler(kind))
            kopf.on.event(*resource, id="wake-waiting", **where)(self._event_handler(kind))
        kopf.on.probe(id="awsCalls", registry=registry)(self._probe)
        kopf.on.probe(id="awsCallsByOperation", registry=registry)(self._probe_operations)
        kopf.on.cleanup(registry=registry)(self._cleanup)

    def _indexer(self, kind: str) -> Callable[..., Any]:
        async def index(body: kopf.Body, **_: Any) -> dict[Any, Summary]:
            s = summarize(kind, body)
            return {(s.namespace, s.name): s}

        return index

    def _referrers(self, kind: str) -> Callable[..., Any]:
        async def index(body: kopf.Body, **_: Any) -> dict[Any, tuple[str, str]]:
            s = summarize(kind, body)
            return {(s.namespace, ref_kind, ref): (kind, s.name) for ref_kind, ref in s.refs}

        return index

    def _change_handler(self, kind: str) -> Callable[..., Any]:
        async def handler(body: kopf.Body, patch: kopf.Patch, retry: int = 0, **kw: Any) -> None:
            self._start_sweep(kw)
            await self.converge(kind, body, patch, kw, timer=False, retry=retry)

        return handler

    def _start_sweep(self, kw: dict[str, Any]) -> None:
        """The drift sweep starts with the first object kopf hands over, from a handler's
        context: kopf's login and event queue are there (a startup handler has no queue)."""
        if self._sweeping is None:
            self._sweeping = asyncio.create_task(self.sweep.run(operator_indices(kw)))

    def _delete_handler(self, kind: str) -> Callable[..., Any]:
        async def handler(body: kopf.Body, patch: kopf.Patch, retry: int = 0, **kw: Any) -> None:
            await self.delete(kind, body, patch, retry)

        return handler

    def _event_handler(self, kind: str) -> Callable[..., Any]:
        async def handler(body: kopf.Body, type: str | None = None, **kwargs: Any) -> None:
            if type == "DELETED" or not body.get("metadata"):
                return
            await self.waker.wake_waiting(kind, body, kwargs)

        return handler

    async def _probe(self, **_: Any) -> int:
        return self.aws.stats.total

    async def _probe_operations(self, **_: Any) -> dict[str, int]:
        return dict(self.aws.stats.calls)

    async def _cleanup(self, **_: Any) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        self.sweep.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- helpers -------------------------------------------------------------------------------

    def _draft(self, body: kopf.Body) -> Draft:
        """The status as the server has it (what a patch is computed against), and as this
        operator last wrote it (where the new status starts from): a handler can run before
        the patch of the previous one has come back through the watch."""
        status = body.get("status") or {}
        served = {k: plain(status[k]) for k in STATUS_FIELDS if k in status}
        sent = self._written.get(str(body.metadata.uid))
        start = sent if sent is not None else served
        return Draft(served, copy.deepcopy(start), body.metadata.get("generation"), sent)

    def _remember(self, body: kopf.Body, draft: Draft) -> None:
        self._written.put(str(body.metadata.uid), draft.after)
        draft.before = copy.deepcopy(draft.after)
        draft.sent = None

    def _flush(self, body: kopf.Body, draft: Draft, patch: kopf.Patch) -> None:
        delta = draft.delta()
        if delta:
            for key, value in delta.items():
                patch.status[key] = value
            self._remember(body, draft)

    async def _flush_now(self, kind: str, body: kopf.Body, draft: Draft) -> None:
        """Writes the status at once (not when the handler returns)."""
        delta = draft.delta()
        if not delta:
            return
        meta = body.metadata
        await kube.merge_patch(
            self.settings, kind, meta.namespace, meta.name, {"status": delta}, "status"
        )
        self._remember(body, draft)

    def _context(self, body: kopf.Body) -> Context:
        options = Options(stack=stack_of(body), adopt=adopting(body), stream_output=False)
        options = dataclasses.replace(options, **deleting_jobs(body), **self.options)
        subject = _subject(body)
        return Context(
            aws=self.aws, options=options, log=lambda line: logger.debug("%s: %s", subject, line)
        )

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    # -- converging ----------------------------------------------------------------------------

    async def converge(
        self,
        kind: str,
        body: kopf.Body,
        patch: kopf.Patch,
        indices: dict[str, Any],
        timer: bool,
        retry: int = 0,
    ) -> None:
        meta = body.metadata
        async with self._locks.hold(str(meta.uid)):
            draft = self._draft(body)
            try:
                await self._converge(kind, body, draft, patch, indices, timer, retry)
            finally:
                self._flush(body, draft, patch)

    async def _converge(
        self,
        kind: str,
        body: kopf.Body,
        draft: Draft,
        patch: kopf.Patch,
        indices: dict[str, Any],
        timer: bool,
        retry: int,
    ) -> None:
        meta = body.metadata
        manifest = manifest_of(kind, body)
        try:
            check(manifest)
            found = closure(manifest, lambda k, n: summaries(indices, k, meta.namespace, n))
        except InvalidSpec as exc:
            self._invalid(body, draft, str(exc))
            if timer:
                return
            raise kopf.PermanentError(f"invalid spec: {exc}") from None
        if found.declared is None:
            self._waiting(body, draft, "; ".join(found.missing))
            return
        key = (kind, str(meta.name))
        ctx = self._context(body)
        if timer and not draft.current:
            return  # a change of spec is being handled by the change handlers
        if is_run_kind(kind):
            submitted = draft.after.get("runId")
            if submitted and submitted == spec_run_id(ctx, found.declared, key):
                # Submitted already: follow it, never submit it again (not even if AWS has
                # stopped listing its jobs). A new spec or `rerun` is a new run.
                await self._refresh_run(ctx, found.declared, key, draft, not timer, body)
                return
        elif (
            timer
            and draft.ready()
            and draft.synced()
            and not await self._check_drift(kind, body, ctx, found.declared, indices, draft)
        ):
            return
        await self._apply(kind, body, ctx, found.declared, key, draft, retry)

    def _invalid(self, body: kopf.Body, draft: Draft, message: str) -> None:
        changed = draft.put(c.READY, False, c.INVALID_SPEC, message)
        changed |= draft.put(c.SYNCED, False, c.INVALID_SPEC, message)
        draft.observed()
        if changed:
            kopf.warn(body, reason=c.INVALID_SPEC, message=c.short(message))

    def _waiting(self, body: kopf.Body, draft: Draft, message: str) -> None:
        message = f"waiting for {message}"
        changed = draft.put(c.SYNCED, False, c.DEPENDENCY_NOT_READY, message)
        if not draft.ready():
            changed |= draft.put(c.READY, False, c.DEPENDENCY_NOT_READY, message)
        draft.observed()
        if changed:
            kopf.info(body, reason=c.DEPENDENCY_NOT_READY, message=c.short(message))

    async def _check_drift(
        self,
        kind: str,
        body: kopf.Body,
        ctx: Context,
        declared: ResourceSet,
        indices: dict[str, Any],
        draft: Draft,
    ) -> bool:
        """True if the object has to be reconciled: it drifted, or the plan cannot tell."""
        summary = summarize(kind, body)
        try:
            result = await drift_result(self.drift, indices, summary, ctx, declared, self._call)
        except Exception as exc:  # AWS unreachable: report it, retry on the next tick
            draft.put(c.SYNCED, False, c.RECONCILE_ERROR, f"cannot read AWS: {exc}")
            return False
        if result.waiting_for or result.blocked:
            return True  # reconciling reports these as usual
        writes = [a for a in result.actions if a.verb.writes]
        if not writes:
            self._observed(kind, result, (kind, summary.name), draft)
            return False
        fields = sorted({ch.path for a in writes for ch in a.changes})
        what = ", ".join(fields) if fields else ", ".join(f"{a.verb.label}" for a in writes)
        message = f"changed outside the operator: {what}; correcting"
        kopf.warn(body, reason=c.DRIFT, message=c.short(message))
        draft.put(c.SYNCED, False, c.DRIFT, message)
        if any(a.verb in (Verb.CREATE, Verb.REPLACE) for a in writes):
            draft.put(c.READY, False, c.DRIFT, message)
        await self._flush_now(kind, body, draft)
        return True

    async def _apply(
        self,
        kind: str,
        body: kopf.Body,
        ctx: Context,
        declared: ResourceSet,
        key: tuple[str, str],
        draft: Draft,
        retry: int,
    ) -> None:
        draft.observed()
        place = (str(body.metadata.namespace), ctx.stack)  # its shared drift plan: drift.py
        try:
            result: Result = await self._call(reconcile, ctx, declared, key)
        except Exception as exc:  # planning failed: AWS errors, lookups that found nothing
            self.drift.wrote(place, True, key)  # perhaps after a write
            self._report(body, draft, error_verdict(exc, retry, "planning failed"))
            return
        self.drift.wrote(place, result.changed, key)
        if result.waiting_for:
            self._waiting(body, draft, ", ".join(result.waiting_for))
            return
        for outcome in result.outcomes:
            # A write AWS is still carrying out happened all the same: say so once.
            started = outcome.status == "pending" and outcome.action.verb.writes
            if outcome.status == "done" or started:
                self._event_done(body, outcome.action, outcome.detail)
        found = verdict(result, key, retry)
        if found is not None:
            if result.blocked and result.plan.observed.get(key) and not is_run_kind(kind):
                draft.after.update(resource_fields(result.plan, key))
            self._report(body, draft, found)
            return
        if result.changed and not is_run_kind(kind):  # read back what the actions made
            try:
                result = await self._call(reconcile, ctx, declared, key, True)
            except Exception as exc:
                logger.warning("re-reading %s/%s after applying: %s", *key, exc)
        if is_run_kind(kind):
            try:
                fields = await self._call(run_fields, ctx, result.plan, key)
            except Exception as exc:  # submitted, but not readable yet: the sweep reads it
                logger.warning("reading the run of %s/%s: %s", *key, exc)
                fields = {"runId": spec_run_id(ctx, declared, key), "runStatus": "SUBMITTED"}
            self._job_events(body, fields)
            draft.after.update(fields)
            ready, reason, message = run_readiness(fields, declared.get(*key))
        else:
            self._observed(kind, result, key, draft)
            ready, reason, message = resource_readiness(kind, result.plan.observed.get(key))
        draft.put(c.READY, ready, reason, message)
        draft.put(c.SYNCED, True, c.RECONCILED, "the AWS side matches the spec")

    def _observed(self, kind: str, result: Result, key: tuple[str, str], draft: Draft) -> None:
        observe(kind, result, key, draft)

    async def _refresh_run(
        self,
        ctx: Context,
        declared: ResourceSet,
        key: tuple[str, str],
        draft: Draft,
        force: bool,
        body: kopf.Body,
    ) -> None:
        draft.observed()
        draft.put(c.SYNCED, True, c.RECONCILED, f"run {draft.after['runId']} was submitted")
        if run_finished(draft.after) and not force:
            return  # a finished run does not change: no more AWS reads for it
        try:
            fields = await self._call(run_fields, ctx, desired_only(ctx, declared), key)
        except Exception as exc:
            logger.warning("reading the run of %s/%s: %s", *key, exc)
            return
        self._job_events(body, fields)
        if fields.get("runId"):
            draft.after.update(fields)
            draft.put(c.READY, *run_readiness(fields))
        else:
            draft.put(
                c.READY,
                True,
                c.AVAILABLE,
                f"run {draft.after['runId']} was submitted; AWS no longer lists its jobs",
            )

    def _report(self, body: kopf.Body, draft: Draft, found: Verdict) -> None:
        """Writes what the engine made of a result that did not converge, and raises what
        tells kopf when to call again: never (a conflict, a refusal, a spec AWS rejects for
        good), or after a delay (an error worth retrying, work AWS is still doing)."""
        if found.synced:
            changed = draft.put(c.SYNCED, True, c.RECONCILED, f"in progress: {found.message}")
        else:
            changed = draft.put(c.SYNCED, False, found.reason, found.message)
        if found.not_ready:
            changed |= draft.put(c.READY, False, found.reason, found.message)
        if changed and not found.synced:
            kopf.warn(body, reason=found.reason, message=c.short(found.message))
        elif changed:
            kopf.info(body, reason=found.reason, message=c.short(found.message))
        if found.permanent:
            raise kopf.PermanentError(found.message)
        if found.retry_after is not None:
            raise kopf.TemporaryError(found.message, delay=found.retry_after)

    def _event_done(self, body: kopf.Body, action: Action, detail: str) -> None:
        reason = EVENT_REASONS.get(action.verb, "Reconciled")
        summary = f" ({action.summary})" if action.summary else ""
        text = f"{action.verb.label} {action.aws_name or action.name}{summary}: {detail}"
        kopf.info(body, reason=reason, message=c.short(text))
        logger.info("%s: %s", _subject(body), text)

    def _job_events(self, body: kopf.Body, fields: dict[str, Any]) -> None:
        """An event for each job whose state changed since this operator last said it, with
        the fields of the Slack message a Notification sends (a FAILED one as a Warning).
        Taken out of `fields`: the lines are not status. Remembered in memory only: an
        operator that restarts says each job's current state once more."""
        lines: dict[str, str] = fields.pop(JOB_LINES, None) or {}
        said = self._job_states.setdefault(str(body.metadata.uid), {})
        for task, line in lines.items():
            status = line.split(" ", 1)[0]
            if said.get(task) == status:
                continue
            said[task] = status
            post = kopf.warn if status == "FAILED" else kopf.info
            post(body, reason="JobStateChange", message=c.short(f"{task}: {line}"))

    def _forget(self, uid: str) -> None:
        self._written.forget(uid)
        self._job_states.pop(uid, None)
        self.waker.forget(uid)
        self._deleting.pop(uid, None)
        self.sweep.forget(uid)
