"""The drift sweep (operator/sweep.py): which objects a pass reads from Kubernetes and
converges, which it answers from the shared plan alone, retries, and pauses. The operator end
to end (drift found and corrected, a pass at the CLI's floor) is in test_operator.py."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles  # private: kopf's pause toggles, as kopf makes them
from kopf._core.engines import daemons  # private: the daemon killer that tells the pause

from reconciler.operator import kube, sweep
from reconciler.operator.drift import DriftPasses
from reconciler.operator.kube import PausingMemories
from reconciler.operator.memory import KeyedLocks
from reconciler.operator.objects import summarize
from reconciler.operator.waking import objects_index
from reconciler.registry import models
from tests import stacks
from tests.operator.conftest import manifest

NS = "team-a"


def _body(text: str, ready: bool = True, synced: bool = True, **meta: Any) -> dict[str, Any]:
    body = manifest(text)
    name = body["metadata"]["name"]
    body["metadata"].update(namespace=NS, uid=f"uid-{name}", generation=1, **meta)
    conds = [
        {"type": "Ready", "status": str(ready), "reason": "r", "observedGeneration": 1},
        {"type": "Synced", "status": str(synced), "reason": "r", "observedGeneration": 1},
    ]
    body["status"] = {"observedGeneration": 1, "conditions": conds}
    return body


class _Index(dict):  # type: ignore[type-arg]
    """kopf's index: (namespace, name) -> a store of the values (one here)."""


def _indices(*bodies: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {objects_index(kind): _Index() for kind in models()}
    for body in bodies:
        s = summarize(body["kind"], body)
        out[objects_index(s.kind)][(s.namespace, s.name)] = [s]
    return out


class _World:
    """The sweep's collaborators, recorded: AWS plans made, objects read and converged."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, bodies: list[dict[str, Any]]) -> None:
        self.bodies = {b["metadata"]["name"]: b for b in bodies}
        self.plans = 0
        self.read: list[str] = []
        self.converged: list[tuple[str, int]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}
        self.paused = False
        self.locks = KeyedLocks()
        self.sent: dict[str, dict[str, Any]] = {}  # uid -> the status last written

        async def get(settings: Any, kind: str, ns: str, name: str) -> dict[str, Any] | None:
            self.read.append(name)
            return self.bodies.get(name)

        async def merge_patch(settings: Any, kind: str, ns: str, name: str, body: Any, *_: Any):
            self.patched.append((name, body))
            return True

        monkeypatch.setattr(kube, "get", get)
        monkeypatch.setattr(kube, "merge_patch", merge_patch)
        # What the shared plan says of an object is the engine's (test_drift, test_operator):
        # here an object is quiet unless its name says otherwise.
        monkeypatch.setattr(sweep, "quiet", lambda s, draft, plan: "drifted" not in s.name)

    async def converge(self, kind: str, body: Any, patch: Any, indices: Any, retry: int) -> None:
        self.converged.append((body["metadata"]["name"], retry))
        patch.status["arn"] = "arn:x"
        if body["metadata"]["name"] in self.fail:
            raise self.fail.pop(body["metadata"]["name"])

    async def call(self, fn: Any, *args: Any) -> Any:
        self.plans += 1
        return "the plan"

    def sweep(self) -> sweep.Sweep:
        return sweep.Sweep(
            60.0,
            DriftPasses(60.0),
            self.locks,
            kopf.OperatorSettings(),
            self.converge,
            lambda body: None,  # type: ignore[arg-type,return-value]
            self.call,
            self.sent.get,
            lambda: self.paused,
        )


def test_a_pass_reads_kubernetes_only_for_what_the_shared_plan_cannot_answer(monkeypatch):
    bodies = [
        _body(stacks.ce()),
        _body(stacks.jq()),  # refers to the environment: both in the stack's plan
        _body(stacks.jd("drifted")),  # its part of the plan writes
        _body(stacks.jd("creating"), ready=False),  # not Ready: converged as the timer did
        _body(stacks.jd("waiting"), synced=False),
        _body(stacks.jd("gone"), ready=False, deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    bad = _body(stacks.jd("bad"), ready=False)
    bad["spec"]["containerProperties"] = "not a mapping"  # invalid: only an edit changes it
    world = _World(monkeypatch, [*bodies, bad])
    indices = _indices(*bodies, bad)
    assert not indices[objects_index("JobDefinition")][(NS, "bad")][0].valid

    asyncio.run(world.sweep().sweep(indices))
    assert world.plans == 1, "one plan of the stack for the pass"
    assert sorted(world.read) == ["creating", "drifted", "waiting"]
    assert sorted(n for n, _ in world.converged) == ["creating", "drifted", "waiting"]
    assert sorted(n for n, _ in world.patched) == ["creating", "drifted", "waiting"]
    assert all(p == {"status": {"arn": "arn:x"}} for _, p in world.patched)


def test_an_object_a_handler_holds_is_left_to_it_and_a_paused_operator_does_nothing(
    monkeypatch,
):
    bodies = [_body(stacks.jd("creating"), ready=False), _body(stacks.jd("other"), ready=False)]
    world = _World(monkeypatch, bodies)
    indices = _indices(*bodies)

    async def held() -> None:
        async with world.locks.hold("uid-creating"):
            await world.sweep().sweep(indices)

    asyncio.run(held())
    assert world.read == ["other"]
    world.read.clear()
    world.paused = True
    asyncio.run(world.sweep().sweep(indices))
    assert world.read == [] and world.plans == 0


def test_a_temporary_error_is_retried_after_its_delay_with_the_next_retry_number(monkeypatch):
    bodies = [_body(stacks.jd("creating"), ready=False)]
    world = _World(monkeypatch, bodies)
    world.fail["creating"] = kopf.TemporaryError("AWS is busy", delay=0.05)
    indices = _indices(*bodies)

    async def main() -> sweep.Sweep:
        s = world.sweep()
        await s.sweep(indices)
        assert world.converged == [("creating", 0)]
        await s.sweep(indices)  # its retry is on its way: the pass leaves it alone
        assert world.converged == [("creating", 0)]
        await asyncio.sleep(0.2)
        return s

    s = asyncio.run(main())
    assert world.converged == [("creating", 0), ("creating", 1)]
    assert len(world.patched) == 2  # the status of each try is written
    assert not s._later and not s._retries, "nothing kept once it succeeded"


def test_the_pause_is_told_by_kopfs_daemon_killer():
    """kopf gives no public sign of a pause: its daemon killer goes through the memories once a
    second while the operator is paused, and at no other time before the exit."""
    now = [0.0]
    memories = PausingMemories(clock=lambda: now[0])

    async def main() -> list[bool]:
        paused = aiotoggles.ToggleSet(any)
        toggle = await paused.make_toggle(name="peering")
        killer = asyncio.create_task(
            daemons.daemon_killer(
                settings=kopf.OperatorSettings(), memories=memories, operator_paused=paused
            )
        )
        seen = []
        await asyncio.sleep(0.1)
        seen.append(memories.paused())
        await toggle.turn_to(True)
        await asyncio.sleep(0.1)
        seen.append(memories.paused())
        await toggle.turn_to(False)
        await asyncio.sleep(0.1)
        now[0] = 10.0
        seen.append(memories.paused())
        killer.cancel()
        await asyncio.gather(killer, return_exceptions=True)
        return seen

    assert asyncio.run(main()) == [False, True, False]


def test_a_status_written_but_not_yet_in_the_index_is_converged_as_written(monkeypatch):
    """The index may lag behind a patch the operator sent: until it shows it, the object is
    read and converged (from the status last written), not answered from the index."""
    bodies = [_body(stacks.jd("lagging")), _body(stacks.jd("caught-up"))]
    world = _World(monkeypatch, bodies)
    indices = _indices(*bodies)
    served = bodies[1]["status"]
    world.sent["uid-caught-up"] = dict(served)
    world.sent["uid-lagging"] = {**served, "arn": "arn:newer"}

    asyncio.run(world.sweep().sweep(indices))
    assert world.read == ["lagging"]
