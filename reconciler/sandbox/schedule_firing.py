"""The sandbox's EventBridge Scheduler: fires the schedules moto stores, as AWS would.

moto's Scheduler stores schedules and never fires them. `ScheduleClock` (one per server, made
by `moto_ext.install()`) does: on each tick it evaluates every ENABLED schedule's expression in
its timezone (`reconciler.cron`, the evaluator the plan uses) and invokes its target once for
each firing time that passed since the last tick:
- the universal target `aws-sdk:batch:submitJob`: SubmitJob with the target's input, its
  context attributes (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`, ...)
  replaced as Scheduler replaces them;
- a Step Functions state machine: StartExecution with the target's input. With the sandbox's
  `execute_state_machine` setting, moto runs the state machine and its `batch:submitJob`
  states call the sandbox's Batch over HTTP (moto's parser talks to localhost:MOTO_PORT,
  which the server sets).
A firing whose call fails goes to the target's dead-letter queue, as in AWS, with the error.

Time: sandbox time runs `RECONCILER_SANDBOX_TIME_SCALE` times faster than real time (default
1: `rate(1 minute)` fires every minute; 60: `rate(1 hour)` fires every minute), plus whatever
`advance(seconds)` added. Tests call `advance()`, which fires what fell due before it returns:
no test waits on a wall clock. The server's thread ticks every TICK seconds. A schedule first
seen by the clock fires only from then on (no backfill after a restart, as a schedule created
now does not fire for the past); flexible time windows fire at the window's start; nothing
fires before a schedule's StartDate or from its EndDate on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.cron import ExpressionError, firings_between
from reconciler.sandbox.config import SandboxConfig

TICK = 0.5
MAX_PER_TICK = 100  # firings of one schedule per tick: advancing a day of rate(1 minute) is capped
SUBMIT_JOB = ":scheduler:::aws-sdk:batch:submitJob"
FREE_FORM = ("Tags", "Parameters")  # maps whose keys are the user's
SANDBOX_KEY = "testing"  # moto's default account answers any key

log = logging.getLogger(__name__)


def camel(value: Any, free: bool = False) -> Any:
    """An SDK request in PascalCase (a universal target's input) as boto3 takes it."""
    if isinstance(value, dict):
        return {
            (k if free else k[:1].lower() + k[1:]): camel(v, not free and k in FREE_FORM)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def with_context(text: str, schedule_arn: str, when: dt.datetime, execution: str) -> str:
    """The target input with Scheduler's context attributes replaced."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for key, value in (
        ("schedule-arn", schedule_arn),
        ("scheduled-time", stamp),
        ("execution-id", execution),
        ("attempt-number", "1"),
    ):
        text = text.replace(f"<aws.scheduler.{key}>", value)
    return text


def _instant(value: Any) -> dt.datetime | None:
    """A StartDate or EndDate as moto keeps it (what the request held: epoch seconds)."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


@dataclass
class Firing:
    """One invocation of a target, as the clock made it (kept for the server's log)."""

    schedule: str
    when: dt.datetime
    execution: str
    outcome: str


@dataclass(eq=False)
class ScheduleClock:
    config: SandboxConfig
    endpoint: str | None = None  # the server's own URL: targets are invoked over HTTP
    offset: float = 0.0  # seconds `advance()` added
    fired: list[Firing] = field(default_factory=list)
    _started: float = field(default_factory=time.time)
    _seen: dict[str, dt.datetime] = field(default_factory=dict)  # schedule ARN -> evaluated up to
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _thread: threading.Thread | None = None

    def now(self) -> dt.datetime:
        real = time.time()
        scaled = self._started + (real - self._started) * self.config.time_scale + self.offset
        return dt.datetime.fromtimestamp(scaled, dt.UTC)

    def advance(self, seconds: float) -> list[Firing]:
        """Moves sandbox time forward and fires what fell due; returns those firings."""
        with self._lock:
            self.tick()  # schedules not seen yet start from now, not from after the jump
            self.offset += seconds
            return self.tick()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing fires while held: a restore replays the recording, during which moto records
        nothing, so a firing's SubmitJob then would be lost at the next restart (and would act on
        a half-replayed account). What falls due meanwhile fires at the first tick after."""
        with self._lock:
            yield

    def start(self) -> None:
        """The server's thread: ticks while the process lives."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="sandbox-scheduler", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(TICK)
            try:
                self.tick()
            except Exception:  # one bad schedule or a reset under our feet must not stop the clock
                log.exception("sandbox scheduler tick")

    def tick(self) -> list[Firing]:
        from moto.scheduler.models import scheduler_backends

        with self._lock:
            now, done = self.now(), []
            live: set[str] = set()
            for regions in list(scheduler_backends.values()):
                for region, backend in list(regions.items()):
                    for group in list(backend.schedule_groups.values()):
                        for schedule in list(group.schedules.values()):
                            live.add(schedule.arn)
                            done += self._due(region, schedule, now)
            for arn in set(self._seen) - live:  # deleted, or the account was reset
                del self._seen[arn]
            return done

    def _due(self, region: str, schedule: Any, now: dt.datetime) -> list[Firing]:
        since = self._seen.setdefault(schedule.arn, now)
        self._seen[schedule.arn] = now
        if schedule.state != "ENABLED" or since >= now:
            return []
        try:
            times = firings_between(
                schedule.schedule_expression,
                schedule.schedule_expression_timezone or "UTC",
                since,
                count=MAX_PER_TICK,
                start=_instant(schedule.start_date),
                end=_instant(schedule.end_date),
                origin=dt.datetime.fromtimestamp(schedule.creation_date, dt.UTC),
            )
        except ExpressionError as exc:  # moto accepts what AWS would not: it never fires
            log.warning("sandbox scheduler: %s: %s", schedule.arn, exc)
            return []
        return [self._fire(region, schedule, t) for t in times if t <= now]

    def _fire(self, region: str, schedule: Any, when: dt.datetime) -> Firing:
        target = schedule.target
        execution = uuid.uuid4().hex[:16]
        text = with_context(target.get("Input") or "{}", schedule.arn, when, execution)
        try:
            if target["Arn"].endswith(SUBMIT_JOB):
                out = self._client("batch", region).submit_job(**camel(json.loads(text)))
                outcome = f"job {out['jobId']}"
            elif ":states:" in target["Arn"]:
                outcome = self._start(region, target["Arn"], text)
            else:
                outcome = f"target {target['Arn']} is not fired by the sandbox"
        except (ClientError, BotoCoreError, ValueError, KeyError) as exc:
            outcome = f"failed: {exc}"
            self._dead_letter(region, target, text, str(exc))
        firing = Firing(schedule.arn, when, execution, outcome)
        self.fired.append(firing)
        log.info("sandbox scheduler: %s at %s: %s", schedule.arn, when.isoformat(), outcome)
        return firing

    def _start(self, region: str, arn: str, text: str) -> str:
        # Over HTTP, so recorded as a SubmitJob target's firing is: a replay starts it again,
        # and it submits its jobs again (its own requests are not recorded: states_patches).
        sfn = self._client("stepfunctions", region)
        out = sfn.start_execution(stateMachineArn=arn, name=str(uuid.uuid4()), input=text)
        return f"execution {out['executionArn']}"

    def _dead_letter(self, region: str, target: dict[str, Any], text: str, error: str) -> None:
        arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not arn:
            return
        try:
            sqs = self._client("sqs", region)
            url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
            attrs = {"ERROR_MESSAGE": {"DataType": "String", "StringValue": error[:1000]}}
            sqs.send_message(QueueUrl=url, MessageBody=text, MessageAttributes=attrs)
        except (ClientError, BotoCoreError) as exc:
            log.warning("sandbox scheduler: dead-letter queue %s: %s", arn, exc)

    def _client(self, service: str, region: str) -> Any:
        if self.endpoint is None:
            raise ValueError("the sandbox scheduler does not know the server's URL")
        import boto3  # here: the CLI's sandbox commands import this module for its constants

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=SANDBOX_KEY,
            aws_secret_access_key=SANDBOX_KEY,
        )
