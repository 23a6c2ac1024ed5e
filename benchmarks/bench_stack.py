"""Benchmark: apply, no-op re-apply and delete of an N-resource stack against a moto server.

    python benchmarks/bench_stack.py [--sizes 10,100,300] [--max-rps 20] [--parallelism 8]

For each size N the script writes a stack of N resources to a temporary file (about N/10
compute environments `ce-000..`, N/10 job queues `jq-000..` each over 1-3 of those
environments, the rest job definitions `jd-000..`), and runs three phases through the engine
itself (validate -> plan_apply/plan_delete -> execute), with a fresh Context per phase, as a
separate CLI invocation would have:

  apply     everything is created
  reapply   the same manifests again: must change nothing
  delete    everything is deleted

For each phase it prints the API calls by `service:Operation` (CallStats), the total and write
calls, the wall time (planning and executing separately), the tracemalloc peak of the phase
and the process's ru_maxrss. It then checks the targets of a no-op re-apply: zero write calls,
at most ceil(N_kind/100) describe calls for compute environments and for job queues, and at
most one DescribeJobDefinitions per job definition name.

The moto server runs in a separate process (`python -m reconciler.sandbox.server`, which
applies the sandbox's moto extensions), so that its work is neither on this process's GIL
nor in its memory figures. It is reset (POST /moto-api/reset) and re-seeded
(`reconciler.sandbox.manager.prepare_new`, in a child process, so that the seeding's own IAM
and EC2 clients are not counted in the ru_maxrss reported here) before every size.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for tests.stacks, the manifest text builders the tests use
    sys.path.insert(0, str(ROOT))

from reconciler.aws.clients import DEFAULT_MAX_RPS, Aws, AwsConfig, CallStats  # noqa: E402
from reconciler.engine.apply import execute  # noqa: E402
from reconciler.engine.context import Context, Options  # noqa: E402
from reconciler.engine.planner import plan_apply, plan_delete  # noqa: E402
from reconciler.manifests import load_paths, validate_documents  # noqa: E402
from tests.stacks import ce, jd, jq, stack  # noqa: E402

REGION = "us-east-1"
STACK = "bench"
MIB = 1024 * 1024
PAGE = 100  # what the Describe* listings and the status pollers ask for per call
# The kind each Batch operation is about, to show calls per resource of that kind.
KIND_OF_OPERATION = {
    "ComputeEnvironment": "ce",
    "JobQueue": "jq",
    "ListJobs": "jq",  # counting a queue's unfinished jobs before deleting it
    "JobDefinition": "jd",
}


# -- the stack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    ce: int
    jq: int
    jd: int

    @classmethod
    def of(cls, n: int) -> Shape:
        n_ce = max(1, round(n / 10))
        n_jq = max(1, round(n / 10))
        return cls(n_ce, n_jq, n - n_ce - n_jq)


def manifest_text(shape: Shape, network: tuple[list[str], list[str]] | None = None) -> str:
    """`network`: subnet and security group IDs spelled out, as a batchbeagle stack must;
    by default the environments look the default VPC's up (two reads a plan)."""
    docs = [ce(f"ce-{i:03d}", max_vcpus=16 + i % 4 * 16, network=network) for i in range(shape.ce)]
    for i in range(shape.jq):
        width = min(1 + i % 3, shape.ce)  # 1, 2, 3, 1, 2, 3, ... environments per queue
        envs = tuple(f"ce-{(i + j) % shape.ce:03d}" for j in range(width))
        docs.append(jq(f"jq-{i:03d}", envs=envs, priority=i % 1000))
    docs += [jd(f"jd-{i:03d}", image=f"busybox:1.{i % 37}") for i in range(shape.jd)]
    return stack(*docs)


# -- the moto server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, timeout: float = 10.0) -> int:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status)


PREPARE = "import sys; from reconciler.sandbox import manager; manager.prepare_new(sys.argv[1])"


class MotoServer:
    """`python -m reconciler.sandbox.server` in its own process, without request recording."""

    def __init__(self, workdir: str):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOTO_")}
        self.env, self.workdir = env, workdir
        self.log = open(Path(workdir) / "moto-server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.sandbox.server", "--port", str(self.port)],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            cwd=workdir,  # whatever moto might write lands in the temporary directory
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:  # the reset endpoint doubles as a probe that records nothing
            try:
                if _post(f"{self.endpoint}/moto-api/reset", timeout=2) == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # the log lives in a temporary directory: show its end now
                tail = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise SystemExit(f"the moto server did not start; its output:\n{tail}")
            time.sleep(0.1)

    def fresh_account(self) -> None:
        _post(f"{self.endpoint}/moto-api/reset", timeout=120)  # slow on a busy machine
        # prepare_new's IAM and EC2 clients are not the reconciler's: run it in a child
        # process so that this process's ru_maxrss is the reconciler's, as in the CLI.
        subprocess.run(
            [sys.executable, "-c", PREPARE, self.endpoint],
            check=True,
            cwd=self.workdir,
            env=self.env,
        )

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # the server's own peak resident set
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- one phase ----------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    size: int
    phase: str
    calls: Counter[str]
    plan_s: float
    exec_s: float
    actions: Counter[str]
    failed: list[str]
    trace_peak_mib: float | None  # None when tracemalloc is off
    trace_delta_mib: float | None
    maxrss_mib: float
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if CallStats.is_write(k))

    @property
    def wall_s(self) -> float:
        return self.plan_s + self.exec_s


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_phase(
    phase: str, size: int, path: str, endpoint: str, max_rps: float, parallelism: int
) -> PhaseResult:
    gc.collect()
    tracemalloc.reset_peak()
    start_mem = tracemalloc.get_traced_memory()[0]  # (0, 0) when tracing is off
    t0 = time.perf_counter()
    ctx = Context(
        aws=Aws(
            AwsConfig(
                region=REGION,
                endpoint_url=endpoint,
                max_rps=max_rps,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
        ),
        options=Options(stack=STACK, parallelism=parallelism),
    )
    desired = validate_documents(load_paths([path]))
    plan = plan_delete(ctx, desired) if phase == "delete" else plan_apply(ctx, desired)
    t1 = time.perf_counter()
    problems = [f"blocked: {a.id}: {a.summary}" for a in plan.actions if a.verb.blocks]
    outcomes = [] if problems else execute(ctx, plan)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    failed = [f"{o.action.id}: {o.status}: {o.detail}" for o in outcomes if o.status != "done"]
    return PhaseResult(
        size=size,
        phase=phase,
        calls=Counter(ctx.aws.stats.calls),
        plan_s=t1 - t0,
        exec_s=t2 - t1,
        actions=Counter(a.verb.name.lower() for a in plan.actions),
        failed=failed,
        trace_peak_mib=peak / MIB if tracemalloc.is_tracing() else None,
        trace_delta_mib=(peak - start_mem) / MIB if tracemalloc.is_tracing() else None,
        maxrss_mib=_maxrss_mib(),
        problems=problems,
    )


def expected_actions(phase: str, shape: Shape) -> Counter[str]:
    n = shape.ce + shape.jq + shape.jd
    return Counter({"apply": {"create": n}, "reapply": {"noop": n}, "delete": {"delete": n}}[phase])


def noop_targets(result: PhaseResult, shape: Shape) -> list[tuple[str, int, int, bool]]:
    """(what, measured, limit, holds) for the no-op re-apply targets."""
    c = result.calls
    rows = [
        ("write calls", result.writes, 0),
        (
            "batch:DescribeComputeEnvironments",
            c["batch:DescribeComputeEnvironments"],
            math.ceil(shape.ce / PAGE),
        ),
        ("batch:DescribeJobQueues", c["batch:DescribeJobQueues"], math.ceil(shape.jq / PAGE)),
        ("batch:DescribeJobDefinitions", c["batch:DescribeJobDefinitions"], shape.jd),
    ]
    return [(what, got, limit, got <= limit) for what, got, limit in rows]


# -- output -------------------------------------------------------------------------------------


def out(line: str = "") -> None:
    print(line, flush=True)


def per_resource(key: str, n: int, shape: Shape) -> str:
    service, operation = key.split(":", 1)
    if service != "batch":
        return ""
    for fragment, attr in KIND_OF_OPERATION.items():
        if operation.endswith(fragment) or operation.endswith(fragment + "s"):
            count = getattr(shape, attr)
            return f"{n / count:5.2f} per {attr.upper()}"
    return ""


def print_phase(r: PhaseResult, shape: Shape, max_rps: float) -> None:
    acts = ", ".join(f"{n} {v}" for v, n in sorted(r.actions.items()))
    out(f"  phase {r.phase}: plan {acts}")
    for key, n in sorted(r.calls.items()):
        kind = "write" if CallStats.is_write(key) else "read"
        out(f"    {key:<38} {n:>6}  {kind:<5}  {per_resource(key, n, shape)}".rstrip())
    floor = ""
    if max_rps > 0:  # the bucket starts full (burst = max(1, rate)), then refills at the rate
        floor = f"; rate-budget floor {max(0.0, r.total - max(1.0, max_rps)) / max_rps:.1f}s"
    out(f"    total calls {r.total}, write calls {r.writes}")
    out(
        f"    wall {r.wall_s:.2f}s (plan {r.plan_s:.2f}s + execute {r.exec_s:.2f}s)"
        f"{floor}; {r.total / r.wall_s:.1f} calls/s"
    )
    traced = (
        "tracemalloc off"
        if r.trace_peak_mib is None
        else f"tracemalloc peak {r.trace_peak_mib:.1f} MiB "
        f"(+{r.trace_delta_mib:.1f} MiB over the phase start)"
    )
    out(f"    memory: {traced}; ru_maxrss {r.maxrss_mib:.0f} MiB (process, so far)")
    for line in r.problems + r.failed:
        out(f"    PROBLEM {line}")


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table(results: list[PhaseResult], verdicts: dict[int, bool]) -> list[str]:
    lines = [
        "| N | phase | calls | writes | wall s | plan s | exec s "
        "| tracemalloc peak MiB | ru_maxrss MiB | ok |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = not (r.problems or r.failed)
        if r.phase == "reapply":
            ok = ok and verdicts.get(r.size, False)
        lines.append(
            f"| {r.size} | {r.phase} | {r.total} | {r.writes} | {r.wall_s:.2f} | "
            f"{r.plan_s:.2f} | {r.exec_s:.2f} | {_mib(r.trace_peak_mib)} | "
            f"{r.maxrss_mib:.0f} | {'yes' if ok else 'NO'} |"
        )
    return lines


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        default="10,100,300",
        help="comma-separated stack sizes (resources per stack); default 10,100,300",
    )
    p.add_argument(
        "--max-rps",
        type=float,
        default=DEFAULT_MAX_RPS,
        help=f"client-side API call budget per second (default {DEFAULT_MAX_RPS:g}, the CLI's "
        "default); 0 disables it",
    )
    p.add_argument("--parallelism", type=int, default=8, help="as the CLI's --parallelism")
    p.add_argument(
        "--no-tracemalloc",
        dest="tracemalloc",
        action="store_false",
        help="do not trace allocations (tracing makes this process's Python code several times "
        "slower and its RSS larger; use it to see wall times without that overhead)",
    )
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes takes integers separated by commas, e.g. 10,100,300")
    if not args.sizes or min(args.sizes) < 3:
        p.error("--sizes: each stack needs at least 3 resources (one of each kind)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BATCH"):
        os.environ.pop(var, None)
    rps = "disabled (0)" if args.max_rps <= 0 else f"{args.max_rps:g} calls/s"
    out(
        f"bench_stack: sizes {','.join(map(str, args.sizes))}; client-side rate budget (max-rps) "
        f"{rps}; parallelism {args.parallelism}; stack {STACK!r}; region {REGION}"
    )
    tracing = "on for all phases" if args.tracemalloc else "off"
    out(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; tracemalloc {tracing}")
    out(f"ru_maxrss after imports, before any phase: {_maxrss_mib():.0f} MiB")
    results: list[PhaseResult] = []
    verdicts: dict[int, bool] = {}
    started = time.perf_counter()
    if args.tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        server = MotoServer(tmp)
        out(f"moto server: pid {server.proc.pid} at {server.endpoint} (separate process)")
        try:
            for size in args.sizes:
                shape = Shape.of(size)
                path = Path(tmp) / f"stack-{size}.yaml"
                path.write_text(manifest_text(shape))
                t = time.perf_counter()
                server.fresh_account()
                out()
                out(
                    f"== N={size}: {shape.ce} compute environments, {shape.jq} job queues, "
                    f"{shape.jd} job definitions (account reset and seeded in "
                    f"{time.perf_counter() - t:.2f}s)"
                )
                for phase in ("apply", "reapply", "delete"):
                    r = run_phase(
                        phase, size, str(path), server.endpoint, args.max_rps, args.parallelism
                    )
                    want = expected_actions(phase, shape)
                    if r.actions != want:
                        r.problems.append(f"plan was {dict(r.actions)}, expected {dict(want)}")
                    results.append(r)
                    print_phase(r, shape, args.max_rps)
                    if phase == "reapply":
                        checks = noop_targets(r, shape)
                        verdicts[size] = all(ok for *_, ok in checks) and not r.problems
                        out("    targets for a no-op re-apply:")
                        for what, got, limit, ok in checks:
                            out(f"      {'ok  ' if ok else 'MISS'} {what}: {got} <= {limit}")
                        other = {
                            k: n
                            for k, n in r.calls.items()
                            if not k.startswith(
                                (
                                    "batch:DescribeComputeEnvironments",
                                    "batch:DescribeJobQueues",
                                    "batch:DescribeJobDefinitions",
                                )
                            )
                        }
                        if other:
                            out(
                                "      (not covered by the targets: "
                                + ", ".join(f"{k} {n}" for k, n in sorted(other.items()))
                                + ")"
                            )
                rss = server.rss_mib()
                if rss is not None:
                    out(f"  moto server peak RSS so far: {rss:.0f} MiB")
        finally:
            server.stop()
    tracemalloc.stop()
    elapsed = time.perf_counter() - started
    out()
    out(f"## Summary (max-rps {rps}, parallelism {args.parallelism})")
    out()
    for line in markdown_table(results, verdicts):
        out(line)
    out()
    all_ok = all(verdicts.values()) and not any(r.problems or r.failed for r in results)
    for size in args.sizes:
        out(f"N={size}: no-op re-apply targets {'hold' if verdicts.get(size) else 'DO NOT hold'}")
    out(f"total run time {elapsed:.1f}s; {'all phases ok' if all_ok else 'SOME PHASES FAILED'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
