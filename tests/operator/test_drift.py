"""The drift timers' shared plan (operator/drift.py): which objects it answers for, and when it
is made again. Pure parts and the single flight; the operator end to end is in
test_operator.py."""

from __future__ import annotations

import asyncio

from reconciler.operator.drift import DriftPasses, batchable, stack_choice
from reconciler.operator.objects import ADOPT_ANNOTATION, summarize
from tests import stacks
from tests.operator.conftest import manifest


def _summary(text: str, ready: bool = True, **meta: object):  # type: ignore[no-untyped-def]
    body = manifest(text)
    body["metadata"].update(namespace="team-a", uid=f"uid-{body['metadata']['name']}", **meta)
    status = "True" if ready else "False"
    body["status"] = {"conditions": [{"type": "Ready", "status": status}]}
    return summarize(body["kind"], body)


def _members(*summaries):  # type: ignore[no-untyped-def]
    return {(s.kind, s.name): s for s in summaries}


def test_only_ready_plain_objects_are_answered_by_the_shared_plan():
    assert batchable(_summary(stacks.ce()))
    assert not batchable(_summary(stacks.ce(), ready=False))
    assert not batchable(_summary(stacks.ce(), annotations={ADOPT_ANNOTATION: "true"}))
    assert not batchable(_summary(stacks.pipeline()))  # a run kind: only as a reference


def test_the_choice_takes_what_is_referred_to_and_its_digest_follows_the_specs():
    ce, queue = _summary(stacks.ce()), _summary(stacks.jq())
    chosen, digest = stack_choice(_members(ce, queue))
    assert {s.name for s in chosen} == {"spot-ce", "main-queue"}
    assert stack_choice(_members(queue)) is None, "the queue's environment is missing"
    bigger = _summary(stacks.ce(max_vcpus=64))
    assert stack_choice(_members(bigger, queue))[1] != digest


def test_one_plan_a_pass_shared_by_the_ticks_made_again_after_a_write_or_an_interval():
    now = [0.0]
    passes = DriftPasses(60.0, clock=lambda: now[0])
    members = _members(_summary(stacks.ce()), _summary(stacks.jq()))
    made: list[int] = []

    async def make(declared):  # type: ignore[no-untyped-def]
        made.append(len(declared.resources))
        await asyncio.sleep(0.01)
        return f"plan {len(made)}"

    async def ticks(n: int) -> list[object]:
        place = ("team-a", "team-a")
        return list(await asyncio.gather(*(passes.plan(place, members, make) for _ in range(n))))

    assert asyncio.run(ticks(5)) == ["plan 1"] * 5 and made == [2]
    now[0] = 59.0
    assert asyncio.run(ticks(1)) == ["plan 1"]
    passes.wrote(("team-a", "team-a"))
    assert asyncio.run(ticks(1)) == ["plan 2"]
    now[0] = 200.0
    assert asyncio.run(ticks(1)) == ["plan 3"] and made == [2, 2, 2]
