"""The calls the operator makes to Kubernetes outside kopf's own handling of an object.

kopf applies a handler's `patch` when the handler returns. Two things cannot wait for that:
the short-lived `Synced=False` of a drift being corrected, and the annotation that wakes an
object waiting for its references. The drift sweep (operator/sweep.py) is no kopf handler:
it reads the few objects it has to converge and writes their status itself. All are sent
through kopf's own authenticated API client, so that they use the same login (kubeconfig or
service account) and the same retries as everything else kopf does. That client lives in
kopf's private modules, as does the sign of a pause (`PausingMemories`): this file is the only
place that touches them, and a failure here is logged, never fatal (the drift sweep retries
everything that waits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
from kopf._cogs.clients import api as kopf_api  # private: see the module docstring
from kopf._core.engines.daemons import DaemonsMemory  # private: see the module docstring
from kopf._core.reactor.inventory import ResourceMemories  # private: see the module docstring

from reconciler.operator.objects import GROUP, VERSION, plural_of

logger = logging.getLogger(__name__)


def resource_of(kind: str) -> kopf.Resource:
    return kopf.Resource(GROUP, VERSION, plural_of(kind), kind=kind, namespaced=True)


async def merge_patch(
    settings: kopf.OperatorSettings,
    kind: str,
    namespace: str,
    name: str,
    body: dict[str, Any],
    subresource: str | None = None,
) -> bool:
    url = resource_of(kind).get_url(namespace=namespace, name=name, subresource=subresource)
    try:
        await kopf_api.patch(
            url=url,
            headers={"Content-Type": "application/merge-patch+json"},
            payload=body,
            settings=settings,
            logger=logger,
        )
    except Exception as exc:  # the object may be gone; the sweep retries what matters
        logger.warning("could not patch %s %s/%s: %s", kind, namespace, name, exc)
        return False
    return True


async def exists(
    settings: kopf.OperatorSettings, resource: kopf.Resource, namespace: str | None, name: str
) -> bool:
    """Whether the object is there; False also when its kind is not installed (404)."""
    from kopf._cogs.clients import errors as kopf_errors  # private: see the module docstring

    url = resource.get_url(namespace=namespace, name=name)
    try:
        await kopf_api.get(url=url, settings=settings, logger=logger)
    except kopf_errors.APINotFoundError:
        return False
    return True


async def get(
    settings: kopf.OperatorSettings, kind: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """The object as the API server has it now; None if it is gone or cannot be read (logged:
    the next sweep tries again)."""
    from kopf._cogs.clients import errors as kopf_errors  # private: see the module docstring

    url = resource_of(kind).get_url(namespace=namespace, name=name)
    try:
        return dict(await kopf_api.get(url=url, settings=settings, logger=logger))
    except kopf_errors.APINotFoundError:
        return None
    except Exception as exc:
        logger.warning("could not read %s %s/%s: %s", kind, namespace, name, exc)
        return None


PAUSE_SIGN_SECONDS = 3.0  # kopf's daemon killer looks at the memories every second while paused


class PausingMemories(ResourceMemories):
    """kopf's per-object memories (`kopf.operator(memories=...)`), which also tell whether kopf
    has paused the operator (peering: another replica outranks it, or the peering object is
    missing).

    While the operator is paused, kopf's daemon killer (kopf/_core/engines/daemons.py) goes
    through every object's daemon memories once a second, to stop daemons that sneak in; it
    does so at no other time but the operator's exit. The drift sweep is no kopf daemon, so it
    asks here. tests/operator/test_sweep.py runs kopf's daemon killer to hold it to that.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._asked = float("-inf")

    def iter_all_daemon_memories(self) -> Iterator[DaemonsMemory]:
        self._asked = self._clock()
        return super().iter_all_daemon_memories()

    def paused(self) -> bool:
        return self._clock() - self._asked < PAUSE_SIGN_SECONDS
