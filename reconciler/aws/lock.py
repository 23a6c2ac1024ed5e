"""One writer per stack at a time, across processes and machines: a lease held in AWS itself.

The lease is an item of a DynamoDB table (`reconciler-locks`, created on first use, billed per
request: nothing while idle), taken with a conditional write: only if no one holds it, or the
holder's lease has expired. DynamoDB, not an SSM parameter: taking over an expired lease must
be one compare-and-set, and SSM can only create-if-absent, so two processes taking over the same
expired lease (delete, then create) could both believe they won. The holder renews the lease
while it works; a holder that crashed blocks the stack for one lease period at most, and
`reconciler unlock --force` frees it at once, as `terraform force-unlock` does.

A lease that ends is not deleted: its item stays, its `expires` set to when it ended (and
`released`). So the item says when the stack was last written by the tool, and a plan made
without the lease (engine/locking.py) can be kept when the lease is then taken only if it had
ended before that plan began: one conditional write instead of the plan made again.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.aws.clients import Aws
from reconciler.aws.tags import MANAGED_BY, TOOL
from reconciler.backoff import Backoff
from reconciler.errors import NotFoundError, PlanError, ProviderError

TABLE = "reconciler-locks"
LEASE_SECONDS = 60.0
RENEW_EVERY = LEASE_SECONDS / 3
WAIT = Backoff(first=1.0, ceiling=10.0, factor=1.5)
# How far two writers' clocks may disagree: a lease is taken over a plan made without it only if
# it had ended this long before the plan began (lease expiry already trusts clocks to 60 s).
CLOCK_SKEW = 2.0


@dataclass(frozen=True)
class Holder:
    who: str
    operation: str
    since: float
    expires: float

    def describe(self, now: float) -> str:
        return (
            f"{self.who} ({self.operation}, for {now - self.since:.0f}s; "
            f"lease ends in {max(0.0, self.expires - now):.0f}s unless renewed)"
        )


def _holder(item: dict[str, Any]) -> Holder:
    return Holder(
        who=item.get("who", {}).get("S", "?"),
        operation=item.get("operation", {}).get("S", "?"),
        since=float(item.get("since", {}).get("N", "0")),
        expires=float(item.get("expires", {}).get("N", "0")),
    )


class StackLock:
    def __init__(
        self,
        aws: Aws,
        stack: str,
        operation: str,
        clock: Callable[[], float] = time.time,
    ):
        self.aws = aws
        self.stack = stack
        self.operation = operation
        self.token = uuid.uuid4().hex
        self.who = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
        self._clock = clock
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _key(self) -> dict[str, Any]:
        return {"stack": {"S": self.stack}}

    def _ensure_table(self) -> None:
        db = self.aws.client("dynamodb")
        if self.aws.memo.get("lock-table"):
            return
        try:
            db.describe_table(TableName=TABLE)
            self.aws.memo["lock-table"] = True
            return
        except NotFoundError:
            pass
        try:
            db.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "stack", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "stack", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": MANAGED_BY, "Value": TOOL}],
            )
        except ProviderError as exc:
            if exc.code != "ResourceInUseException":  # another process created it first
                raise
        for _ in range(60):
            status = db.describe_table(TableName=TABLE)["Table"].get("TableStatus")
            if status == "ACTIVE":
                self.aws.memo["lock-table"] = True
                return
            time.sleep(1.0)

    def _put(self, free_before: float, absent_ok: bool = True) -> bool:
        """Takes the lease if no one holds it: its item is absent (if `absent_ok`), or the last
        lease ended (or expired) before `free_before`. False if the condition failed."""
        db = self.aws.client("dynamodb")
        now = self._clock()
        try:
            db.put_item(
                TableName=TABLE,
                Item={
                    **self._key(),
                    "token": {"S": self.token},
                    "who": {"S": self.who},
                    "operation": {"S": self.operation},
                    "since": {"N": f"{now:.3f}"},
                    "expires": {"N": f"{now + LEASE_SECONDS:.3f}"},
                },
                ConditionExpression="attribute_not_exists(#s) OR #e < :free OR #t = :me"
                if absent_ok
                else "attribute_exists(#s) AND (#e < :free OR #t = :me)",
                ExpressionAttributeNames={"#s": "stack", "#e": "expires", "#t": "token"},
                ExpressionAttributeValues={
                    ":free": {"N": f"{free_before:.3f}"},
                    ":me": {"S": self.token},
                },
            )
            return True
        except ProviderError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            return False

    def _try(self) -> Holder | None:
        """Takes the lease if it is free or expired; else says who holds it."""
        if self._put(self._clock()):
            return None
        db = self.aws.client("dynamodb")
        item = db.get_item(TableName=TABLE, Key=self._key(), ConsistentRead=True).get("Item")
        now = self._clock()
        return _holder(item) if item else Holder("?", "?", now, now)

    def now(self) -> float:
        """The clock the lease's times are written with."""
        return self._clock()

    def take_if_unused_since(self, started: float) -> bool:
        """Takes the lease only if no one has held it since `started` (less the clocks' skew):
        then no other writer of the stack changed it while a plan begun at `started` read it,
        and that plan may be carried out as it is. False (nothing taken, no wait) otherwise.
        An absent item proves nothing: a version of this tool that deleted its lease at the end
        may have held it meanwhile, so the caller then takes the lease and plans again."""
        self._ensure_table()
        if not self._put(started - CLOCK_SKEW, absent_ok=False):
            return False
        self._start_renewing()
        return True

    def acquire(self, timeout: float, say: Callable[[str], None]) -> None:
        self._ensure_table()
        deadline = time.monotonic() + timeout
        delay: float | None = None
        told = False
        while True:
            holder = self._try()
            if holder is None:
                break
            now = self._clock()
            if time.monotonic() >= deadline:
                raise PlanError(
                    f"stack {self.stack!r} is locked by {holder.describe(now)}; "
                    f"waited {timeout:.0f}s (--lock-timeout). If that process is gone, "
                    f"`reconciler unlock --force --stack {self.stack}` frees the stack."
                )
            if not told:
                say(f"Waiting for the lock of stack {self.stack!r}, held by {holder.describe(now)}")
                told = True
            delay = WAIT.after(delay)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        self._start_renewing()

    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="stack-lease")
        self._renewer.start()

    def _renew(self) -> None:
        db = self.aws.client("dynamodb")
        while not self._stop.wait(RENEW_EVERY):
            now = self._clock()
            try:
                db.update_item(
                    TableName=TABLE,
                    Key=self._key(),
                    UpdateExpression="SET #e = :e",
                    ConditionExpression="#t = :me",
                    ExpressionAttributeNames={"#e": "expires", "#t": "token"},
                    ExpressionAttributeValues={
                        ":e": {"N": f"{now + LEASE_SECONDS:.3f}"},
                        ":me": {"S": self.token},
                    },
                )
            except ProviderError:
                return  # taken over (force-unlock) or unreachable: the work stops on its own

    def release(self) -> None:
        """Ends the lease, keeping its item with the time it ended (see the module's docstring)."""
        db = self.aws.client("dynamodb")
        self._stop.set()
        now = f"{self._clock():.3f}"
        # Not ours any more (force-unlocked, or expired and taken over): nothing to free.
        with contextlib.suppress(ProviderError):
            db.update_item(
                TableName=TABLE,
                Key=self._key(),
                UpdateExpression="SET #e = :now, #r = :now",
                ConditionExpression="#t = :me",
                ExpressionAttributeNames={"#e": "expires", "#r": "released", "#t": "token"},
                ExpressionAttributeValues={":now": {"N": now}, ":me": {"S": self.token}},
            )


def force_unlock(aws: Aws, stack: str, clock: Callable[[], float] = time.time) -> Holder | None:
    """Frees the stack whoever holds it; returns who did, if anyone. The item is replaced by an
    ended lease, not deleted, so a plan made while the holder still wrote is not kept."""
    db = aws.client("dynamodb")
    now = f"{clock():.3f}"
    ended = {"token": {"S": uuid.uuid4().hex}, "who": {"S": "unlock --force"}}
    try:
        old = db.put_item(
            TableName=TABLE,
            Item={"stack": {"S": stack}, **ended, "expires": {"N": now}, "released": {"N": now}},
            ReturnValues="ALL_OLD",
        ).get("Attributes")
    except NotFoundError:
        return None
    return _holder(old) if old and "released" not in old else None
