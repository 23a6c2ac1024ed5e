"""The executor: concurrency, ordering, and what a failure stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconciler.aws.clients import Aws, AwsConfig
from reconciler.engine.apply import Outcome, execute
from reconciler.engine.context import Context, Options
from reconciler.engine.types import Action, Plan, Verb

Run = Callable[[Context], str | None]


def action(
    action_id: str, run: Run | None, after: set[str] | None = None, verb: Verb = Verb.UPDATE
) -> Action:
    return Action(
        id=action_id, kind="K", name=action_id, verb=verb, run=run, after=set(after or ())
    )


def ok(detail: str) -> Run:
    return lambda _ctx: detail


def fail(message: str) -> Run:
    def run(_ctx: Context) -> str:
        raise RuntimeError(message)

    return run


def by_id(outcomes: list[Outcome]) -> dict[str, tuple[str, str]]:
    return {o.action.id: (o.status, o.detail) for o in outcomes}


def make_plan(*actions: Action) -> Plan:
    plan = Plan(stack="default", region="us-east-1")
    for a in actions:
        plan.add(a)
    return plan


def test_independent_actions_run_concurrently(ctx: Context) -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(_ctx: Context) -> str:
        barrier.wait()  # raises BrokenBarrierError if the other never arrives (serial run)
        return "met"

    outcomes = execute(ctx, make_plan(action("a", meet), action("b", meet)))
    assert by_id(outcomes) == {"a": ("done", "met"), "b": ("done", "met")}


def test_parallelism_one_runs_serially() -> None:
    ctx = Context(
        aws=Aws(AwsConfig(region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")),
        options=Options(parallelism=1),
    )
    barrier = threading.Barrier(2, timeout=0.2)

    def meet(_ctx: Context) -> str:
        barrier.wait()
        return "met"

    outcomes = execute(ctx, make_plan(action("a", meet), action("b", meet)))
    assert sorted(o.status for o in outcomes) == ["failed", "failed"]


def test_after_is_respected(ctx: Context) -> None:
    log: list[str] = []
    lock = threading.Lock()

    def step(name: str, delay: float = 0.0) -> Run:
        def run(_ctx: Context) -> str:
            time.sleep(delay)
            with lock:
                log.append(name)
            return name

        return run

    plan = make_plan(
        # Listed before its dependencies, and the dependencies are slow: order must come
        # from `after`, not from the list or from luck.
        action("last", step("last"), after={"middle"}),
        action("middle", step("middle", 0.05), after={"first"}),
        action("first", step("first", 0.1)),
    )
    outcomes = execute(ctx, plan)
    assert log == ["first", "middle", "last"]
    assert [o.action.id for o in outcomes] == ["first", "middle", "last"]
    assert all(o.status == "done" for o in outcomes)


def test_action_waits_for_all_of_its_dependencies(ctx: Context) -> None:
    finished: set[str] = set()

    def slow(name: str, delay: float) -> Run:
        def run(_ctx: Context) -> str:
            time.sleep(delay)
            finished.add(name)
            return name

        return run

    def check(_ctx: Context) -> str:
        assert finished == {"a", "b"}
        return "both done"

    plan = make_plan(
        action("c", check, after={"a", "b"}),
        action("a", slow("a", 0.02)),
        action("b", slow("b", 0.1)),
    )
    assert by_id(execute(ctx, plan))["c"] == ("done", "both done")


def test_failure_skips_dependents_and_runs_unrelated_actions(ctx: Context) -> None:
    plan = make_plan(
        action("create", fail("CreateComputeEnvironment: boom")),
        action("repoint", ok("re-pointed"), after={"create"}),
        action("retire", ok("deleted"), after={"create", "repoint"}),
        action("unrelated", ok("registered")),
    )
    outcomes = by_id(execute(ctx, plan))
    assert outcomes["create"] == ("failed", "CreateComputeEnvironment: boom")
    assert outcomes["repoint"][0] == "skipped"
    assert "create" in outcomes["repoint"][1]
    assert outcomes["retire"][0] == "skipped"
    assert outcomes["unrelated"] == ("done", "registered")


def test_failure_message_of_an_exception_without_text(ctx: Context) -> None:
    def run(_ctx: Context) -> str:
        raise TimeoutError

    (outcome,) = execute(ctx, make_plan(action("a", run)))
    assert (outcome.status, outcome.detail) == ("failed", "TimeoutError")


def test_failure_message_of_a_client_error(ctx: Context) -> None:
    from botocore.exceptions import ClientError

    def run(_ctx: Context) -> str:
        raise ClientError(
            {"Error": {"Code": "ClientException", "Message": "name taken"}},
            "CreateJobQueue",
        )

    (outcome,) = execute(ctx, make_plan(action("a", run)))
    assert outcome.status == "failed"
    assert outcome.detail == "CreateJobQueue: ClientException: name taken"


def test_every_outcome_is_reported(ctx: Context) -> None:
    seen: list[str] = []
    plan = make_plan(
        action("a", fail("x")), action("b", ok("y"), after={"a"}), action("c", ok("z"))
    )
    outcomes = execute(ctx, plan, report=lambda o: seen.append(o.action.id))
    assert sorted(seen) == ["a", "b", "c"]
    assert [o.action.id for o in outcomes] == seen


def test_non_writing_actions_and_dependencies_on_them_are_ignored(ctx: Context) -> None:
    plan = make_plan(
        action("noop", None, verb=Verb.NOOP),
        action("conflict", ok("never"), verb=Verb.CONFLICT),
        action("a", ok("ran"), after={"noop", "conflict", "not-in-plan"}),
    )
    assert by_id(execute(ctx, plan)) == {"a": ("done", "ran")}


def test_dependency_cycle_is_skipped_not_hung(ctx: Context) -> None:
    plan = make_plan(
        action("a", ok("a"), after={"b"}), action("b", ok("b"), after={"a"}), action("c", ok("c"))
    )
    outcomes = by_id(execute(ctx, plan))
    assert outcomes["c"] == ("done", "c")
    assert outcomes["a"] == ("skipped", "dependency cycle")
    assert outcomes["b"] == ("skipped", "dependency cycle")


def test_transitively_skipped_action_names_its_dependency_not_a_cycle(ctx: Context) -> None:
    # The order a pruned compute environment's delete and a queue update take in a real plan:
    # the delete (after the queue) is listed before the queue (after a failing create).
    plan = make_plan(
        action("ce-create", fail("boom")),
        action("ce-delete", ok("deleted"), after={"queue"}),
        action("queue", ok("re-pointed"), after={"ce-create"}),
    )
    outcomes = by_id(execute(ctx, plan))
    assert outcomes["queue"] == ("skipped", "after ce-create")
    assert outcomes["ce-delete"] == ("skipped", "after queue")


def test_the_critical_path_starts_first() -> None:
    """One worker, five independent actions listed first, and a chain of two: the chain's head
    runs first, so its dependent is not left waiting behind the independent ones."""
    ctx = Context(
        aws=Aws(AwsConfig(region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")),
        options=Options(parallelism=1),
    )
    order: list[str] = []

    def note(name: str) -> Run:
        def run(_ctx: Context) -> str:
            order.append(name)
            return name

        return run

    independent = [action(f"jd{i}", note(f"jd{i}")) for i in range(5)]
    chain = [action("ce", note("ce")), action("jq", note("jq"), after={"ce"})]
    execute(ctx, make_plan(*independent, *chain))
    assert order[0] == "ce"
    assert sorted(order) == sorted(["ce", "jq", *(f"jd{i}" for i in range(5))])
