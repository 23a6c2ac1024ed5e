"""Benchmark: the reads of a no-op re-apply against what else the account holds.

    python benchmarks/bench_reads.py                      # 300 resources; 0, 760, 4,760 others
    python benchmarks/bench_reads.py --others 0,760 --size 300
    python benchmarks/bench_reads.py --others 0 --network ids

For each count of other teams' job definitions (registered with plain boto3, untagged by us)
it applies the 300-resource stack of bench_stack.py, then plans the same stack again (a no-op)
and prints the calls by operation, and what the two ways of reading the stack's job
definitions cost:

- by tags (what the reconciler does): the Resource Groups Tagging API, 100 ARNs a page, then
  DescribeJobDefinitions by ARN, 100 a call, with each name's next revision asked for too
  (`name:revision+1`: a revision registered by hand, untagged, or one the tagging index does
  not show yet);
- by listing: DescribeJobDefinitions with status ACTIVE, 100 a page, whoever registered them
  (what the pages would be on AWS: moto ignores maxResults, so they are counted from what the
  account holds).

The environments find their subnets and security group with `{defaultVpc: true}` (two EC2
reads a plan, shared by every environment); with `--network ids` they name them by ID instead,
as batchbeagle's stack of bench_peer.py must (looked up first, uncounted).

It also measures the extra reads `Kind.tracks_use` causes: a delete plan of one role reads
every job definition the stack owns (to see which still use it), and how many calls that is.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peer import look_up
from bench_stack import REGION, STACK, MotoServer, Shape, manifest_text

from reconciler.aws.clients import Aws, AwsConfig
from reconciler.engine.apply import execute
from reconciler.engine.context import Context, Options
from reconciler.engine.planner import plan_apply, plan_delete
from reconciler.manifests import load_paths, validate_documents
from reconciler.manifests.loader import load_text

CONTAINER = {"image": "busybox", "vcpus": 1, "memory": 128}
ROLE = """apiVersion: reconciler.io/v1alpha1
kind: Role
metadata: {name: BatchJobRole}
spec: {trustedServices: [ecs-tasks.amazonaws.com]}
"""


def context(endpoint: str) -> Context:
    aws = Aws(
        AwsConfig(
            region=REGION,
            endpoint_url=endpoint,
            max_rps=0,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
    )
    return Context(aws=aws, options=Options(stack=STACK))


def register_others(ctx: Context, n: int) -> None:
    batch = ctx.aws.client("batch")
    for i in range(n):
        batch.register_job_definition(
            jobDefinitionName=f"other-{i:04d}", type="container", containerProperties=CONTAINER
        )


def jd_reads(calls: Counter[str]) -> int:
    return calls["resourcegroupstaggingapi:GetResources"] + calls["batch:DescribeJobDefinitions"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--others", default="0,760,4760")
    p.add_argument(
        "--network",
        choices=("lookup", "ids"),
        default="lookup",
        help="subnets and security groups by {defaultVpc: true} (default) or by ID",
    )
    args = p.parse_args(argv)
    shape = Shape.of(args.size)
    rows = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.yaml"
        server = MotoServer(tmp)
        try:
            for others in (int(x) for x in args.others.split(",")):
                server.fresh_account()
                network = None
                if args.network == "ids":
                    account = look_up(server.endpoint)
                    network = (account.subnets, account.security_groups)
                path.write_text(manifest_text(shape, network))
                setup = context(server.endpoint)
                register_others(setup, others)
                desired = validate_documents(load_paths([str(path)]))
                execute(setup, plan_apply(setup, desired))
                ctx = context(server.endpoint)
                plan = plan_apply(ctx, validate_documents(load_paths([str(path)])))
                calls = Counter(ctx.aws.stats.calls)
                noop = all(a.verb.name.lower() == "noop" for a in plan.actions)
                writes = sum(n for k, n in calls.items() if ctx.aws.stats.is_write(k))
                ok = ok and noop and writes == 0
                active = others + shape.jd
                listing = math.ceil(active / 100)
                users = context(server.endpoint)
                role = validate_documents(load_text(ROLE, "role.yaml"))
                plan_delete(users, role)
                extra = Counter(users.aws.stats.calls)
                print(
                    f"== {shape.jd} job definitions of ours, {others} of others; network by "
                    f"{args.network}"
                )
                for key in sorted(calls):
                    print(f"    {key:<42} {calls[key]:>4}")
                total = sum(calls.values())
                print(f"    total {total}, writes {writes}, every action a no-op: {noop}")
                print(
                    f"    job definitions by tags: {jd_reads(calls)} calls; "
                    f"by an ACTIVE listing: {listing} pages"
                )
                print(
                    f"    delete plan of one role (tracks_use reads the stack's definitions): "
                    f"{dict(sorted(extra.items()))}"
                )
                rows.append((others, sum(calls.values()), jd_reads(calls), listing, extra))
        finally:
            server.stop()
    print()
    print(
        "| others | no-op calls | job definition reads by tags | by ACTIVE listing | "
        "delete plan of one role: calls |"
    )
    print("|---:|---:|---:|---:|---:|")
    for others, total, tags, listing, extra in rows:
        print(f"| {others:,} | {total} | {tags} | {listing} | {sum(extra.values())} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
