"""Benchmark: is an apply's wall time bound by the depth of its dependency graph, not by N?

    python benchmarks/bench_depth.py                  # 50 ms a call, the CLI's default budget
    python benchmarks/bench_depth.py --latency 0.05 --max-rps 40 --sizes 30,100,300

Every call goes through benchmarks/call_proxy.py, which holds it `--latency` seconds (in the
call's own thread, as a network would), to the moto server of bench_stack.py. Each stack is
applied to a fresh account through the engine (`plan_apply` then `execute`, as
`reconciler apply` does) and the execute phase's wall time is compared with the issue's
bound, 1.5 x (depth x wait + writes / budget):

- depth: the longest chain of resources that wait for one another: 1 for job definitions
  alone (registered and ACTIVE at once), 2 for environments and their queues (a queue is
  created once its environments are VALID);
- wait: what one level costs, measured: the execute time of a stack of one compute
  environment (its create call, then the batched status poll that sees it VALID);
- writes / budget: the time the client-side rate budget (`--max-rps`) needs for the writes,
  less the burst the bucket starts with.

Stacks: `jd-only` (N job definitions, depth 1) and `ce-jq-jd` (bench_stack.py's shape: N/10
environments, N/10 queues, the rest job definitions; depth 2), for each size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peer import Proxy
from bench_stack import REGION, STACK, MotoServer, Shape, manifest_text

from reconciler.aws.clients import DEFAULT_MAX_RPS, Aws, AwsConfig, CallStats
from reconciler.engine.apply import execute
from reconciler.engine.context import Context, Options
from reconciler.engine.planner import plan_apply
from reconciler.manifests import load_paths, validate_documents
from tests.stacks import ce, jd, stack


def context(endpoint: str, max_rps: float, parallelism: int) -> Context:
    aws = Aws(
        AwsConfig(
            region=REGION,
            endpoint_url=endpoint,
            max_rps=max_rps,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
    )
    return Context(aws=aws, options=Options(stack=STACK, parallelism=parallelism))


def apply(path: Path, endpoint: str, max_rps: float, parallelism: int) -> tuple[float, Counter]:
    """Execute wall time and calls of one apply (planning not timed)."""
    ctx = context(endpoint, max_rps, parallelism)
    plan = plan_apply(ctx, validate_documents(load_paths([str(path)])))
    before = Counter(ctx.aws.stats.calls)
    started = time.perf_counter()
    outcomes = execute(ctx, plan)
    wall = time.perf_counter() - started
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"{path.name}: {len(failed)} actions failed: {failed[0].detail}")
    return wall, Counter(ctx.aws.stats.calls) - before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="30,100,300")
    p.add_argument("--latency", type=float, default=0.05, help="seconds added to every call")
    p.add_argument("--max-rps", type=float, default=DEFAULT_MAX_RPS)
    p.add_argument("--parallelism", type=int, default=8)
    args = p.parse_args(argv)
    budget = args.max_rps
    rows = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        server = MotoServer(tmp)
        proxy = Proxy(server.endpoint, args.latency, tmp)
        try:
            one = Path(tmp) / "one-ce.yaml"
            one.write_text(stack(ce("ce-one")))
            server.fresh_account()
            wait, _ = apply(one, proxy.endpoint, budget, args.parallelism)
            print(
                f"latency {args.latency * 1000:.0f} ms a call, budget {budget:g} calls/s, "
                f"parallelism {args.parallelism}; one level's wait (one environment): {wait:.2f}s"
            )
            for n in (int(x) for x in args.sizes.split(",")):
                shape = Shape.of(n)
                stacks = {
                    "jd-only": (stack(*(jd(f"jd-{i:03d}") for i in range(n))), 1),
                    "ce-jq-jd": (manifest_text(shape), 2),
                }
                for name, (text, depth) in stacks.items():
                    path = Path(tmp) / f"{name}-{n}.yaml"
                    path.write_text(text)
                    server.fresh_account()
                    wall, calls = apply(path, proxy.endpoint, budget, args.parallelism)
                    writes = sum(c for k, c in calls.items() if CallStats.is_write(k))
                    total = sum(calls.values())
                    floor = max(0.0, (total - budget) / budget) if budget else 0.0
                    bound = 1.5 * (depth * wait + floor)
                    holds = wall <= bound
                    ok = ok and holds
                    print(
                        f"  {name:9} N={n:<4} depth {depth}: execute {wall:6.2f}s, "
                        f"{total} calls ({writes} writes); bound 1.5 x ({depth} x {wait:.2f} + "
                        f"{floor:.2f}) = {bound:.2f}s {'ok' if holds else 'EXCEEDED'}"
                    )
                    rows.append((name, n, depth, total, writes, wall, floor, bound, holds))
        finally:
            proxy.stop()
            server.stop()
    print()
    print("| stack | N | depth | calls | writes | execute s | budget floor s | bound s | within |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, n, depth, total, writes, wall, floor, bound, holds in rows:
        print(
            f"| {name} | {n} | {depth} | {total} | {writes} | {wall:.2f} | {floor:.2f} | "
            f"{bound:.2f} | {'yes' if holds else 'no'} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
