"""Benchmark: the reconciler and batchbeagle 0.2.0 side by side, on the same stacks and server.

    python benchmarks/bench_peer.py [--sizes 3,30,300] [--latency 0,0.05] [--max-rps 20]

batchbeagle (https://github.com/caltechads/batchbeagle) is the peer issue #9 compares with: a
CLI that reads one YAML file of compute environments, queues and job definitions and creates or
updates them all (`beagle -f stack.yml assemble`) or tears them down (`teardown`). This script
installs it into its own throwaway virtualenv (`benchmarks/.peer/venv`, git-ignored; see
`ensure_peer`) and runs both tools as the command lines a user runs, each in its own process:

  apply     reconciler apply -f stack.yaml      beagle -f stack.yml assemble
  reapply   the same again, nothing changed     the same again, nothing changed
  delete    reconciler delete -f stack.yaml     beagle -f stack.yml teardown

For each stack size N (N/10 compute environments, N/10 queues, the rest job definitions, as
`bench_stack.py` builds them: 30, 30 and 240 at N=300) and each added latency, each tool gets a
fresh account on the same moto server (`python -m reconciler.sandbox.server`, reset and seeded
as a new sandbox) and runs the three phases in order. Both tools reach the server through one
counting proxy (`call_proxy.py`), which names every request `service:Operation` by the same
rule for both and, with `--latency`, holds each request that long before forwarding it. A write
is any call whose operation does not start with Describe, List or Get (`CallStats.is_write`).

Per tool and phase it prints the calls and writes (from the proxy), the wall time of the
process, its peak RSS (VmHWM, written by `peak_rss.py` as the process exits: the process's own,
interpreter included), its CPU time (`wait4`), and the ratio reconciler / batchbeagle of each.
After every phase it checks the account through moto directly (not counted): every compute
environment and queue VALID and every job definition ACTIVE after apply and reapply, none of
them left after delete. The reconciler's own counter (`--stats`) is compared with the proxy's
count as a check on the counting.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # bench_stack, wherever we run from
from bench_stack import REGION, MotoServer, Shape, manifest_text, out  # noqa: E402

from reconciler.aws.clients import DEFAULT_MAX_RPS, CallStats  # noqa: E402
from reconciler.sandbox import manager  # noqa: E402

PEER = "batchbeagle==0.2.0"
PEER_DIR = HERE / ".peer"
PEER_VENV = PEER_DIR / "venv"
PEER_WRAPPER = HERE / "peer_beagle.py"
PEAK_RSS = HERE / "peak_rss.py"  # runs a tool and writes its own peak RSS (see its docstring)
STACK = "bench"
TOOLS = ("reconciler", "beagle")
PHASES = ("apply", "reapply", "delete")
BEAGLE_VERB = {"apply": "assemble", "reapply": "assemble", "delete": "teardown"}
MIB = 1024 * 1024


# -- the peer's virtualenv ----------------------------------------------------------------------


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def ensure_peer() -> str:
    """Installs batchbeagle 0.2.0 into benchmarks/.peer/venv if it is not there; its version.

    `--no-deps` because batchbeagle pins PyYAML 3.12, which does not build on Python 3.11; its
    other dependencies (boto3, click, PyYAML) are installed first, unpinned. `peer_beagle.py`
    makes up for the PyYAML 6 API change.
    """
    probe = "import importlib.metadata as m; print(m.version('batchbeagle'))"
    if peer_python().exists():
        done = subprocess.run([peer_python(), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
    out(f"installing {PEER} into {PEER_VENV} (once) ...")
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    PEER_DIR.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(peer_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "boto3", "click", "pyyaml"], check=True)
    subprocess.run([*pip, "--no-deps", PEER], check=True)
    done = subprocess.run([peer_python(), "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.strip()


# -- the counting proxy -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    """`call_proxy.py` in its own process, between both tools and the moto server."""

    def __init__(self, upstream: str, latency: float, workdir: str):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(workdir) / f"proxy-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "call_proxy.py"),
                *("--upstream", upstream, "--port", str(self.port), "--latency", str(latency)),
            ],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.counts(reset=True)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"the proxy did not start: see {self.log.name}") from None
                time.sleep(0.05)

    def counts(self, reset: bool = False) -> Counter[str]:
        """The calls counted since the last reset (and resets them, if asked)."""
        path = "/__proxy/reset" if reset else "/__proxy/counts"
        req = urllib.request.Request(self.endpoint + path, data=b"" if reset else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Counter(json.loads(resp.read())["calls"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


# -- the two stacks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """What the reconciler looks up and a batchbeagle stack must spell out: IDs and ARNs."""

    account_id: str
    subnets: list[str]
    security_groups: list[str]

    def role(self, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account_id}:role{path}{name}"

    def instance_profile(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:instance-profile/{name}"


def look_up(endpoint: str) -> Account:
    """The default VPC's subnets and security group, as `subnets: [{defaultVpc: true}]` finds
    them. Straight to moto, so not counted."""
    ec2, sts = client("ec2", endpoint), client("sts", endpoint)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    by_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    subnets = sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=by_vpc)["Subnets"])
    groups = ec2.describe_security_groups(
        Filters=[*by_vpc, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return Account(sts.get_caller_identity()["Account"], subnets, [g["GroupId"] for g in groups])


def beagle_stack(shape: Shape, account: Account) -> dict[str, Any]:
    """The stack `manifest_text(shape)` declares, in batchbeagle's format.

    Field for field what the reconciler sends, where batchbeagle has the field: it has no
    allocationStrategy (so its SPOT environments name the spot fleet role, which AWS requires
    without one), no tags and no revision history; roles, subnets and security groups are the
    IDs and ARNs the reconciler looks up.
    """
    envs = [
        {
            "name": f"ce-{i:03d}",
            "type": "MANAGED",
            "state": "ENABLED",
            "serviceRole": "",  # the service-linked role, as the reconciler's manifests
            "compute_resources": {
                "type": "SPOT",
                "minvCpus": 0,
                "maxvCpus": 16 + i % 4 * 16,
                "instanceTypes": ["optimal"],
                "instanceRole": account.instance_profile("ecsInstanceRole"),
                "subnets": account.subnets,
                "securityGroupIds": account.security_groups,
                "spotIamFleetRole": account.role("AmazonEC2SpotFleetRole"),
            },
        }
        for i in range(shape.ce)
    ]
    queues = []
    for i in range(shape.jq):
        width = min(1 + i % 3, shape.ce)  # as bench_stack.manifest_text
        queues.append(
            {
                "name": f"jq-{i:03d}",
                "state": "ENABLED",
                "priority": i % 1000,
                "compute_environments": [
                    {"name": f"ce-{(i + j) % shape.ce:03d}", "order": j + 1} for j in range(width)
                ],
            }
        )
    definitions = [
        {
            "name": f"jd-{i:03d}",
            "container": {
                "image": f"busybox:1.{i % 37}",
                "vcpus": 1,
                "memory": 512,
                "jobRoleArn": account.role("BatchJobRole"),
                "environment": [
                    {"name": "STRESS_BUCKET", "value": "s3://bucket"},
                    {"name": "MODE", "value": "fast"},
                ],
            },
            "retryStrategy": {"attempts": 2},
        }
        for i in range(shape.jd)
    ]
    return {"compute_environments": envs, "queues": queues, "job_definitions": definitions}


# -- checking the account -----------------------------------------------------------------------


def client(service: str, endpoint: str) -> Any:
    import boto3  # this process's own clients: only for look-ups and checks, never counted

    return boto3.session.Session(region_name=REGION, **manager.CREDENTIALS).client(
        service, endpoint_url=endpoint
    )


def account_problems(endpoint: str, shape: Shape, phase: str) -> list[str]:
    """What is wrong with the account after a phase (straight to moto: not counted)."""
    batch = client("batch", endpoint)
    envs = {
        e["computeEnvironmentName"]: e
        for e in batch.describe_compute_environments()["computeEnvironments"]
        if e["computeEnvironmentName"].startswith("ce-") and e.get("status") != "DELETED"
    }
    queues = {
        q["jobQueueName"]: q
        for q in batch.describe_job_queues()["jobQueues"]
        if q["jobQueueName"].startswith("jq-") and q.get("status") != "DELETED"
    }
    active = Counter(
        d["jobDefinitionName"]
        for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
        if d["jobDefinitionName"].startswith("jd-")
    )
    if phase == "delete":
        left = [*envs, *queues, *active]
        return [f"left after delete: {', '.join(sorted(left)[:5])} ..."] if left else []
    problems = []
    for what, found, want in (
        ("compute environments", envs, shape.ce),
        ("queues", queues, shape.jq),
        ("job definitions", active, shape.jd),
    ):
        if len(found) != want:
            problems.append(f"{len(found)} {what}, expected {want}")
    problems += [f"{n}: {e.get('status')}" for n, e in envs.items() if e.get("status") != "VALID"]
    problems += [f"{n}: {q.get('status')}" for n, q in queues.items() if q.get("status") != "VALID"]
    return problems


# -- one run of one tool ------------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    size: int
    latency: float
    phase: str
    calls: Counter[str]
    wall_s: float
    cpu_s: float
    maxrss_mib: float
    exit_code: int
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if CallStats.is_write(k))


def tool_env(tool: str, home: Path, endpoint: str) -> dict[str, str]:
    """A clean AWS environment: the sandbox's dummy keys, no profile and no user config files.

    batchbeagle makes its clients with `boto3.client("batch")` and no endpoint, so it gets the
    proxy from AWS_ENDPOINT_URL, which boto3 reads; the reconciler gets `--endpoint-url`.
    Byte-code caching is left on (a real install has its .pyc files), whatever this shell says."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MOTO_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AWS_ACCESS_KEY_ID=manager.CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=manager.CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(home / "aws-config"),  # absent: nothing is read from ~/.aws
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if tool == "beagle":
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def command(
    tool: str, phase: str, stack_file: Path, endpoint: str, max_rps: float, peak_file: Path
) -> list[str]:
    """The tool's command line, run through peak_rss.py, which writes its peak to peak_file."""
    if tool == "beagle":
        wrapper = [str(peer_python()), str(PEAK_RSS), str(peak_file), str(PEER_WRAPPER)]
        return [*wrapper, "-f", str(stack_file), BEAGLE_VERB[phase]]
    verb = "delete" if phase == "delete" else "apply"
    return [
        *(sys.executable, str(PEAK_RSS), str(peak_file), "-m", "reconciler"),
        *(verb, "-f", str(stack_file)),
        *(["--yes"] if verb == "delete" else []),  # no terminal: a delete must be confirmed
        *("--endpoint-url", endpoint, "--region", REGION, "--stack", STACK),
        *("--max-rps", str(max_rps), "--stats"),
    ]


def run_tool(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[int, Any, float]:
    """Runs one command line; its exit code, its own rusage (wait4) and its wall time.

    The rusage's CPU times are the process's own; its ru_maxrss is not (see peak_rss.py)."""
    with open(log, "wb") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, usage, wall


def stats_total(log: Path) -> int | None:
    """The `--stats` total the reconciler printed: `API calls: 123 (45 writes)`."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("API calls: "):
            return int(line.split()[2])
    return None


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# -- output -------------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    if theirs == 0:
        return "-" if ours == 0 else "inf"
    return f"{ours / theirs:.2f}"


def print_pair(ours: Run, peer: Run) -> None:
    out(f"  {ours.phase}:")
    for r in (ours, peer):
        ops = ", ".join(f"{k} {n}" for k, n in sorted(r.calls.items()))
        out(
            f"    {r.tool:<10} {r.total:>5} calls {r.writes:>5} writes  {r.wall_s:7.2f}s wall "
            f"{r.cpu_s:6.2f}s cpu  {r.maxrss_mib:5.0f} MiB peak RSS  exit {r.exit_code}"
        )
        out(f"               {ops}")
        for p in r.problems:
            out(f"               PROBLEM {p}")
    out(
        f"    reconciler / beagle: calls {ratio(ours.total, peer.total)}, writes "
        f"{ratio(ours.writes, peer.writes)}, wall {ratio(ours.wall_s, peer.wall_s)}, "
        f"peak RSS {ratio(ours.maxrss_mib, peer.maxrss_mib)}"
    )


def markdown_table(pairs: list[tuple[Run, Run]]) -> list[str]:
    lines = [
        "| N | latency | phase | calls | writes | wall s | CPU s | peak RSS MiB "
        "| ratio calls | ratio writes | ratio wall | ratio RSS | ok |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for ours, peer in pairs:
        ok = not (ours.problems or peer.problems or ours.exit_code or peer.exit_code)
        lines.append(
            f"| {ours.size} | {ours.latency * 1000:.0f} ms | {ours.phase} "
            f"| {ours.total} / {peer.total} | {ours.writes} / {peer.writes} "
            f"| {ours.wall_s:.2f} / {peer.wall_s:.2f} | {ours.cpu_s:.2f} / {peer.cpu_s:.2f} "
            f"| {ours.maxrss_mib:.0f} / {peer.maxrss_mib:.0f} "
            f"| {ratio(ours.total, peer.total)} | {ratio(ours.writes, peer.writes)} "
            f"| {ratio(ours.wall_s, peer.wall_s)} | {ratio(ours.maxrss_mib, peer.maxrss_mib)} "
            f"| {'yes' if ok else 'NO'} |"
        )
    return lines


# -- main ---------------------------------------------------------------------------------------


@contextmanager
def proxy_for(upstream: str, latency: float, workdir: str) -> Iterator[Proxy]:
    proxy = Proxy(upstream, latency, workdir)
    try:
        yield proxy
    finally:
        proxy.stop()


def run_scenario(
    tool: str,
    shape: Shape,
    size: int,
    latency: float,
    server: MotoServer,
    proxy: Proxy,
    work: Path,
    max_rps: float,
) -> list[Run]:
    """A fresh account, then apply, reapply and delete with one tool."""
    server.fresh_account()
    if tool == "beagle":
        import yaml  # PyYAML comes with moto; it writes the peer's plain YAML file

        stack_file = work / f"beagle-{size}.yml"
        stack = beagle_stack(shape, look_up(server.endpoint))
        stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    else:
        stack_file = work / f"reconciler-{size}.yaml"
        stack_file.write_text(manifest_text(shape))
    env = tool_env(tool, work, proxy.endpoint)
    runs = []
    for phase in PHASES:
        log = work / f"{tool}-{size}-{int(latency * 1000)}ms-{phase}.log"
        peak_file = log.with_suffix(".peak")
        peak_file.unlink(missing_ok=True)
        proxy.counts(reset=True)
        code, usage, wall = run_tool(
            command(tool, phase, stack_file, proxy.endpoint, max_rps, peak_file), env, work, log
        )
        run = Run(
            tool=tool,
            size=size,
            latency=latency,
            phase=phase,
            calls=proxy.counts(),
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            maxrss_mib=int(peak_file.read_text()) / 1024 if peak_file.exists() else 0.0,
            exit_code=code,
        )
        if code != 0:
            run.problems.append(f"exit code {code}; the end of its output:\n{tail(log)}")
        run.problems += account_problems(server.endpoint, shape, phase)
        if tool == "reconciler":
            counted = stats_total(log)
            if counted != run.total:
                run.problems.append(f"--stats counted {counted} calls, the proxy {run.total}")
        runs.append(run)
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="3,30,300", help="stack sizes, comma-separated")
    p.add_argument(
        "--latency",
        default="0,0.05",
        help="seconds the proxy adds to every call, comma-separated (default 0 and 0.05)",
    )
    p.add_argument(
        "--max-rps",
        type=float,
        default=DEFAULT_MAX_RPS,
        help=f"the reconciler's --max-rps (default {DEFAULT_MAX_RPS:g}, the CLI's default; "
        "batchbeagle has no budget); 0 disables it",
    )
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        args.latency = [float(s) for s in args.latency.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes takes integers and --latency seconds, separated by commas")
    if not args.sizes or min(args.sizes) < 3:
        p.error("--sizes: each stack needs at least 3 resources (one of each kind)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = ensure_peer()
    rps = "disabled (0)" if args.max_rps <= 0 else f"{args.max_rps:g} calls/s"
    out(
        f"bench_peer: reconciler vs batchbeagle {version}; sizes "
        f"{','.join(map(str, args.sizes))}; latency "
        f"{', '.join(f'{s * 1000:g} ms' for s in args.latency)} per call; reconciler max-rps {rps}"
    )
    out(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    pairs: list[tuple[Run, Run]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        work = Path(tmp)
        server = MotoServer(tmp)
        out(f"moto server: pid {server.proc.pid} at {server.endpoint} (separate process)")
        try:
            for latency in args.latency:
                with proxy_for(server.endpoint, latency, tmp) as proxy:
                    for size in args.sizes:
                        shape = Shape.of(size)
                        out()
                        out(
                            f"== N={size} ({shape.ce} compute environments, {shape.jq} queues, "
                            f"{shape.jd} job definitions), {latency * 1000:g} ms per call"
                        )
                        results = {
                            tool: run_scenario(
                                tool, shape, size, latency, server, proxy, work, args.max_rps
                            )
                            for tool in TOOLS
                        }
                        for ours, peer in zip(
                            results["reconciler"], results["beagle"], strict=True
                        ):
                            print_pair(ours, peer)
                            pairs.append((ours, peer))
        finally:
            server.stop()
    out()
    out(
        f"## Summary (reconciler max-rps {rps}; each cell is reconciler / batchbeagle, "
        "and so is each ratio)"
    )
    out()
    for line in markdown_table(pairs):
        out(line)
    failed = [p for pair in pairs for p in pair if p.problems or p.exit_code]
    out()
    out(
        f"total run time {time.perf_counter() - started:.1f}s; "
        f"{'all runs ok' if not failed else f'{len(failed)} RUNS HAD PROBLEMS'}"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
