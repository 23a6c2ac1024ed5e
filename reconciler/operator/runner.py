"""Starting the operator: kopf's settings, its login, its peering, and the blocking loop.

kopf logs in as it does by default: from the in-cluster service account inside a pod, from
KUBECONFIG (or ~/.kube/config) outside one. AWS credentials come from the environment
(IRSA in a cluster); AWS_ENDPOINT_URL points boto3 at another endpoint, such as the sandbox.

Several replicas may run: kopf's peering keeps one active at a time (`peering` names the
KopfPeering object per namespace, or the ClusterKopfPeering with --all-namespaces; the chart
installs kopf's peering CRDs and those objects). Peering is mandatory unless standalone:
without the CRDs kopf stays paused (and says so) rather than risk two active replicas.
`standalone=True` skips peering, for one replica or for tests.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import importlib.util
import logging
import os
import threading
from typing import Any

import kopf

from reconciler.aws.clients import Aws, AwsConfig, CallStats
from reconciler.operator import kube
from reconciler.operator.handlers import Operator

DEFAULT_DRIFT_INTERVAL = 300.0
_log = logging.getLogger("reconciler.operator")
_background: set[asyncio.Task[None]] = set()  # kept referenced until done
FINALIZER = "reconciler.io/finalizer"
PEERING_NAME = "reconciler"


class _Routine(logging.Filter):
    """Drops kopf's per-event and per-tick success lines of the routine handlers."""

    ROUTINE = ("Handler 'wake-waiting' succeeded",)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.ROUTINE)


def quiet_routine_logs() -> None:
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _Routine) for f in objects.filters):
        objects.addFilter(_Routine())


def build_settings(
    *, peering: str = PEERING_NAME, standalone: bool = False, clusterwide: bool = False
) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.peering.name = peering
    settings.peering.standalone = standalone
    settings.peering.mandatory = not standalone  # two active replicas must never happen
    settings.peering.clusterwide = clusterwide
    settings.posting.loggers = False  # events are posted on purpose only: no log lines in them
    settings.posting.reporting_component = "reconciler-operator"
    settings.posting.event_name_prefix = "reconciler-"
    return settings


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own default logins, in kopf's order of preference.

    kopf adds these to its global registry only; ours is a registry of its own (one per run,
    so that several operators can run in one process, as the tests do), so they are
    registered here: the pod's service account in a cluster, else the official client
    library if installed (it understands kubeconfig exec plugins such as `aws eks get-token`),
    else kopf's reader of KUBECONFIG (or ~/.kube/config).
    """
    if os.path.exists(SERVICE_ACCOUNT_TOKEN):
        return kopf.login_with_service_account(**kwargs)
    if importlib.util.find_spec("kubernetes") is not None:
        return kopf.login_via_client(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


PEERING_CHECK_SECONDS = 30.0
KOPF_PEERING = kopf.Resource("kopf.dev", "v1", "kopfpeerings", kind="KopfPeering", namespaced=True)
CLUSTER_PEERING = kopf.Resource(
    "kopf.dev", "v1", "clusterkopfpeerings", kind="ClusterKopfPeering", namespaced=False
)


async def report_missing_peering(
    settings: kopf.OperatorSettings, namespaces: list[str], logger: Any
) -> None:
    """With mandatory peering and no peering object, kopf pauses without a word: say what the
    operator waits for, and again once it is there. Runs until every peering object exists."""
    resource = CLUSTER_PEERING if settings.peering.clusterwide else KOPF_PEERING
    # kopf globs cannot be looked up; the chart makes one object per named namespace.
    places: list[str | None] = (
        [None]
        if settings.peering.clusterwide
        else [n for n in namespaces if not any(c in n for c in "*?[!")]
    )
    waiting: set[str | None] = set()
    while places:
        for place in list(places):
            what = f"{resource.kind} {settings.peering.name}" + (
                f" in namespace {place}" if place else ""
            )
            try:
                found = await kube.exists(settings, resource, place, settings.peering.name)
            except Exception as exc:  # forbidden, unreachable: kopf says so itself; look again
                logger.debug(f"could not look for {what}: {exc}")
                continue
            if found:
                places.remove(place)
                if place in waiting:
                    logger.info(f"found {what}: starting")
            elif place not in waiting:
                waiting.add(place)
                logger.warning(f"waiting for {what}: install the chart or pass --standalone")
        if places:
            await asyncio.sleep(PEERING_CHECK_SECONDS)


def build_registry(
    operator: Operator, namespaces: list[str] | None = None
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    operator.register(registry)
    if not operator.settings.peering.standalone:

        @kopf.on.startup(registry=registry)
        async def peering_check(settings: kopf.OperatorSettings, **_: Any) -> None:
            # A task of its own, started from kopf's context (its login): the startup must
            # not wait for a peering object that may never come.
            task = asyncio.create_task(
                report_missing_peering(settings, list(namespaces or []), _log)
            )
            _background.add(task)
            task.add_done_callback(_background.discard)

    return registry


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """What `MALLOC_ARENA_MAX=2` does, set from inside (the chart, the image and a shell all
    start the operator the same way then). glibc gives threads that allocate at once arenas of
    their own, up to 8 a core, and an arena keeps the pages it once used: the engine's reads run
    in up to 16 workers and a thread pool per plan, and at 1,000 objects the arenas held tens of
    MiB the heap no longer used (benchmarks/README.md, the operator section). A value in the
    environment wins; elsewhere than glibc this does nothing. True if the limit was set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
        return bool(mallopt and mallopt(_M_ARENA_MAX, arenas) == 1)
    except OSError:
        return False


def aws_config_from_env(config: AwsConfig | None) -> AwsConfig:
    """Credentials come from the usual chain (IRSA in a cluster) and boto3 reads
    AWS_ENDPOINT_URL itself; the region may come from AWS_REGION, as AWS's SDKs have it."""
    config = config or AwsConfig()
    if config.region is None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        config = dataclasses.replace(config, region=region)
    return config


def run(
    namespaces: list[str] | None = None,
    all_namespaces: bool = False,
    drift_interval: float = DEFAULT_DRIFT_INTERVAL,
    *,
    liveness: str | None = None,
    peering: str = PEERING_NAME,
    standalone: bool = False,
    priority: int = 0,
    aws_config: AwsConfig | None = None,
    stats: CallStats | None = None,
    workers: int = 16,
    options: dict[str, Any] | None = None,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
    configure_logging: bool = True,
    log_level: str = "INFO",
) -> None:
    """Runs the operator until stopped (SIGINT/SIGTERM in the main thread, or `stop_flag`).

    `namespaces` are served (kopf globs allowed), or every namespace with `all_namespaces`.
    `drift_interval` is the period of the drift sweep (operator/sweep.py). `liveness` is a URL
    kopf serves its health probe at (e.g. http://0.0.0.0:8080/healthz). `workers` bounds how
    many engine calls (which block while AWS settles) run at once. `options` go to the
    engine's Options (e.g. {"wait_timeout": 600}); the stack and adoption come from each
    object.
    """
    if bool(namespaces) == bool(all_namespaces):
        raise ValueError("give either namespaces or all_namespaces")
    if drift_interval <= 0:
        raise ValueError("drift_interval must be positive")
    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"unknown log level {log_level!r}")
    if configure_logging:
        # kopf's format; at DEBUG kopf logs whole patches (annotations included): debugging only.
        kopf.configure(debug=level == "DEBUG", quiet=level in ("WARNING", "ERROR"))
        logging.getLogger().setLevel(level)
    if level != "DEBUG":
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        quiet_routine_logs()
    settings = build_settings(peering=peering, standalone=standalone, clusterwide=all_namespaces)
    aws = Aws(aws_config_from_env(aws_config), stats)
    aws.lean_models()  # it lives for weeks: about 10 MiB less (aws/lean.py)
    limit_malloc_arenas()  # before the workers start
    operator = Operator(aws, settings, drift_interval, workers=workers, options=options)
    registry = build_registry(operator, list(namespaces or []))
    coro = kopf.operator(
        registry=registry,
        settings=settings,
        memories=operator.memories,  # they tell the drift sweep when kopf pauses (kube.py)
        clusterwide=all_namespaces,
        namespaces=list(namespaces or []),
        standalone=standalone,
        priority=priority,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
    try:
        asyncio.run(coro)
    except asyncio.CancelledError:
        pass
    finally:
        operator.executor.shutdown(wait=False, cancel_futures=True)
