"""Started without peering objects, the operator says what it waits for instead of pausing
silently (kopf keeps a mandatory-peering operator paused until its KopfPeering exists)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler import operator
from reconciler.operator import runner
from tests.conftest import REGION
from tests.operator.conftest import NAMESPACE, wait_for
from tests.operator.kube import cluster

WAITING = "waiting for ClusterKopfPeering reconciler: install the chart or pass --standalone"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_without_peering_objects_the_operator_says_what_it_waits_for(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = Lines()
    logger = logging.getLogger("reconciler.operator")
    logger.addHandler(lines)
    stop = threading.Event()
    errors: list[BaseException] = []
    with cluster({NAMESPACE}) as running_cluster:
        monkeypatch.setenv("KUBECONFIG", str(running_cluster.kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

        def main() -> None:
            try:
                operator.run(all_namespaces=True, stop_flag=stop, configure_logging=False)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=main, name="operator", daemon=True)
        thread.start()
        try:
            wait_for("the waiting message", lambda: WAITING in lines.lines, timeout=20)
        finally:
            stop.set()
            thread.join(20)
            logger.removeHandler(lines)
    assert not thread.is_alive()
    assert not errors, errors
    assert lines.lines.count(WAITING) == 1, "said once, not on every check"


def test_the_message_names_the_namespace_and_says_when_the_peering_appears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([False, False, True])
    asked: list[tuple[str, str | None, str]] = []

    async def exists(_settings: Any, resource: Any, namespace: str | None, name: str) -> bool:
        asked.append((resource.kind, namespace, name))
        return next(answers)

    monkeypatch.setattr(runner.kube, "exists", exists)
    monkeypatch.setattr(runner, "PEERING_CHECK_SECONDS", 0.0)
    settings = runner.build_settings(peering="team-peering")
    log = logging.getLogger("test-peering")
    lines = Lines()
    log.addHandler(lines)
    log.setLevel(logging.INFO)
    try:
        asyncio.run(runner.report_missing_peering(settings, ["team-a", "team-*"], log))
    finally:
        log.removeHandler(lines)
    assert asked == [("KopfPeering", "team-a", "team-peering")] * 3  # globs cannot be looked up
    assert lines.lines == [
        "waiting for KopfPeering team-peering in namespace team-a: install the chart or pass "
        "--standalone",
        "found KopfPeering team-peering in namespace team-a: starting",
    ]


def test_an_api_error_while_looking_is_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [PermissionError("forbidden"), False, True]

    async def exists(*_args: Any) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    monkeypatch.setattr(runner.kube, "exists", exists)
    monkeypatch.setattr(runner, "PEERING_CHECK_SECONDS", 0.0)
    log = logging.getLogger("test-peering-errors")
    lines = Lines()
    log.addHandler(lines)
    log.setLevel(logging.INFO)
    try:
        asyncio.run(runner.report_missing_peering(runner.build_settings(clusterwide=True), [], log))
    finally:
        log.removeHandler(lines)
    assert answers == []
    assert lines.lines == [
        "waiting for ClusterKopfPeering reconciler: install the chart or pass --standalone",
        "found ClusterKopfPeering reconciler: starting",
    ]
