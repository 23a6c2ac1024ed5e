"""Running the EC2 task agent as a real local process against the moto server, and following it
with the Receiver, as the runner does (no EC2 needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.agent import exec as agent_exec
from reconciler.agent.receiver import Receiver
from tests.conftest import REGION, client

AGENT = Path(agent_exec.__file__)
ROOT = Path(__file__).resolve().parents[2]


def agent_env(endpoint: str) -> dict[str, str]:
    """What the sandbox gives an instance's processes: its endpoint and dummy credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        PYTHONPATH=str(ROOT),
    )
    return env


@dataclass
class Stage:
    """A run's queue and scratch bucket, and a receiver following the queue."""

    endpoint: str
    log_dir: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each message

    def __post_init__(self) -> None:
        self.sqs = client(self.endpoint, "sqs")
        self.s3 = client(self.endpoint, "s3")
        self.queue_url = self.sqs.create_queue(QueueName=f"run-{self.run}")["QueueUrl"]
        self.bucket = f"scratch-{self.run}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.receiver = Receiver(
            self.sqs, self.queue_url, self.log_dir, lambda *line: self.lines.append(line)
        )

    def prefix(self, task: str) -> str:
        return f"s3://{self.bucket}/runs/{self.run}/{task}/"

    def start(
        self, task: str, script: str, *options: str, cli: bool = False, sqs_endpoint: str = ""
    ) -> Any:
        """The agent on `bash -c script`: as the file the user data carries, or the CLI."""
        head = [sys.executable, "-m", "reconciler", "agent"] if cli else [sys.executable, AGENT]
        argv = [*head, "exec", "--queue-url", self.queue_url, "--run", self.run]
        argv += ["--task", task, "--s3-prefix", self.prefix(task), *options]
        return subprocess.Popen(
            [*argv, "--", "bash", "-c", script],
            env=agent_env(self.endpoint)
            | ({"AWS_ENDPOINT_URL_SQS": sqs_endpoint} if sqs_endpoint else {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def follow(self, *tasks: str, limit: float = 120.0) -> None:
        """Polls until every task's exit code is known, noting when each message came."""
        end = time.monotonic() + limit
        while any(self.receiver.exit_code(t) is None for t in tasks):
            assert time.monotonic() < end, f"no exit code within {limit} s"
            before = self.receiver.messages
            self.receiver.poll(wait_seconds=1)
            self.arrivals += [time.monotonic()] * (self.receiver.messages - before)

    def text(self, task: str, stream: str) -> list[str]:
        return [line for t, s, line in self.lines if t == task and s == stream]
