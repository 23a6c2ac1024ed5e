"""The drift sweep's shared plan (operator/drift.py): which objects it answers for, and when it
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


def test_a_write_or_a_new_spec_takes_only_what_it_touches_out_of_the_pass():
    """While objects are created, writes come all the time: each used to make the whole stack's
    plan again. Now the plan stops answering for what was written (and for what refers to it)
    and for a changed spec, and those are planned alone until the next pass."""
    now = [0.0]
    passes = DriftPasses(60.0, clock=lambda: now[0])
    ce, queue = _summary(stacks.ce()), _summary(stacks.jq())
    jd = _summary(stacks.jd("other"))
    members = _members(ce, queue, jd)
    made: list[int] = []
    place = ("team-a", "team-a")

    async def make(declared):  # type: ignore[no-untyped-def]
        made.append(len(declared.resources))
        await asyncio.sleep(0.01)
        return f"plan {len(made)}"

    def tick(key, members=members):  # type: ignore[no-untyped-def]
        return asyncio.run(passes.plan(place, members, make, key))

    ce_key, queue_key, jd_key = (ce.kind, ce.name), (queue.kind, queue.name), (jd.kind, jd.name)
    assert [tick(k) for k in (ce_key, queue_key, jd_key)] == ["plan 1"] * 3 and made == [3]
    passes.wrote(place, False, jd_key)  # a reconcile that changed nothing
    assert tick(jd_key) == "plan 1"
    passes.wrote(place, True, ce_key)  # the environment was written to
    assert tick(ce_key) is None, "written since the plan's reads"
    assert tick(queue_key) is None, "refers to what was written"
    assert tick(jd_key) == "plan 1" and made == [3], "untouched, and no plan made again"
    changed = _members(ce, queue, _summary(stacks.jd("other", image="busybox:2")))
    assert tick(jd_key, changed) is None, "its spec is not the one planned"
    now[0] = 60.0  # the next pass plans everything again, as it now is
    assert tick(jd_key, changed) == "plan 2" and tick(ce_key, changed) == "plan 2"
    assert made == [3, 3]


def test_a_write_while_the_plan_is_made_takes_the_object_out():
    passes = DriftPasses(60.0, clock=lambda: 0.0)
    ce = _summary(stacks.ce())
    key = (ce.kind, ce.name)
    place = ("team-a", "team-a")

    async def make(declared):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        return "plan"

    async def main():  # type: ignore[no-untyped-def]
        tick = asyncio.ensure_future(passes.plan(place, _members(ce), make, key))
        await asyncio.sleep(0.01)
        passes.wrote(place, True, key)  # its reads may be from before this write
        return await tick

    assert asyncio.run(main()) is None
