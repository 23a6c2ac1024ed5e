"""boto3 clients that share one rate budget and count every call.

Every client made here retries throttling adaptively (botocore's `adaptive` mode), and every
attempt first takes a token from one process-wide bucket, so that concurrent work never pushes
the account past Batch's API rate. The counters are what `--stats`, the tests and the
benchmarks read: a no-op re-apply must show zero write calls.

boto3 and botocore are imported when the first `Aws` is made, not with this module: the command
line reads `DEFAULT_MAX_RPS` and `AwsConfig` for every verb, and `validate` and `--help` must not
pay the ~0.2 s that importing boto3 costs.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.aws.replies import reply
from reconciler.errors import TerminalError

READ_PREFIXES = ("Describe", "List", "Get", "Head")
# AWS Batch allows an account 50 calls a second across all its API calls, SubmitJob and the
# Describe* reads included (one fixed quota, not per operation): reads and writes share it, so
# they share one bucket. 40 leaves a fifth of the account's rate to other clients (the console,
# a pipeline's own jobs, other tools). Other services have quotas of their own and their own,
# gentler bucket.
DEFAULT_MAX_RPS = 40.0
OTHER_SERVICES_RPS = 20.0


class RateLimiter:
    """A token bucket: `rate` calls a second on average, bursts of up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = rate
        self.burst = burst or max(1.0, rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # float error must not leave a sliver to wait for
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


@dataclass
class CallStats:
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, service: str, operation: str) -> None:
        with self._lock:
            self.calls[f"{service}:{operation}"] += 1

    @staticmethod
    def is_write(key: str) -> bool:
        return not key.split(":", 1)[1].startswith(READ_PREFIXES)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if self.is_write(k))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


NO_REGION = (
    "no AWS region: pass --region REGION, set AWS_REGION, or set one for the profile with "
    "`aws configure` (or use --sandbox for the embedded AWS sandbox)"
)


@dataclass(frozen=True)
class AwsConfig:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_rps: float = DEFAULT_MAX_RPS
    max_attempts: int = 10
    aws_access_key_id: str | None = None  # only for the sandbox; real accounts use the chain
    aws_secret_access_key: str | None = None


class Aws:
    """A factory of clients for one account and region; safe to share between threads."""

    def __init__(self, config: AwsConfig, stats: CallStats | None = None):
        self.config = config
        self.stats = stats or CallStats()
        self.limiters = {"batch": RateLimiter(config.max_rps)}
        self._other_rate = OTHER_SERVICES_RPS if config.max_rps > 0 else 0.0
        import boto3.session  # here, not at the top: see the module's docstring

        try:  # a missing profile, a malformed config file: the project's errors, not botocore's
            self._session = boto3.session.Session(
                profile_name=config.profile,
                # AWS_REGION comes first, as in the AWS CLI v2 and the other SDKs; boto3 itself
                # reads only AWS_DEFAULT_REGION and the profile's region.
                region_name=config.region or os.environ.get("AWS_REGION") or None,
                aws_access_key_id=config.aws_access_key_id,
                aws_secret_access_key=config.aws_secret_access_key,
            )
        except Exception as exc:
            raise _setup_error(exc, "cannot use the AWS configuration") from exc
        self._clients: dict[str, Any] = {}
        self.memo: dict[str, Any] = {}  # facts about the account learnt once per process
        self._lock = threading.Lock()

    def lean_models(self) -> None:
        """Service models without their documentation (aws/lean.py), for a process that lives
        long (the operator); before the first client."""
        from reconciler.aws.lean import lean_models

        lean_models(self._session._session)

    @property
    def region(self) -> str:
        """The region the profile, AWS_REGION or --region chose; never a silent us-east-1:
        resources made in a region nobody chose are resources nobody finds."""
        if not self._session.region_name:
            raise TerminalError(NO_REGION)
        return str(self._session.region_name)

    def client(self, service: str, retries: bool = True) -> Any:
        """A client of `service`. `retries=False` for non-idempotent writes (aws/once.py): the
        SDK must not send them again after a lost reply; the caller checks first."""
        key = service if retries else f"{service}/once"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(service, retries)
            return self._clients[key]

    def _make(self, service: str, retries: bool = True) -> Any:
        from botocore.config import Config

        # total_max_attempts counts the first attempt; max_attempts would count only retries.
        attempts = self.config.max_attempts if retries else 1
        cfg = Config(
            retries={"mode": "adaptive", "total_max_attempts": attempts},
            max_pool_connections=32,
            connect_timeout=10,
            read_timeout=60,
        )
        try:  # a malformed region or endpoint (also from AWS_* variables) is refused here
            client = self._session.client(
                service, region_name=self.region, endpoint_url=self.config.endpoint_url, config=cfg
            )
        except Exception as exc:
            raise _setup_error(exc, f"cannot make an AWS {service} client") from exc
        client.meta.events.register("before-call", self._count(service))
        limiter = self.limiters.setdefault(service, RateLimiter(self._other_rate))
        client.meta.events.register("before-send", lambda **_: limiter.acquire())
        return Client(client)

    def _count(self, service: str) -> Any:
        def handler(model: Any, **_: Any) -> None:
            self.stats.record(service, model.name)

        return handler


def _setup_error(exc: Exception, what: str) -> Exception:
    """botocore's refusal of a configuration, as the project's error; a bug stays itself."""
    from reconciler.aws.errors import translate  # imports botocore: see the docstring

    mapped = translate(exc)
    if mapped is not exc:
        return mapped
    if isinstance(exc, ValueError | OSError):  # "Invalid endpoint: ...", an unreadable file
        return TerminalError(f"{what}: {exc}")
    return exc


class Client:
    """A boto3 client whose calls (paginated ones included) raise the project's errors and
    return `Reply` mappings (aws/replies.py): a key the reply lacks is a clean error."""

    def __init__(self, client: Any):
        self._client = client

    def _operation(self, method: str) -> str:
        return str(self._client.meta.method_to_api_mapping.get(method, method))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_paginator":
            return lambda op: _Paginator(attr(op), self._operation(op))
        if not callable(attr) or name.startswith("_"):
            return attr
        return _mapped(attr, self._operation(name))

    def unwrapped(self) -> Any:
        return self._client


class _Paginator:
    def __init__(self, paginator: Any, operation: str):
        self._paginator = paginator
        self._operation = operation

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        from reconciler.aws.errors import translate  # imports botocore: see the docstring

        pages = iter(self._paginator.paginate(**kwargs))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as exc:
                mapped = translate(exc, self._operation)
                if mapped is exc:
                    raise
                raise mapped from exc
            yield reply(page, self._operation)


def _mapped(call: Callable[..., Any], operation: str) -> Callable[..., Any]:
    from reconciler.aws.errors import translate  # imports botocore: see the docstring

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return reply(call(*args, **kwargs), operation)
        except Exception as exc:
            mapped = translate(exc, operation)
            if mapped is exc:
                raise
            raise mapped from exc

    return wrapper
