"""`get`, `delete` and `export` without manifests: resources named as kubectl names them
(`jobqueues`, `jobqueue/NAME`, `jobqueue NAME...`, `-l key=value`), read from AWS by the
stack's ownership tags (engine/inventory.py).

Imported by the commands that use it, after their options are parsed: it loads the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.cli.options import Target, err, make_context, out, print_stats
from reconciler.engine.inventory import Inventory, Scope, not_found, read
from reconciler.errors import EXIT_ERROR, EXIT_OK, PlanError, UsageError
from reconciler.render import live as render
from reconciler.selectors import LabelSelector, kind_word, parse_labels, parse_targets
from reconciler.selectors import Target as Named

if TYPE_CHECKING:
    from reconciler.engine.context import Context


def selection(words: tuple[str, ...], labels: tuple[str, ...]) -> tuple[list[Named], LabelSelector]:
    try:
        return list(parse_targets(words)), parse_labels(labels)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _elsewhere_hint(inv: Inventory, stack: str) -> None:
    for t, o in inv.elsewhere.items():
        whose = "no stack" if o.owner is None else f"stack {o.owner.stack!r}"
        err(
            f"  {kind_word(t.kind)} {o.aws_name!r} exists, owned by {whose}, not by stack "
            f"{stack!r}: `reconciler export {kind_word(t.kind)}/{o.aws_name}` writes its manifest"
        )


def get_live(words: tuple[str, ...], labels: tuple[str, ...], target: Target, output: str) -> int:
    """What the stack owns: a table per kind, or manifests (-o yaml|json)."""
    targets, selector = selection(words, labels)
    ctx = make_context(target, output)
    inv = read(ctx, targets, "stack", selector)
    code = EXIT_OK
    if output in ("text", "wide"):
        rows = render.live_rows(inv)
        for line in render.live_tables(rows, wide=output == "wide"):
            out(line)
    elif inv.found:
        code = _print_manifests(ctx, inv, output, annotate=True)
    if not inv.found and not inv.missing:
        err(f"No resources found in stack {ctx.stack!r}.")
    if inv.missing:
        err(f"error: {not_found(inv.missing)}")
        _elsewhere_hint(inv, ctx.stack)
        code = EXIT_ERROR
    print_stats(ctx, target)
    return code


def _print_manifests(ctx: Context, inv: Inventory, output: str, annotate: bool) -> int:
    """The manifests of what was found; what cannot be written as one is an error, and a
    secret value replaced by a placeholder is said, once each, on stderr."""
    docs, code = [], EXIT_OK
    for subject, found in render.manifests(inv, ctx.stack, annotate):
        if found.problems:
            for path, message in found.problems:
                err(f"error: {subject}: {path}: cannot be written as a manifest: {message}")
            code = EXIT_ERROR
            continue
        for path in found.defaulted:
            err(
                f"note: {subject}: {path}: unset in AWS; applying this manifest sets the "
                "default (the plan shows it)"
            )
        for path in found.hidden:
            err(
                f"warning: {subject}: {path}: a secret value is written as a placeholder, "
                "which apply refuses: put the value back (better: a secrets entry) first"
            )
        docs.append(found.data)
    if docs:
        print(render.dump_manifests(docs, "json" if output == "json" else "yaml"), end="")
    return code


def delete_targets(
    words: tuple[str, ...], labels: tuple[str, ...], everything: bool
) -> tuple[list[Named], LabelSelector]:
    """What `delete` without manifests is to delete, checked before AWS is called: a whole
    kind needs -l or --all, as `kubectl delete` does."""
    targets, selector = selection(words, labels)
    if not targets:
        raise UsageError("name what to delete: -f FILE, KIND/NAME, KIND NAME..., or KIND -l ...")
    whole = [t for t in targets if t.name is None]
    if whole and not selector and not everything:
        kinds_named = ", ".join(kind_word(t.kind) for t in whole)
        raise UsageError(
            f"deleting every {kinds_named} of the stack: pass --all to confirm, or name them, "
            "or select them with -l"
        )
    return targets, selector


def export_live(
    words: tuple[str, ...],
    labels: tuple[str, ...],
    scope: Scope,
    with_refs: bool,
    target: Target,
    output: str,
) -> int:
    """Manifests of existing resources, owned or not, for `apply` (with --adopt for what the
    stack does not own yet)."""
    targets, selector = selection(words, labels)
    ctx = make_context(target, output)
    inv = read(ctx, targets, scope, selector, named_anywhere=True)
    if inv.missing:
        raise PlanError(not_found(inv.missing))
    if with_refs:
        _add_references(ctx, inv)
    if output in ("text", "wide"):
        for line in render.live_tables(render.live_rows(inv), output == "wide", owner=True):
            out(line)
        code = EXIT_OK
    else:
        if not inv.found:
            err("No resources found.")
        code = _print_manifests(ctx, inv, output, annotate=False)
    print_stats(ctx, target)
    return code


def _add_references(ctx: Context, inv: Inventory) -> None:
    """Adds what the exported resources use (a queue's compute environments), so that the
    output applies on its own: a manifest may refer only to resources declared with it."""
    from reconciler.engine.inventory import Found
    from reconciler.registry import kinds

    have = {(f.kind, f.live.aws_name) for f in inv.found}
    todo = list(inv.found)
    name_of = inv.name_of(ctx.stack)
    while todo:
        f = todo.pop()
        for kind, aws_name in kinds()[f.kind].observed_refs(f.live):
            if (kind, aws_name) in have:
                continue
            if kind not in inv.observed:
                inv.observed.update(read(ctx, [Named(kind)], "all").observed)
            live = next((o for o in inv.observed.get(kind, []) if o.aws_name == aws_name), None)
            if live is None:
                continue
            have.add((kind, aws_name))
            added = Found(kind, name_of(kind, aws_name), live)
            inv.found.append(added)
            todo.append(added)
            err(f"note: {f.kind}/{f.name} uses {kind}/{added.name}: exported with it")
    order = {k: i for i, k in enumerate(kinds())}
    inv.found.sort(key=lambda f: (order[f.kind], f.name))
