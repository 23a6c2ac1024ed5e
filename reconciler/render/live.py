"""Live resources found without manifests (engine/inventory.py), as `get` and `export` show
them: tables as `kubectl get` prints them, and manifests `apply` takes. Pure: no AWS, no
printing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.engine.inventory import Inventory
from reconciler.engine.status import resource_readiness
from reconciler.manifests.writing import dump_manifests
from reconciler.registry import kinds
from reconciler.render.plans import table

__all__ = ["dump_manifests", "live_rows", "live_tables", "manifests"]

# Annotations `get -o yaml` adds for scripts: what AWS says of the resource. `apply` ignores
# annotations, so the output applies as it is.
if TYPE_CHECKING:
    from reconciler.kinds.base import Manifest

ARN_ANNOTATION = "reconciler.io/arn"
STATUS_ANNOTATION = "reconciler.io/status"


def live_rows(inv: Inventory) -> list[dict[str, Any]]:
    registered = kinds()
    rows = []
    for f in inv.found:
        live = f.live
        rows.append(
            {
                "kind": f.kind,
                "name": f.name,
                "awsName": live.aws_name,
                "status": live.status,
                "statusReason": live.status_reason,
                "arn": live.arn or None,
                "owner": live.owner.stack if live.owner else None,
                "labels": f.labels,
                "ready": resource_readiness(f.kind, live)[0],
                "fields": registered[f.kind].status_fields(None, live),
            }
        )
    return rows


def _labels_text(labels: dict[str, str]) -> str | None:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def live_tables(rows: list[dict[str, Any]], wide: bool = False, owner: bool = False) -> list[str]:
    """One table per kind: NAME, the columns the kind declares (with `wide`, those kubectl
    shows only with -o wide too), READY; with `wide` also ARN, LABELS and AWS's reason for
    the status; with `owner` (export's view of the whole account) the owning stack."""
    lines: list[str] = []
    registered = kinds()
    for kind in dict.fromkeys(r["kind"] for r in rows):
        columns = [c for c in registered[kind].columns if wide or c.priority == 0]
        names = ["name", *(c.name for c in columns), "ready"]
        if owner:
            names.append("stack")
        if wide:
            names += [n for n in ("arn", "labels", "reason") if n not in names]
        cells = []
        for r in rows:
            if r["kind"] != kind:
                continue
            cell = {"name": r["name"], **{c.name: r["fields"].get(c.field) for c in columns}}
            cell |= {"ready": r["ready"], "stack": r["owner"] or "(unowned)"}
            if wide:
                cell.setdefault("arn", r["arn"])
                cell |= {"labels": _labels_text(r["labels"]), "reason": r["statusReason"]}
            cells.append(cell)
        if lines:
            lines.append("")
        lines.append(f"{kind}:")
        lines += table(cells, names)
    return lines


def manifests(inv: Inventory, stack: str, annotate: bool = False) -> list[tuple[str, Manifest]]:
    """("Kind/name", manifest) of every resource found; with `annotate`, the ARN and status
    as annotations (for `get`; `export` writes the manifest alone)."""
    name_of = inv.name_of(stack)
    out = []
    for f in inv.found:
        found = kinds()[f.kind].manifest(f.live, f.name, name_of)
        if annotate and not found.problems:
            notes = {ARN_ANNOTATION: f.live.arn, STATUS_ANNOTATION: f.live.status}
            notes = {k: v for k, v in notes.items() if v}
            if notes:
                found.data["metadata"]["annotations"] = notes
        out.append((f"{f.kind}/{f.name}", found))
    return out
