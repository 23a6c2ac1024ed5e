"""The operator with many custom resources: its peak memory, and the AWS calls of a drift pass.

    python benchmarks/bench_operator.py                       # 1,000 resources, 60 s drift
    python benchmarks/bench_operator.py --size 100 --drift-interval 20

The real operator (`python -m reconciler operator -A --standalone`, its own process, so that
its peak RSS is its own) runs against KMock's Kubernetes emulator (tests/operator/kube.py, in
this process) and a moto server (bench_stack.py's, in a third process). The stack is
bench_stack.py's shape: a tenth compute environments, a tenth queues, the rest job
definitions. It is first applied with the CLI (the stack named as the namespace, as the
operator names it), so that the operator's first reconcile of each object finds it made;
then the custom resources are created, and the benchmark waits until every one is Ready and
Synced. The operator's AWS calls are read from its liveness probe (`awsCalls`), its peak RSS
from /proc (`VmHWM`).

A drift pass: the operator's drift sweep checks every object once per `--drift-interval`; the
calls made in an interval after every object is Ready (nothing else happens then; by default
one interval is left to pass first, `--quiet-passes`) are one pass, each object checked once. With
nothing changed in AWS they should be at the CLI's floor: what a no-op `apply` of the whole
stack reads (`bench_stack.py`'s re-apply), not a plan per object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from bench_stack import MotoServer, Shape, _free_port, manifest_text  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from reconciler import API_VERSION  # noqa: E402
from reconciler.registry import models  # noqa: E402
from tests.operator.kube import Client, cluster  # noqa: E402

NAMESPACE = "bench"
REGION = "us-east-1"


def out(line: str = "") -> None:
    print(line, flush=True)


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mb(mib: float) -> float:
    """MiB as MB (10^6 bytes), the issue's unit."""
    return mib * 2**20 / 1e6


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(liveness: str) -> dict[str, Any]:
    with urllib.request.urlopen(liveness, timeout=120) as resp:  # slow when traced
        return dict(json.loads(resp.read()))


def aws_calls(liveness: str) -> int:
    return int(probe(liveness)["awsCalls"])


def by_operation(liveness: str) -> Counter[str]:
    return Counter(probe(liveness).get("awsCallsByOperation") or {})


def event_reasons(client: Client) -> Counter[str]:
    return Counter(str(e.get("reason")) for e in client.events(NAMESPACE))


def listed(client: Client, plural: str) -> list[dict[str, Any]]:
    """The objects of a kind; the emulator takes seconds to list hundreds."""
    url = f"{client.url}/apis/{API_VERSION}/namespaces/{NAMESPACE}/{plural}"
    with urllib.request.urlopen(url, timeout=300) as resp:
        return list((json.loads(resp.read()) or {}).get("items") or [])


def settled(client: Client, kinds: set[str] | None = None) -> tuple[int, int]:
    """How many objects (of `kinds`, else all) are Ready=True and Synced=True, of how many."""
    good = total = 0
    for kind, model in models().items():
        if kinds is not None and kind not in kinds:
            continue
        for obj in listed(client, model.PLURAL):
            total += 1
            conds = {
                c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])
            }
            good += conds.get("Ready") == "True" and conds.get("Synced") == "True"
    return good, total


# The operator under tracemalloc (8 frames a traceback): each SIGUSR1 writes a snapshot,
# snapshot-1.pickle, snapshot-2.pickle..., which the benchmark compares (`growth`).
TRACED = """
import gc, itertools, signal, sys, tracemalloc
tracemalloc.start(8)
out = sys.argv.pop(1)
count = itertools.count(1)
def dump(*_):
    gc.collect()
    tracemalloc.take_snapshot().dump(f"{out}/snapshot-{next(count)}.pickle")
signal.signal(signal.SIGUSR1, dump)
from reconciler.cli import main
sys.exit(main(sys.argv[1:]))
"""


def snapshot(proc: subprocess.Popen[str], tmp: Path, number: int) -> Path:
    """Has the traced operator write its next snapshot, and waits for it."""
    path = tmp / f"snapshot-{number}.pickle"
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 120
    size = -1
    while time.monotonic() < deadline:  # written when its size stops changing
        if path.exists() and path.stat().st_size == size and size > 0:
            return path
        size = path.stat().st_size if path.exists() else -1
        time.sleep(2)
    raise SystemExit(f"the operator wrote no {path.name}")


def growth(before: Path, after: Path, objects: int, top: int = 25) -> None:
    """What the operator allocated and still holds between two snapshots, by allocating
    traceback (our frames and kopf's named first), per object added in between."""
    import tracemalloc

    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    old_total = sum(s.size for s in old.statistics("filename"))
    new_total = sum(s.size for s in new.statistics("filename"))
    per = max(objects, 1)
    out(
        f"  traced: {old_total / 2**20:.1f} -> {new_total / 2**20:.1f} MiB, "
        f"{(new_total - old_total) / per / 1024:.1f} KiB an object added ({objects})"
    )
    for key in ("filename", "traceback"):
        out(f"  largest growth by {key}:")
        for stat in new.compare_to(old, key)[:top]:
            out(f"    {stat.size_diff / per:9.0f} B/object  {stat.count_diff / per:6.1f} blocks")
            frames = [f for f in stat.traceback if "/importlib/" not in f.filename]
            if key == "traceback":
                ours = [f for f in frames if "/reconciler/" in f.filename or "/kopf/" in f.filename]
                frames = (ours or frames)[-4:] + frames[:1]
            for frame in frames[:5]:
                out(f"        {frame.filename.split('site-packages/')[-1]}:{frame.lineno}")


def create(client: Client, doc: dict[str, Any]) -> None:
    """Creates the object, trying again when the emulator is slow to answer."""
    body = {**doc, "metadata": {**doc["metadata"], "namespace": NAMESPACE}}
    data = json.dumps(body).encode()
    url = client.url + client.path(doc["kind"], NAMESPACE)
    for _ in range(5):
        req = urllib.request.Request(url, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 409:  # an earlier try did create it
                return
            raise
        except TimeoutError:
            continue
    raise SystemExit(f"could not create {doc['kind']}/{doc['metadata']['name']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000, help="custom resources (default 1,000)")
    p.add_argument("--drift-interval", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--max-rps", type=float, default=0.0, help="the operator's (default 0: none)")
    p.add_argument("--workers", type=int, default=0, help="the operator's (default: its own)")
    p.add_argument(
        "--quiet-passes",
        type=int,
        default=1,
        help="drift intervals left to pass after the last object settled, before the one "
        "measured (default 1: the plan made while objects were created has expired)",
    )
    p.add_argument("--ready-timeout", type=float, default=1800.0)
    p.add_argument("--batch", type=int, default=250, help="objects created at a time")
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the operator's allocations and print the largest sites at the end",
    )
    args = p.parse_args(argv)
    # Stopped early (SIGTERM), the operator and the moto server are stopped all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    shape = Shape.of(args.size)
    out(
        f"bench_operator: {args.size} custom resources ({shape.ce} compute environments, "
        f"{shape.jq} queues, {shape.jd} job definitions); drift every {args.drift_interval:g}s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        server = MotoServer(tmp)
        try:
            server.fresh_account()
            return run(args, shape, server.endpoint, Path(tmp))
        finally:
            server.stop()


def run(args: argparse.Namespace, shape: Shape, endpoint: str, tmp: Path) -> int:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    text = manifest_text(shape)
    path = tmp / "stack.yaml"
    path.write_text(text)
    start = time.monotonic()
    cli = [sys.executable, "-m", "reconciler"]
    applied = subprocess.run(
        [*cli, "apply", "-f", str(path), "--stack", NAMESPACE, "--max-rps", "0", "--yes"],
        env=env,
        capture_output=True,
        text=True,
    )
    if applied.returncode != 0:
        out(applied.stdout[-2000:] + applied.stderr[-2000:])
        return 1
    out(f"  applied with the CLI in {time.monotonic() - start:.1f}s")
    docs = [d for d in YAML(typ="safe").load_all(text) if d]
    # The emulator keeps no log of requests: matching each one against a log of them all made
    # it take seconds a request past about 300 objects (tests/operator/kube.py).
    with cluster({NAMESPACE}, keep_requests=False) as k8s:
        kubeconfig = k8s.kubeconfig(tmp / "kubeconfig")
        port = _free_port()
        liveness = f"http://127.0.0.1:{port}/healthz"
        log = open(tmp / "operator.log", "w")  # noqa: SIM115
        command = cli
        if args.tracemalloc:  # the operator under tracemalloc; SIGUSR1 writes a snapshot
            command = [sys.executable, "-c", TRACED, str(tmp)]
        proc = subprocess.Popen(
            [
                *command,
                "operator",
                "-A",
                "--standalone",
                "--drift-interval",
                f"{args.drift_interval:g}",
                "--liveness",
                liveness,
                "--max-rps",
                f"{args.max_rps:g}",
                *(["--workers", str(args.workers)] if args.workers else []),
                "--log-level",
                "WARNING",
            ],
            env={**env, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            return measure(args, k8s, proc, liveness, docs, tmp)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def measure(
    args: argparse.Namespace,
    k8s: Any,
    proc: subprocess.Popen[str],
    liveness: str,
    docs: list[dict[str, Any]],
    tmp: Path,
) -> int:
    deadline = time.monotonic() + 60
    while not all(k8s.watching(m.PLURAL) for m in models().values()):
        if proc.poll() is not None or time.monotonic() > deadline:
            out((tmp / "operator.log").read_text()[-3000:])
            return 1
        time.sleep(0.2)
    idle_rss = vm_rss_mib(proc.pid)
    out(f"  operator started: pid {proc.pid}, {idle_rss:.0f} MiB RSS before any object")
    client = Client(k8s.url)
    start = time.monotonic()
    deadline = start + args.ready_timeout
    good, total = 0, 0
    snapshots: list[tuple[int, Path]] = []  # (objects, snapshot) with --tracemalloc
    if args.tracemalloc:
        snapshots.append((0, snapshot(proc, tmp, 1)))
    # In batches, each settled before the next: the emulator is a Python test double, and
    # 1,000 creates at once with kopf's patches of each time its requests out.
    for at in range(0, len(docs), args.batch):
        batch = docs[at : at + args.batch]
        for doc in batch:
            create(client, doc)
        kinds = {d["kind"] for d in batch}  # listing is slow in the emulator: only these
        while True:
            good, total = settled(client, kinds)
            if good == total or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(5)
        out(
            f"  {at + len(batch)} created, {good}/{total} of their kinds Ready and Synced after "
            f"{time.monotonic() - start:.0f}s; {aws_calls(liveness)} AWS calls; "
            f"RSS {vm_rss_mib(proc.pid):.0f} MiB, peak {vm_hwm_mib(proc.pid):.0f} MiB"
        )
        if good != total:
            break
        if args.tracemalloc:
            snapshots.append((at + len(batch), snapshot(proc, tmp, len(snapshots) + 1)))
    if len(snapshots) > 2:  # from the first batch to the last: past start-up and first uses
        (n0, old), (n1, new) = snapshots[1], snapshots[-1]
        out(f"  operator's allocations held from {n0} to {n1} objects:")
        growth(old, new, n1 - n0)
    good, _ = settled(client)
    ready_s = time.monotonic() - start
    first = aws_calls(liveness)
    out(
        f"  {good}/{len(docs)} Ready and Synced after {ready_s:.1f}s; {first} AWS calls so far; "
        f"peak RSS {vm_hwm_mib(proc.pid):.0f} MiB"
    )
    if good != len(docs):
        out((tmp / "operator.log").read_text()[-3000:])
        return 1
    time.sleep(args.drift_interval * args.quiet_passes)
    first = aws_calls(liveness)
    patches, operations, events = k8s.k8s.served["PATCH"], by_operation(liveness), None
    with contextlib.suppress(Exception):  # the emulator lists events slowly: informative only
        events = event_reasons(client)
    time.sleep(args.drift_interval)
    then = aws_calls(liveness)
    patches = k8s.k8s.served["PATCH"] - patches
    operations = by_operation(liveness) - operations
    out(f"  the pass's AWS calls: {dict(sorted(operations.items()))}")
    if events is not None:
        with contextlib.suppress(Exception):
            out(f"  the pass's events: {dict(event_reasons(client) - events)}")
    peak = vm_hwm_mib(proc.pid)
    still, _ = settled(client)
    out(
        f"  one drift interval ({args.drift_interval:g}s) later: {then - first} AWS calls, "
        f"{patches} Kubernetes patches"
    )
    out(f"  objects still Ready and Synced: {still}/{len(docs)}")
    now = vm_rss_mib(proc.pid)
    out(
        f"  operator peak RSS: {peak:.0f} MiB = {mb(peak):.0f} MB "
        f"(now {now:.0f} MiB = {mb(now):.0f} MB)"
    )
    ok = mb(peak) <= 150 and still == len(docs)
    out(f"  target: peak RSS <= 150 MB: {'yes' if mb(peak) <= 150 else 'no'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
