"""The two writes the operator makes outside kopf's own patching of the handled object.

kopf applies a handler's `patch` when the handler returns. Two things cannot wait for that:
the short-lived `Synced=False` of a drift being corrected, and the annotation that wakes an
object waiting for its references. Both are merge patches sent through kopf's own
authenticated API client, so that they use the same login (kubeconfig or service account)
and the same retries as everything else kopf does. That client lives in kopf's private
modules: this file is the only place that touches them, and a failure here is logged, never
fatal (the drift timer retries everything that waits).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kopf._cogs.clients import api as kopf_api  # private: see the module docstring

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
    except Exception as exc:  # the object may be gone; the timer retries what matters
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
