"""Waiting for many resources of a kind with few calls, without holding a thread.

A kind's action returns `Pending(check=poller.until(name, done, what))` instead of sleeping.
Every name being waited for is registered with the kind's StatusPoller; when any check runs
and has not seen a newer answer, one describe call (up to 100 names) answers all of them, so
30 environments settling cost one DescribeComputeEnvironments per poll, not 30.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from reconciler.aws.errors import IAM_DELAYS, iam_propagating
from reconciler.engine.context import Context
from reconciler.engine.types import Pending, Step

Describe = Callable[[list[str]], dict[str, dict[str, Any]]]
Description = dict[str, Any] | None
BATCH = 100


class StatusPoller:
    def __init__(self, describe: Describe):
        self._describe = describe
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}  # name -> how many checks wait for it
        self._latest: dict[str, Description] = {}
        self._polled_at: dict[str, int] = {}  # name -> generation of the last poll that saw it
        self._generation = 0

    def _poll(self, also: str) -> None:
        names = sorted({*self._waiting, also})
        seen: dict[str, dict[str, Any]] = {}
        for i in range(0, len(names), BATCH):
            seen.update(self._describe(names[i : i + BATCH]))
        self._generation += 1
        for name in names:
            self._latest[name] = seen.get(name)
            self._polled_at[name] = self._generation

    def read(self, name: str, seen: int = -1) -> tuple[Description, int]:
        """The latest description of `name` newer than generation `seen`, polling if needed."""
        with self._lock:
            if self._polled_at.get(name, -1) <= seen:
                self._poll(name)
            return self._latest.get(name), self._polled_at[name]

    def hold(self, name: str) -> None:
        """Counts `name` in every poll until `release`: for step functions that read it often."""
        self._hold(name)

    def release(self, name: str) -> None:
        self._release(name)

    def _hold(self, name: str) -> None:
        with self._lock:
            self._waiting[name] = self._waiting.get(name, 0) + 1

    def _release(self, name: str) -> None:
        with self._lock:
            left = self._waiting.get(name, 0) - 1
            if left > 0:
                self._waiting[name] = left
            else:
                self._waiting.pop(name, None)

    def until(
        self,
        name: str,
        done: Callable[[Description], bool],
        what: str,
        then: Callable[[Context, Description], Step] | None = None,
    ) -> Callable[[Context], Step]:
        """A check for Pending: looks at `name` until `done` holds, then calls `then`."""
        self._hold(name)
        seen = -1

        def check(ctx: Context) -> Step:
            nonlocal seen
            desc, seen = self.read(name, seen)
            if not done(desc):
                return Pending(f"waiting for {what}", check)
            self._release(name)
            return then(ctx, desc) if then else what

        return check


def retiring(
    poller_of: Callable[[Context], StatusPoller],
    name: str,
    what: str,
    disable: Callable[[Context], None],
    delete: Callable[[Context, Callable[[Context], Step]], Step | None],
) -> Callable[[Context], Step]:
    """Deleting a Batch resource that must be DISABLED first (a compute environment, a queue),
    one observation-driven step at a time: wait until it settles, disable it, `delete` (which
    may return a Pending of its own: a drain, a relationship Batch has not dropped yet), then
    wait until it is gone. Each call takes the next step, so a re-plan resumes where it was;
    the name is held in the kind's poller meanwhile, so one describe answers every deletion."""
    seen, held = -1, False

    def step(ctx: Context) -> Step:
        nonlocal seen, held
        poller = poller_of(ctx)
        if not held:
            poller.hold(name)
            held = True
        desc, seen = poller.read(name, seen)
        status = (desc or {}).get("status")
        if desc is None or status == "DELETED":
            poller.release(name)
            return f"{name} deleted"
        if status in ("CREATING", "UPDATING", "DELETING"):
            return Pending(f"{what} {name} is {status}", step)
        if desc.get("state") != "DISABLED":
            disable(ctx)
            return Pending(f"disabling {name}", step)
        return delete(ctx, step) or Pending(f"deleting {name}", step)

    return step


def after_iam(
    step: Callable[[Context], Step], what: str, attempt: int = 0
) -> Callable[[Context], Step]:
    """`step`, asked again a bounded number of times while AWS answers that a role or
    instance profile it names does not exist or cannot be assumed: a role created a moment
    ago by the same apply is not yet visible everywhere. Waits are Pending, so no thread
    sleeps, and any other error is raised at once."""

    def run(c: Context) -> Step:
        try:
            return step(c)
        except Exception as exc:
            if not iam_propagating(exc) or attempt >= len(IAM_DELAYS):
                raise
            return Pending(
                f"{what}: waiting for IAM to propagate a new role ({exc})",
                after_iam(step, what, attempt + 1),
                delay=IAM_DELAYS[attempt],
            )

    return run
