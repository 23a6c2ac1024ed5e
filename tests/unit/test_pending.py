"""Long work: actions that return Pending hold no thread, are polled, time out, and re-plan."""

from __future__ import annotations

import dataclasses
import threading
import time

from reconciler.engine.apply import converge, execute
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Pending, Plan, Step, Verb
from reconciler.kinds.polling import StatusPoller
from tests.unit.test_apply_executor import action, by_id, make_plan


def pending_for(polls: int, seen: list[str], name: str) -> Pending:
    """Pending until its check has been called `polls` times."""
    left = [polls]

    def check(_ctx: Context) -> Step:
        seen.append(name)
        left[0] -= 1
        return f"{name} ready" if left[0] <= 0 else Pending(f"{name} busy", check, delay=0.01)

    return Pending(f"{name} started", check, delay=0.01)


def test_pending_work_is_polled_until_done_and_dependents_wait(ctx: Context) -> None:
    seen: list[str] = []
    plan = make_plan(
        action("slow", lambda _c: pending_for(3, seen, "slow")),
        action("after", lambda _c: "ran", after={"slow"}),
    )
    outcomes = execute(ctx, plan)
    assert by_id(outcomes) == {"slow": ("done", "slow ready"), "after": ("done", "ran")}
    assert seen == ["slow"] * 3
    assert [o.action.id for o in outcomes] == ["slow", "after"]


def test_waiting_holds_no_worker_thread(ctx: Context) -> None:
    """With one worker, a long pending action does not stop an independent one."""
    ctx = dataclasses.replace(ctx, options=dataclasses.replace(ctx.options, parallelism=1))
    other_done = threading.Event()

    def slow_check(_ctx: Context) -> Step:
        return "slow ready" if other_done.is_set() else Pending("slow busy", slow_check, 0.01)

    def other(_ctx: Context) -> str:
        other_done.set()
        return "other ran"

    plan = make_plan(
        action("slow", lambda _c: Pending("started", slow_check, 0.01)), action("other", other)
    )
    assert by_id(execute(ctx, plan)) == {
        "slow": ("done", "slow ready"),
        "other": ("done", "other ran"),
    }


def test_pending_work_times_out_and_stops_its_dependents(ctx: Context) -> None:
    ctx = dataclasses.replace(ctx, options=dataclasses.replace(ctx.options, wait_timeout=0.2))

    def never(_ctx: Context) -> Step:
        return Pending("still CREATING", never, 0.05)

    outcomes = by_id(
        execute(ctx, make_plan(action("a", never), action("b", lambda _c: "x", after={"a"})))
    )
    assert outcomes["a"][0] == "failed" and "timed out after 0s: still CREATING" in outcomes["a"][1]
    assert outcomes["b"] == ("skipped", "after a")


def test_not_following_reports_pending_with_when_to_look_again(ctx: Context) -> None:
    """The operator's way: nothing is polled here; the caller comes back later."""
    seen: list[str] = []
    plan = make_plan(
        action("a", lambda _c: Pending("creating a", lambda _c: "x", delay=7.0)),
        action("b", lambda _c: pending_for(2, seen, "b"), after={"a"}),
    )
    outcomes = execute(ctx, plan, follow=False)
    (a,) = [o for o in outcomes if o.action.id == "a"]
    assert (a.status, a.detail, a.retry_after) == ("pending", "creating a", 7.0)
    assert by_id(outcomes)["b"] == ("skipped", "after a")
    assert seen == []


def test_checks_due_together_share_one_describe_call(ctx: Context) -> None:
    calls: list[list[str]] = []
    status = {"a": "CREATING", "b": "CREATING", "c": "CREATING"}

    def describe(names: list[str]) -> dict[str, dict[str, str]]:
        calls.append(sorted(names))
        out = {n: {"status": status[n]} for n in names}
        for n in status:  # each poll moves every environment one step on
            status[n] = "VALID"
        return out

    poller = StatusPoller(describe)
    # The checks exist (and count their names in every poll) before any action runs, as when
    # three creates return at once: how late a loaded machine starts a worker does not matter.
    checks = {n: poller.until(n, lambda d: d["status"] == "VALID", n) for n in "abc"}
    plan = make_plan(
        *[action(n, lambda _c, n=n: Pending("creating", checks[n], 0.01)) for n in "abc"]
    )
    assert {s for s, _ in by_id(execute(ctx, plan)).values()} == {"done"}
    assert calls[0] == ["a", "b", "c"], "the first poll answers every waiter"
    assert len(calls) <= 2


def test_a_busy_resource_with_changes_is_planned_again_once_it_settled(ctx: Context) -> None:
    change = Change("count", 1, 2)
    wait = Action.of("K", "x", Verb.WAIT, changes=[change], run=lambda _c: "settled")
    replans: list[Plan] = []

    def replan() -> Plan:
        plan = make_plan(
            Action.of("K", "x", Verb.UPDATE, changes=[change], run=lambda _c: "updated")
        )
        replans.append(plan)
        return plan

    plan, outcomes = converge(ctx, make_plan(wait), replan)
    assert [(o.action.verb, o.detail) for o in outcomes] == [
        (Verb.WAIT, "settled"),
        (Verb.UPDATE, "updated"),
    ]
    assert plan is replans[0] and len(replans) == 1


def test_a_wait_without_changes_is_not_planned_again(ctx: Context) -> None:
    wait = Action.of("K", "x", Verb.WAIT, run=lambda _c: "settled")

    def replan() -> Plan:
        raise AssertionError("nothing was left to do")

    _, outcomes = converge(ctx, make_plan(wait), replan)
    assert [o.status for o in outcomes] == ["done"]


def test_ctrl_c_during_a_wait_returns_at_once(ctx: Context) -> None:
    """The wait happens in the caller's thread, between polls: an interrupt is not held up
    by worker threads being joined."""

    def busy(_ctx: Context) -> Step:
        return Pending("busy", busy, 0.05)

    plan = make_plan(action("a", busy))
    interrupted = []

    def interrupt() -> None:
        time.sleep(0.3)
        import _thread

        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    start = time.monotonic()
    try:
        execute(ctx, plan)
    except KeyboardInterrupt:
        interrupted.append(time.monotonic() - start)
    assert interrupted and interrupted[0] < 1.0
