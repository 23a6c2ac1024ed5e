"""Waking the objects that wait for another one, as soon as it becomes ready.

When an object becomes Ready, the objects that refer to it (a reverse index kopf keeps) and
wait (Synced reason DependencyNotReady) with every reference now ready get the annotation
`reconciler.io/dependencies-ready` set to a digest of those references' readiness. The change
is an ordinary update for kopf, so its update handler runs at once. The digest makes the patch
idempotent: one patch per readiness change, never a loop. The drift timer stays the safety net.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from reconciler.operator import kube
from reconciler.operator.objects import NUDGE_ANNOTATION, Summary, nudge_value, plural_of, summarize
from reconciler.registry import models

logger = logging.getLogger(__name__)


def objects_index(kind: str) -> str:
    return f"objects_{plural_of(kind)}"


def referrers_index(kind: str) -> str:
    return f"referrers_{plural_of(kind)}"


def summaries(indices: dict[str, Any], kind: str, namespace: str, name: str) -> Summary | None:
    store = indices[objects_index(kind)].get((namespace, name))
    return next(iter(store), None) if store else None


class Waker:
    def __init__(self, settings: kopf.OperatorSettings):
        self.settings = settings
        self._nudged: dict[str, str] = {}  # uid -> last nudge value sent

    def forget(self, uid: str) -> None:
        self._nudged.pop(uid, None)

    async def wake_waiting(self, kind: str, body: kopf.Body, indices: dict[str, Any]) -> None:
        me = summarize(kind, body)
        candidates: set[tuple[str, str]] = set()
        if me.ready:
            for other in models():
                store = indices[referrers_index(other)].get((me.namespace, kind, me.name))
                candidates.update(store or ())
        if me.waiting:
            candidates.add((kind, me.name))
        for dep_kind, dep_name in sorted(candidates):
            await self._nudge(indices, me.namespace, dep_kind, dep_name)

    async def _nudge(self, indices: dict[str, Any], namespace: str, kind: str, name: str) -> None:
        target = summaries(indices, kind, namespace, name)
        if target is None or not target.waiting or not target.valid:
            return
        deps = [summaries(indices, k, namespace, n) for k, n in target.refs]
        ready = [d for d in deps if d is not None and d.ready]
        if len(ready) != len(deps):
            return  # still waiting for something: its readiness will wake this one
        value = nudge_value(ready)
        if value in (target.nudge, self._nudged.get(target.uid)):
            return
        self._nudged[target.uid] = value
        logger.info("%s/%s/%s: its references are ready; reconciling it", namespace, kind, name)
        await kube.merge_patch(
            self.settings,
            kind,
            namespace,
            name,
            {"metadata": {"annotations": {NUDGE_ANNOTATION: value}}},
        )
