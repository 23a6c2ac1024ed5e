"""The in-cluster operator: the only package that imports kopf.

Each custom resource of the five kinds (group reconciler.io, version v1alpha1) is reconciled
by the same engine as the CLI: `handlers` holds the kopf handlers and the decisions, `objects`
turns custom resources into manifests and stacks, `status` and `conditions` shape the status,
`kube` makes the two writes kopf does not make for us, and `runner.run` starts it all.
"""

from reconciler.operator.runner import DEFAULT_DRIFT_INTERVAL, run

__all__ = ["DEFAULT_DRIFT_INTERVAL", "run"]
