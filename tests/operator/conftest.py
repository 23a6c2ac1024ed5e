"""The operator under test: real kopf, logging in from a kubeconfig, against the emulator.

Each test gets a fresh emulator (`Cluster`), a fresh moto account (the `aws` fixture), and an
operator in its own thread (kopf cancels asyncio tasks it did not start, pytest's included),
stopped through `stop_flag`. Tests wait on conditions with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler import operator
from reconciler.aws.clients import CallStats
from reconciler.registry import models
from tests.conftest import REGION
from tests.operator.kube import Client, Cluster, cluster

NAMESPACE = "team-a"


def manifest(text: str) -> dict[str, Any]:
    """A manifest from tests/stacks.py text, as plain dicts."""
    return dict(YAML(typ="safe").load(text))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


@dataclass
class Running:
    cluster: Cluster
    client: Client
    stats: CallStats
    thread: threading.Thread
    stop_flag: threading.Event
    errors: list[BaseException] = field(default_factory=list)

    def obj(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.client.get(kind, namespace, name)

    def wait_condition(
        self,
        kind: str,
        name: str,
        type_: str,
        status: str,
        reason: str | None = None,
        timeout: float = 20.0,
        namespace: str = NAMESPACE,
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.obj(kind, name, namespace)
            cond = condition(obj, type_)
            if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
                return obj
            return None

        return wait_for(f"{kind}/{name} {type_}={status} {reason or ''}", check, timeout)

    def events(self, reason: str | None = None, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        found = self.client.events(namespace)
        return [e for e in found if reason is None or e.get("reason") == reason]


@pytest.fixture
def start_operator(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []
    clusters = ExitStack()

    def start(
        drift_interval: float = 60.0,
        namespaces: list[str] | None = None,
        liveness: str | None = None,
    ) -> Running:
        running_cluster = clusters.enter_context(cluster({NAMESPACE, "team-b"}))
        monkeypatch.setenv("KUBECONFIG", str(running_cluster.kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        stats = CallStats()
        stop_flag, ready_flag = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            try:
                operator.run(
                    namespaces=namespaces,
                    all_namespaces=not namespaces,
                    drift_interval=drift_interval,
                    liveness=liveness,
                    standalone=True,
                    stats=stats,
                    stop_flag=stop_flag,
                    ready_flag=ready_flag,
                    configure_logging=False,
                    options={"wait_timeout": 30.0},
                )
            except BaseException as exc:  # reported by the test's teardown
                errors.append(exc)

        thread = threading.Thread(target=main, name="operator", daemon=True)
        running = Running(
            running_cluster, Client(running_cluster.url), stats, thread, stop_flag, errors
        )
        running.thread.start()
        started.append(running)
        wait_for("the operator to be ready", ready_flag.is_set, timeout=15)
        # Objects created before kopf's watch is subscribed could be missed by the emulator.
        wait_for(
            "kopf to watch every kind",
            lambda: all(running_cluster.watching(m.PLURAL) for m in models().values()),
            timeout=15,
        )
        return running

    yield start
    for running in started:
        running.stop_flag.set()
    for running in started:
        running.thread.join(20)
    clusters.close()
    for running in started:
        assert not running.thread.is_alive(), "the operator did not stop"
        assert not running.errors, running.errors
