"""What lives in AWS, found without manifests: the resources `get`, `delete` and `export` name
by kind, name and labels.

There is one reader: the planner's `observe` (what `apply --prune` reads), asked for the named
kinds only, so a command costs one batched read per kind it names. This module only picks
from what was read:

- scope `stack`: what this stack owns, by its ownership tags, under its `metadata.name`;
- scope `unowned`: what no stack owns (made by hand, or by another tool), under its AWS name;
- scope `all`: both, and what other stacks own (under their `metadata.name`).

Kinds of work (pipelines, tasks) are not listed: their state is the run of a spec, which
only the manifests can name.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.aws.tags import user_tags
from reconciler.engine.context import Context
from reconciler.engine.order import link, refuse_deleting_what_others_use
from reconciler.engine.planner import GONE, _remove, observe, owner_text
from reconciler.engine.types import Action, Observed, Plan, Verb
from reconciler.errors import PlanError, UsageError
from reconciler.manifests.validate import ResourceSet
from reconciler.models.common import RESERVED_TAG_PREFIX
from reconciler.registry import kinds
from reconciler.selectors import LabelSelector, Target, kind_word

Scope = Literal["stack", "unowned", "all"]


class _Unset:
    """A spec that sets nothing: every field reads as unset (None)."""

    def __getattr__(self, _name: str) -> None:
        return None


@dataclass(frozen=True)
class Named:
    """A stand-in for a declared resource when only its kind and name are known: a
    declaration with nothing but a name (every spec field unset). Kinds that read by name
    (job definitions, roles, buckets) read it; the others list their kind anyway."""

    KIND: str
    name: str
    spec: Any = field(default_factory=_Unset)


@dataclass
class Found:
    kind: str
    name: str  # metadata.name: the owner's, else the AWS name
    live: Observed

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(self.live)


@dataclass
class Inventory:
    found: list[Found] = field(default_factory=list)
    missing: list[Target] = field(default_factory=list)  # named, and not there
    elsewhere: dict[Target, Observed] = field(default_factory=dict)  # named, not this stack's
    observed: dict[str, list[Observed]] = field(default_factory=dict)  # everything read

    def name_of(self, stack: str) -> Any:
        """(kind, AWS name) -> the name a manifest gives it: this stack's `metadata.name` for
        what it owns (a blue/green replacement's too), else the AWS name."""

        def name_of(kind: str, aws_name: str) -> str:
            for o in self.observed.get(kind, []):
                if o.aws_name == aws_name and o.owner is not None and o.owned_by(stack):
                    return o.owner.name
            return aws_name

        return name_of


def labels_of(live: Observed) -> dict[str, str]:
    """A resource's labels: its tags without the tool's own (labels and a spec's tags are
    the same thing in AWS)."""
    return {k: v for k, v in user_tags(live.tags).items() if not k.startswith(RESERVED_TAG_PREFIX)}


def infrastructure_kinds() -> list[str]:
    return [name for name, kind in kinds().items() if not kind.runs]


def _check(targets: Iterable[Target]) -> None:
    for t in targets:
        if kinds()[t.kind].runs:
            raise UsageError(
                f"{kind_word(t.kind)}: the state of a {kind_word(t.kind)} is the run of its "
                "spec: name it with -f (reconciler get -f FILE)"
            )


def read(
    ctx: Context,
    targets: list[Target],
    scope: Scope = "stack",
    labels: LabelSelector | None = None,
    named_anywhere: bool = False,
    users: bool = False,
) -> Inventory:
    """The live resources the targets name (every infrastructure kind if none), in `scope`,
    matching `labels`. A named resource is looked for in this stack; with `named_anywhere`
    (export) also under its AWS name, whoever owns it. With `users`, what may use them is read
    too (queues, for a delete of their environments)."""
    _check(targets)
    labels = labels or LabelSelector()
    wanted = list(dict.fromkeys(t.kind for t in targets)) or infrastructure_kinds()
    whole = {t.kind for t in targets if t.name is None} if targets else set(wanted)
    stand_ins: list[Any] = [Named(t.kind, t.name) for t in targets if t.name is not None]
    observed = _observe(ctx, ResourceSet(resources=stand_ins), set(wanted), whole, scope, users)
    inv = Inventory(observed=observed)
    seen: set[tuple[str, str]] = set()

    def add(kind: str, name: str, live: Observed) -> None:
        if (kind, live.aws_name) not in seen and labels.matches(labels_of(live)):
            seen.add((kind, live.aws_name))
            inv.found.append(Found(kind, name, live))

    for kind in wanted:
        live = observed.get(kind, [])
        if kind in whole:
            for o in _current(live):
                if scope == "stack" and not o.owned_by(ctx.stack):
                    continue
                if scope == "unowned" and o.owner is not None:
                    continue
                add(kind, o.owner.name if o.owner else o.aws_name, o)
        for t in targets:
            if t.kind != kind or t.name is None:
                continue
            mine = [o for o in _current(live) if _named(o, ctx.stack, t.name)]
            theirs = [o for o in live if kinds()[kind].matches_name(o, t.name)]
            if mine:
                add(kind, t.name, mine[0])
            elif theirs and named_anywhere:
                add(kind, t.name, theirs[0])
            else:
                if theirs:
                    inv.elsewhere[t] = theirs[0]
                inv.missing.append(t)
    order = {k: i for i, k in enumerate(kinds())}
    inv.found.sort(key=lambda f: (order[f.kind], f.name))
    return inv


def _named(o: Observed, stack: str, name: str) -> bool:
    return o.owner is not None and o.owned_by(stack) and o.owner.name == name


def _current(live: list[Observed]) -> list[Observed]:
    """One live resource per owned name: a leftover of an interrupted blue/green replacement
    (two owned resources for one name) is not listed twice; the one under the name itself,
    else the first, stands for it."""
    out: list[Observed] = []
    taken: dict[tuple[str, str], int] = {}
    for o in live:
        if o.owner is None:
            out.append(o)
            continue
        key = (o.owner.stack, o.owner.name)
        if key not in taken:
            taken[key] = len(out)
            out.append(o)
        elif o.aws_name == o.owner.name:
            out[taken[key]] = o
    return out


def _observe(
    ctx: Context,
    declared: ResourceSet,
    wanted: set[str],
    whole: set[str],
    scope: Scope,
    users: bool = False,
) -> dict[str, list[Observed]]:
    """The planner's read of the wanted kinds (whole kinds: every owned one); outside this
    stack's scope, whole kinds are read whoever owns them (`Kind.observe_all`)."""
    if scope == "stack":
        everyone: set[str] = set()
    else:
        everyone = whole
    own = {k for k in wanted if k not in everyone}
    found: dict[str, list[Observed]] = {}
    if own:
        skip = ResourceSet(resources=[r for r in declared.resources if r.KIND in own])
        read_own = observe(ctx, skip, everything=False, users=users, whole=frozenset(whole & own))
        found.update({k: v for k, v in read_own.items() if k in own or v})
    if everyone:
        registered = kinds()

        def read_all(kind: str) -> tuple[str, list[Observed]]:
            live = registered[kind].observe_all(ctx)
            return kind, [o for o in live if o.status not in GONE]

        with ThreadPoolExecutor(max_workers=len(everyone)) as pool:
            found.update(dict(pool.map(read_all, sorted(everyone))))
        named = [r for r in declared.resources if r.KIND in everyone]
        if named:  # a name outside what observe_all lists (a role, read by name)
            extra = observe(ctx, ResourceSet(resources=named), everything=False)
            for kind, live in extra.items():
                have = {o.aws_name for o in found.get(kind, [])}
                found.setdefault(kind, []).extend(o for o in live if o.aws_name not in have)
    return found


def plan_delete(ctx: Context, targets: list[Target], labels: LabelSelector | None) -> Plan:
    """Deletes what the targets name and this stack owns, as `delete -f` would: the same
    refusals (unfinished jobs, a resource others still use), order and deletion policy (the
    one recorded on the resource). A named resource that
    does not exist is an error before anything is planned; one this stack does not own is
    refused in the plan and left alone."""
    inv = read(ctx, targets, "stack", labels, users=True)
    absent = [t for t in inv.missing if t not in inv.elsewhere]
    if absent:
        raise PlanError(not_found(absent))
    plan = Plan(stack=ctx.stack, region=ctx.aws.region)
    plan.observed_all = inv.observed
    registered = kinds()
    for f in inv.found:
        for o in inv.observed.get(f.kind, []):
            if _named(o, ctx.stack, f.name):
                _remove(ctx, plan, registered[f.kind], f.name, o, "deleted on request")
    for t, o in inv.elsewhere.items():
        summary = f"{o.arn or o.aws_name} {owner_text(o)}: left alone"
        plan.add(Action.of(t.kind, str(t.name), Verb.REFUSED, aws_name=o.aws_name, summary=summary))
    refuse_deleting_what_others_use(plan, registered, ctx.options.force)
    link(plan, registered)
    return plan


def not_found(missing: list[Target]) -> str:
    """kubectl's wording: `jobqueue "x" not found`, one line each."""
    return "\nerror: ".join(f'{kind_word(t.kind)} "{t.name}" not found' for t in missing)
