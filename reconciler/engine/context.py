"""What every planning and applying step may use: AWS access, options, lookups, progress output."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.aws.clients import Aws
from reconciler.aws.lookups import Resolver


@dataclass(frozen=True)
class Options:
    stack: str = "default"
    adopt: bool = False  # take over same-named resources this stack does not own
    prune: bool = False  # delete owned resources that are no longer declared
    drain: bool = False  # deleting a queue: wait for its jobs to finish first
    force: bool = False  # deleting a queue: even if its jobs get killed
    wait_timeout: float = 1800.0
    drain_timeout: float = 3600.0
    parallelism: int = 8
    lock_timeout: float = 30.0  # seconds to wait for the stack's lease (one-resource reconciles)
    sandbox: bool = False  # the embedded sandbox: sandbox-only task behaviour is honoured
    run_dir: str = ".reconciler/runs"  # run reports and EC2 tasks' per-task files
    # Print EC2 tasks' output as it arrives (the CLI). The operator, which plans each step
    # afresh, leaves the run's queue alone: the agent's copy in S3 is the output there.
    stream_output: bool = True


@dataclass
class Context:
    aws: Aws
    options: Options = field(default_factory=Options)
    log: Callable[[str], None] = lambda _line: None
    resolver: Resolver = field(init=False)
    _shared: dict[str, Any] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _cleanups: list[Callable[[], Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.aws)

    @property
    def stack(self) -> str:
        return self.options.stack

    def on_interrupt(self, cleanup: Callable[[], Any]) -> None:
        """`cleanup()` runs if the user interrupts the work (Ctrl-C, SIGTERM): what must not
        outlive the command, such as the instances of a run it follows."""
        with self._lock:
            self._cleanups.append(cleanup)

    def interrupted(self) -> None:
        """Runs the interrupt cleanups once each, best effort: one failing stops no other."""
        with self._lock:
            cleanups, self._cleanups = self._cleanups, []
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception as exc:  # reported; the other cleanups still run
                self.log(f"cleanup after interrupt failed: {exc}")

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """One instance per context of things like a kind's StatusPoller."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = make()
            return self._shared[key]
