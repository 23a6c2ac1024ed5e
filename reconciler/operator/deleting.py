"""Deleting a custom resource: its AWS side goes first (unless `deletionPolicy: Retain`), then
kopf lets the finalizer go. A delete AWS is still carrying out holds no worker: the handler
says so and kopf calls it again after a delay; the event "Deleted" is posted once, when the
resource is gone. A queue with unfinished jobs keeps its finalizer unless the annotation
`reconciler.io/delete-unfinished-jobs` says drain or force.
"""

from __future__ import annotations

import kopf

from reconciler.engine import conditions as c
from reconciler.engine.reconcile import Result, remove
from reconciler.engine.status import backoff, error_verdict, progress_delay
from reconciler.engine.types import Action
from reconciler.manifests.validate import ResourceSet
from reconciler.operator.draft import Draft
from reconciler.operator.drift import DriftPasses
from reconciler.operator.memory import KeyedLocks
from reconciler.operator.objects import (
    InvalidSpec,
    check,
    deletion_policy,
    manifest_of,
    stack_of,
)
from reconciler.registry import models


class Deleting:
    """The delete handler of `Operator` (operator/handlers.py), which provides the rest."""

    _deleting: dict[str, Action]
    _locks: KeyedLocks
    drift: DriftPasses

    async def delete(self, kind: str, body: kopf.Body, patch: kopf.Patch, retry: int) -> None:
        meta = body.metadata
        uid = str(meta.uid)
        async with self._locks.hold(uid):
            if deletion_policy(kind, body) == "Retain":
                kopf.info(
                    body,
                    reason="Retained",
                    message="deletionPolicy is Retain: the AWS resource is left in place",
                )
                self._forget(uid)
                return
            manifest = manifest_of(kind, body)
            try:
                check(manifest)
            except InvalidSpec:
                kopf.warn(
                    body,
                    reason=c.INVALID_SPEC,
                    message="the spec is invalid: nothing is deleted in AWS",
                )
                self._forget(uid)
                return
            res = models()[kind].model_validate(manifest)
            declared = ResourceSet(resources=[res])
            draft = self._draft(body)
            try:
                await self._remove(kind, body, draft, declared, retry)
            finally:
                self._flush(body, draft, patch)
            self._forget(uid)

    async def _remove(
        self, kind: str, body: kopf.Body, draft: Draft, declared: ResourceSet, retry: int
    ) -> None:
        key = (kind, str(body.metadata.name))
        try:
            result: Result = await self._call(remove, self._context(body), declared, key)
        except Exception as exc:
            found = error_verdict(exc, retry, "deleting failed")
            draft.put(c.SYNCED, False, found.reason, found.message)
            raise kopf.TemporaryError(found.message, delay=found.retry_after or 60.0) from None
        finally:  # what the stack's shared drift plan read may be stale now
            self.drift.wrote((str(body.metadata.namespace), stack_of(body)), True, key)
        if result.blocked:
            message = "; ".join(a.summary for a in result.blocked)
            if draft.put(c.SYNCED, False, c.REFUSED, f"cannot delete: {message}"):
                kopf.warn(body, reason=c.REFUSED, message=c.short(f"cannot delete: {message}"))
            raise kopf.TemporaryError(message, delay=max(60.0, backoff(retry)))
        uid = str(body.metadata.uid)
        for outcome in result.outcomes:
            if outcome.status == "done":
                self._event_done(body, outcome.action, outcome.detail)
                self._deleting.pop(uid, None)
            elif outcome.status == "pending":
                self._deleting.setdefault(uid, outcome.action)
        if uid in self._deleting and not any(a.verb.runs for a in result.actions):
            # A delete AWS was still carrying out has finished since: say so once.
            self._event_done(body, self._deleting.pop(uid), "deleted")
        if result.failed:
            details = "; ".join(f"{o.action.verb.label}: {o.detail}" for o in result.failed)
            if draft.put(c.SYNCED, False, c.RECONCILE_ERROR, f"deleting failed: {details}"):
                kopf.warn(body, reason=c.RECONCILE_ERROR, message=c.short(details))
            raise kopf.TemporaryError(details, delay=backoff(retry))
        if result.pending:  # AWS is still deleting: look again, holding no worker
            message = "; ".join(o.detail for o in result.pending)
            draft.put(c.SYNCED, True, c.DELETING, f"in progress: {message}")
            raise kopf.TemporaryError(message, delay=progress_delay(retry, 0.0))
