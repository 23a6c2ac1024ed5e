"""Benchmark: submitting, watching and re-applying big pipelines against a moto server.

    python benchmarks/bench_pipeline.py [--tasks 1000] [--array 10000] [--max-rps 20]

Two scenarios, each on a fresh account, each with one compute environment, one job queue and
the job definitions (`tests.stacks.infra()`, as in the integration tests):

  dag     one Pipeline of `--tasks` tasks in `--layers` layers (10 layers of 100 by default),
          each task after the first layer depending on 1-3 tasks of the layer before, plus a
          final task depending on every task of the last layer (100 > 20 dependencies, so
          barrier jobs are submitted too)
  array   one Pipeline of a leader and a single `--array`-child array task depending on it

and, for each, these phases through the engine itself, as `reconciler apply --wait` would run
them (one Context for apply, status and follow; a new one for the re-apply):

  apply     validate -> plan_apply -> execute: the infrastructure is created and the run
            submitted; the SubmitJob calls, the total calls and the wall time are reported
  status    `watch.poll` a few times over `watch_targets(ctx, plan)`: DescribeJobs calls per
            poll, against the target "the status of the whole run in at most
            ceil(top-level jobs / 100) DescribeJobs calls per poll, whatever the array sizes"
  follow    `watch.follow` (the CLI's back-off, a no-op log) until every job has finished
  reapply   validate -> plan_apply again: must plan no SubmitJob and no write at all

Every phase reports its API calls by operation (CallStats), its wall time, the tracemalloc peak
and the process's ru_maxrss; each scenario ends with the moto server's peak RSS. A markdown
summary table closes the run.

The moto server is the one `bench_stack.py` uses (`python -m reconciler.sandbox.server` in a
separate process, reset and seeded by `reconciler.sandbox.manager.prepare_new` in a child
process before each scenario). Its jobs move through Batch's states at the pace of
RECONCILER_SANDBOX_STEP_SECONDS / RECONCILER_SANDBOX_JOB_SECONDS, which this script sets in the
server's environment from --step-seconds / --job-seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_stack, wherever we run from
from bench_stack import MIB, PAGE, REGION, MotoServer, _maxrss_mib, _mib, out

from reconciler.aws.clients import DEFAULT_MAX_RPS, Aws, AwsConfig, CallStats
from reconciler.engine.apply import Outcome, execute
from reconciler.engine.context import Context, Options
from reconciler.engine.planner import plan_apply
from reconciler.engine.runs import watch_targets
from reconciler.engine.types import Plan
from reconciler.manifests import load_paths, validate_documents
from reconciler.manifests.validate import ResourceSet
from reconciler.runs import watch
from reconciler.runs.state import STATES, counts
from reconciler.runs.submit import expand
from reconciler.runs.watch import Watched
from tests.stacks import infra, pipeline, stack

STACK = "bench"
STEP_ENV = "RECONCILER_SANDBOX_STEP_SECONDS"  # read by the server (reconciler.sandbox.config)
RUN_ENV = "RECONCILER_SANDBOX_JOB_SECONDS"
DESCRIBE_JOBS = "batch:DescribeJobs"
SUBMIT_JOB = "batch:SubmitJob"


# -- the scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    manifest: str


def dag_manifest(name: str, tasks: int, layers: int, seed: int = 7) -> str:
    """`tasks` tasks in `layers` layers, each after 1-3 of the layer before, then a gather."""
    rnd = random.Random(seed)
    width = math.ceil(tasks / layers)
    grid: list[list[str]] = []
    lines = []
    for layer in range(layers):
        count = min(width, tasks - layer * width)
        if count <= 0:
            break
        names = [f"L{layer:02d}-t{i:03d}" for i in range(count)]
        for task in names:
            if not grid:
                lines.append(f"    - {{name: {task}, jobDefinition: leader}}")
                continue
            before = grid[-1]
            deps = rnd.sample(before, min(len(before), rnd.randint(1, 3)))
            wired = ", ".join(f"{{task: {d}}}" for d in deps)
            lines.append(f"    - {{name: {task}, jobDefinition: leader, dependsOn: [{wired}]}}")
        grid.append(names)
    gather = ", ".join(f"{{task: {d}}}" for d in grid[-1])
    lines.append(f"    - {{name: gather, jobDefinition: follower, dependsOn: [{gather}]}}")
    return (
        f"""
apiVersion: reconciler.io/v1alpha1
kind: Pipeline
metadata:
  name: {name}
spec:
  jobQueue: main-queue
  tasks:
"""
        + "\n".join(lines)
        + "\n"
    )


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    width = math.ceil(args.tasks / args.layers)
    return [
        Scenario(
            "dag",
            f"{args.tasks}-task DAG ({args.layers} layers of {width}, 1-3 dependencies each, "
            f"+ a final task after all {min(width, args.tasks)} of the last layer)",
            stack(infra(), dag_manifest("dag", args.tasks, args.layers)),
        ),
        Scenario(
            "array",
            f"leader + one {args.array}-child array task depending on it",
            stack(infra(), pipeline("stress", size=args.array)),  # the tests' leader/follower
        ),
    ]


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Memory:
    trace_peak_mib: float | None  # None when tracemalloc is off
    trace_delta_mib: float | None
    maxrss_mib: float

    def text(self) -> str:
        traced = (
            "tracemalloc off"
            if self.trace_peak_mib is None
            else f"tracemalloc peak {self.trace_peak_mib:.1f} MiB "
            f"(+{self.trace_delta_mib:.1f} MiB over the phase start)"
        )
        return f"memory: {traced}; ru_maxrss {self.maxrss_mib:.0f} MiB (process, so far)"


@contextmanager
def measured(into: dict[str, Memory], phase: str) -> Iterator[None]:
    gc.collect()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]  # (0, 0) when tracing is off
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracing = tracemalloc.is_tracing()
        into[phase] = Memory(
            peak / MIB if tracing else None,
            (peak - start) / MIB if tracing else None,
            _maxrss_mib(),
        )


class Profiler:
    """--profile: cProfile around the given phases, in this process, every thread included.

    The threads a phase starts (the executor's and the submitter's pools) get a profiler each,
    through threading.setprofile; their figures are added to the main thread's.
    """

    def __init__(self, phases: set[str], sort: str = "cumulative", top: int = 25):
        self.phases, self.sort, self.top = phases, sort, top

    @contextmanager
    def __call__(self, scenario: str, phase: str) -> Iterator[None]:
        if phase not in self.phases:
            yield
            return
        profiles = [cProfile.Profile()]
        lock = threading.Lock()

        def in_new_thread(*_: Any) -> None:
            prof = cProfile.Profile()
            with lock:
                profiles.append(prof)
            prof.enable()  # replaces this hook for the rest of the thread's life

        threading.setprofile(in_new_thread)
        profiles[0].enable()
        try:
            yield
        finally:
            profiles[0].disable()
            threading.setprofile(None)  # type: ignore[arg-type]
            buf = io.StringIO()
            stats = pstats.Stats(profiles[0], stream=buf)
            for prof in profiles[1:]:
                stats.add(prof)
            stats.strip_dirs().sort_stats(self.sort).print_stats(self.top)
            out(
                f"  [profile {scenario}/{phase}: {len(profiles)} thread(s), sorted by "
                f"{self.sort}, this process only; threads' waits count as time]"
            )
            for line in buf.getvalue().splitlines():
                if line.strip() and not line.startswith(("   Ordered by", "   List reduced")):
                    out(f"    {line.rstrip()}")


def delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)})


def writes(calls: Counter[str]) -> int:
    return sum(n for k, n in calls.items() if CallStats.is_write(k))


@dataclass
class Poll:
    calls: Counter[str]
    seconds: float
    states: Counter[str]  # every job by status, array children included


@dataclass
class Result:
    scenario: Scenario
    tasks: int = 0  # declared tasks
    top_level: int = 0  # jobs submitted: tasks and barrier jobs (array parents count once)
    barriers: int = 0
    children: int = 0  # array children, on top of the top-level jobs
    load_s: float = 0.0
    plan_s: float = 0.0
    plan_calls: Counter[str] = field(default_factory=Counter)
    plan_actions: Counter[str] = field(default_factory=Counter)
    exec_s: float = 0.0
    exec_calls: Counter[str] = field(default_factory=Counter)
    submit_action_s: float = 0.0  # the Pipeline action's own time inside execute
    targets_calls: Counter[str] = field(default_factory=Counter)  # watch_targets
    polls: list[Poll] = field(default_factory=list)
    follow_s: float = 0.0
    follow_polls: int = 0
    follow_calls: Counter[str] = field(default_factory=Counter)
    run_span_s: float | None = None  # execute's start to the last stoppedAt AWS reports
    noticed_s: float | None = None  # follow's return after the last stoppedAt
    final: Counter[str] = field(default_factory=Counter)  # top-level jobs by final status
    reapply_load_s: float = 0.0
    reapply_plan_s: float = 0.0
    reapply_calls: Counter[str] = field(default_factory=Counter)
    reapply_actions: Counter[str] = field(default_factory=Counter)
    memory: dict[str, Memory] = field(default_factory=dict)
    server_rss_mib: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def poll_limit(self) -> int:
        return math.ceil(self.top_level / PAGE)

    @property
    def describe_per_poll(self) -> int:
        return max((p.calls[DESCRIBE_JOBS] for p in self.polls), default=0)

    @property
    def status_ok(self) -> bool:
        return bool(self.polls) and all(
            p.calls[DESCRIBE_JOBS] <= self.poll_limit
            and sum(p.calls.values()) == p.calls[DESCRIBE_JOBS]
            for p in self.polls
        )

    @property
    def reapply_ok(self) -> bool:
        return (
            self.reapply_calls[SUBMIT_JOB] == 0
            and writes(self.reapply_calls) == 0
            and set(self.reapply_actions) == {"noop"}
        )


def make_context(endpoint: str, args: argparse.Namespace) -> Context:
    return Context(
        aws=Aws(
            AwsConfig(
                region=REGION,
                endpoint_url=endpoint,
                max_rps=args.max_rps,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
        ),
        options=Options(
            stack=STACK, parallelism=args.parallelism, sandbox=True, wait_timeout=args.run_timeout
        ),
    )


def load(path: Path) -> tuple[ResourceSet, float]:
    t = time.perf_counter()
    desired = validate_documents(load_paths([str(path)]))
    return desired, time.perf_counter() - t


def run_scenario(
    sc: Scenario, path: Path, server: MotoServer, args: argparse.Namespace, profile: Profiler
) -> Result:
    r = Result(sc)
    mem = r.memory

    # -- apply: plan, then execute (the infrastructure, then the run's submission)
    with measured(mem, "apply"):
        with profile(sc.key, "plan"):
            ctx = make_context(server.endpoint, args)
            desired, r.load_s = load(path)
            res = next(x for x in desired.resources if x.KIND == "Pipeline")
            units = expand(res.task_list())
            r.tasks = len(res.task_list())
            r.top_level = len(units)
            r.barriers = sum(1 for u in units if u.task is None)
            r.children = sum(t.arrayProperties.size for t in res.task_list() if t.arrayProperties)
            t = time.perf_counter()
            plan = plan_apply(ctx, desired)
            r.plan_s = time.perf_counter() - t
        r.plan_calls = Counter(ctx.aws.stats.calls)
        r.plan_actions = Counter(a.verb.name.lower() for a in plan.actions)
        want = {"create": 4, "submit": 1}  # CE, JQ, 2 JDs; the run
        if dict(r.plan_actions) != want:
            r.problems.append(f"apply planned {dict(r.plan_actions)}, expected {want}")
        blocked = [f"{a.id}: {a.summary}" for a in plan.blocked]
        r.problems += [f"blocked: {b}" for b in blocked]
        outcomes: list[Outcome] = []
        before = Counter(ctx.aws.stats.calls)
        t = time.perf_counter()
        submit_started = time.time()
        with profile(sc.key, "execute"):
            if not blocked:
                outcomes = execute(ctx, plan)
        r.exec_s = time.perf_counter() - t
        r.exec_calls = delta(ctx.aws.stats.calls, before)
        for o in outcomes:
            if o.status != "done":
                r.problems.append(f"{o.action.id}: {o.status}: {o.detail}")
            if o.action.kind == "Pipeline":
                r.submit_action_s = o.seconds

    # -- status: what one poll of the run costs
    targets: list[Watched] = []
    with measured(mem, "status"), profile(sc.key, "status"):
        before = Counter(ctx.aws.stats.calls)
        targets = watch_targets(ctx, plan)
        r.targets_calls = delta(ctx.aws.stats.calls, before)
        if sum(len(x.job_ids) for x in targets) != r.top_level:
            r.problems.append(
                f"watch_targets found {sum(len(x.job_ids) for x in targets)} jobs, "
                f"expected {r.top_level}"
            )
        for _ in range(args.polls):
            before = Counter(ctx.aws.stats.calls)
            t = time.perf_counter()
            watch.poll(ctx, targets)
            took = time.perf_counter() - t
            states: Counter[str] = Counter()
            for job in (j for x in targets for j in x.jobs.values()):
                states.update(counts(job))
            r.polls.append(Poll(delta(ctx.aws.stats.calls, before), took, states))
            time.sleep(args.poll_gap)

    # -- follow: to the end of the run, as `apply --wait` does
    polls = [0]
    real_poll = watch.poll

    def counted(c: Context, ts: list[Watched]) -> None:
        polls[0] += 1
        real_poll(c, ts)

    with measured(mem, "follow"), profile(sc.key, "follow"):
        before = Counter(ctx.aws.stats.calls)
        t = time.perf_counter()
        watch.poll = counted  # follow() looks poll up in its module at each call
        try:
            watch.follow(ctx, targets, lambda _line: None, args.run_timeout)
        except TimeoutError as exc:
            r.problems.append(f"follow: {exc}")
        finally:
            watch.poll = real_poll
        ended = time.time()
        r.follow_s = time.perf_counter() - t
        r.follow_polls = polls[0]
        r.follow_calls = delta(ctx.aws.stats.calls, before)
    jobs = [j for x in targets for j in x.jobs.values()]
    r.final = Counter(str(j.get("status")) for j in jobs)
    stopped = [j["stoppedAt"] for j in jobs if j.get("stoppedAt")]
    if stopped and len(stopped) == len(jobs):
        last = max(stopped) / 1000
        r.run_span_s = last - submit_started
        r.noticed_s = ended - last
    if not all(x.succeeded for x in targets):
        r.problems.append(f"run did not succeed: top-level jobs {dict(r.final)}")

    # -- reapply: a new invocation over the same manifests must submit nothing
    with measured(mem, "reapply"):
        with profile(sc.key, "reapply"):
            ctx2 = make_context(server.endpoint, args)
            desired2, r.reapply_load_s = load(path)
            t = time.perf_counter()
            plan2: Plan = plan_apply(ctx2, desired2)
            r.reapply_plan_s = time.perf_counter() - t
            outcomes2 = execute(ctx2, plan2) if plan2.has_changes else []
        r.reapply_calls = Counter(ctx2.aws.stats.calls)
        r.reapply_actions = Counter(a.verb.name.lower() for a in plan2.actions)
        for o in outcomes2:
            r.problems.append(f"reapply ran {o.action.id}: {o.status}: {o.detail}")
    r.server_rss_mib = server.rss_mib()
    return r


# -- output -------------------------------------------------------------------------------------


def print_calls(calls: Counter[str], per: dict[str, int]) -> None:
    """One line per operation; Batch job operations also per job (of the kinds in `per`)."""
    for key, n in sorted(calls.items()):
        kind = "write" if CallStats.is_write(key) else "read"
        ratio = ""
        if key in (SUBMIT_JOB, DESCRIBE_JOBS, "batch:ListJobs") and per:
            ratio = "  " + ", ".join(f"{n / d:.3f} per {what}" for what, d in per.items() if d)
        out(f"      {key:<38} {n:>6}  {kind:<5}{ratio}".rstrip())


def floor_text(calls: int, max_rps: float) -> str:
    if max_rps <= 0:
        return ""
    # The bucket holds max(1, rate) tokens when full; earlier phases of the same Context may
    # have drawn from it, so this is a lower bound at best.
    return f"; rate-budget floor ~{max(0.0, calls - max(1.0, max_rps)) / max_rps:.1f}s"


def verbs(actions: Counter[str]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(actions.items()))


def total(calls: Counter[str]) -> int:
    return sum(calls.values())


def print_result(r: Result, args: argparse.Namespace) -> None:
    per = {"top-level job": r.top_level}
    if r.children:
        per["job incl. children"] = r.top_level + r.children
    m = r.memory
    out(
        f"  jobs: {r.tasks} tasks -> {r.top_level} top-level jobs ({r.barriers} barrier jobs)"
        + (f" + {r.children} array children = {r.top_level + r.children} jobs" * bool(r.children))
    )
    out(f"  phase apply: plan {verbs(r.plan_actions)}")
    out(
        f"    plan: {r.load_s + r.plan_s:.2f}s (load+validate {r.load_s:.2f}s, plan_apply "
        f"{r.plan_s:.2f}s), {total(r.plan_calls)} calls:"
    )
    print_calls(r.plan_calls, {})
    ec = r.exec_calls
    out(
        f"    submit (execute): {r.exec_s:.2f}s wall, of which the run's submission "
        f"{r.submit_action_s:.2f}s; {ec[SUBMIT_JOB]} SubmitJob of {total(ec)} calls "
        f"({writes(ec)} writes){floor_text(total(ec), args.max_rps)}; "
        f"{ec[SUBMIT_JOB] / max(r.exec_s, 1e-9):.1f} SubmitJob/s"
    )
    print_calls(ec, per)
    out(f"    {m['apply'].text()}")
    out(
        f"  phase status: watch_targets {total(r.targets_calls)} calls"
        + (" (job IDs from the apply)" if not r.targets_calls else "")
        + f"; {len(r.polls)} polls:"
    )
    for i, p in enumerate(r.polls, 1):
        states = ", ".join(f"{p.states[s]} {s}" for s in STATES if p.states[s])
        out(
            f"    poll {i}: {p.calls[DESCRIBE_JOBS]} DescribeJobs, {total(p.calls)} calls, "
            f"{p.seconds * 1000:.0f} ms; jobs (children included): {states}"
        )
    verdict = "ok  " if r.status_ok else "MISS"
    out(
        f"    target: {verdict} status of the whole run in at most ceil(top-level jobs/100) = "
        f"ceil({r.top_level}/100) = {r.poll_limit} DescribeJobs calls per poll, independent of "
        f"array sizes ({r.children} array children): measured {r.describe_per_poll} per poll"
        + ("" if r.status_ok else " (or a poll made other calls)")
    )
    out(f"    {m['status'].text()}")
    out(
        f"  phase follow: {r.follow_s:.2f}s, {r.follow_polls} polls, {total(r.follow_calls)} "
        f"calls ({r.follow_calls[DESCRIBE_JOBS]} DescribeJobs; back-off 0.5s x1.5 up to 10s)"
    )
    if r.run_span_s is not None and r.noticed_s is not None:
        out(
            f"    end to end: the last job stopped {r.run_span_s:.1f}s after the apply's execute "
            f"began; follow returned {r.noticed_s:.1f}s after that "
            f"({r.run_span_s + r.noticed_s:.1f}s from execute to the run's end seen)"
        )
    out(f"    top-level jobs at the end: {dict(sorted(r.final.items()))}")
    out(f"    {m['follow'].text()}")
    rc = r.reapply_calls
    out(f"  phase reapply: plan {verbs(r.reapply_actions)}")
    out(
        f"    {r.reapply_load_s + r.reapply_plan_s:.2f}s (load+validate {r.reapply_load_s:.2f}s,"
        f" plan_apply {r.reapply_plan_s:.2f}s); {total(rc)} calls, {writes(rc)} writes, "
        f"{rc[SUBMIT_JOB]} SubmitJob{floor_text(total(rc), args.max_rps)}"
    )
    print_calls(rc, per)
    out(
        f"    target: {'ok  ' if r.reapply_ok else 'MISS'} zero SubmitJob and zero writes "
        "(every action a no-op)"
    )
    out(f"    {m['reapply'].text()}")
    if r.server_rss_mib is not None:
        out(f"  moto server peak RSS so far: {r.server_rss_mib:.0f} MiB")
    for p in r.problems:
        out(f"  PROBLEM {p}")


def markdown_table(results: list[Result]) -> list[str]:
    lines = [
        "| scenario | jobs (top-level + children) | plan s | SubmitJob | submit calls "
        "| submit s | DescribeJobs/poll (limit) | follow s (polls) | run end s "
        "| re-apply calls (SubmitJob) | re-apply s | tracemalloc peak MiB | ru_maxrss MiB "
        "| moto RSS MiB | ok |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        peaks = [m.trace_peak_mib for m in r.memory.values() if m.trace_peak_mib is not None]
        jobs = f"{r.top_level}" + (f" + {r.children}" if r.children else "")
        lines.append(
            f"| {r.scenario.key} | {jobs} | {r.load_s + r.plan_s:.2f} | "
            f"{r.exec_calls[SUBMIT_JOB]} | {total(r.exec_calls)} | {r.exec_s:.2f} | "
            f"{r.describe_per_poll} ({r.poll_limit}) | {r.follow_s:.1f} ({r.follow_polls}) | "
            f"{'-' if r.run_span_s is None else f'{r.run_span_s:.1f}'} | "
            f"{total(r.reapply_calls)} ({r.reapply_calls[SUBMIT_JOB]}) | "
            f"{r.reapply_load_s + r.reapply_plan_s:.2f} | "
            f"{_mib(max(peaks) if peaks else None)} | "
            f"{max(m.maxrss_mib for m in r.memory.values()):.0f} | {_mib(r.server_rss_mib)} | "
            f"{'yes' if ok(r) else 'NO'} |"
        )
    return lines


def ok(r: Result) -> bool:
    return not r.problems and r.status_ok and r.reapply_ok


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tasks", type=int, default=1000, help="DAG tasks, before the final one (default 1000)"
    )
    p.add_argument("--layers", type=int, default=10, help="DAG layers (default 10)")
    p.add_argument("--array", type=int, default=10_000, help="array size, 2..10000 (default 10000)")
    p.add_argument(
        "--max-rps",
        type=float,
        default=DEFAULT_MAX_RPS,
        help=f"client-side API call budget per second (default {DEFAULT_MAX_RPS:g}, the CLI's "
        "default); 0 disables it",
    )
    p.add_argument(
        "--parallelism", type=int, default=8, help="as the CLI's --parallelism (default 8)"
    )
    p.add_argument("--polls", type=int, default=3, help="status polls to measure (default 3)")
    p.add_argument(
        "--poll-gap", type=float, default=0.2, help="seconds between status polls (default 0.2)"
    )
    p.add_argument(
        "--run-timeout", type=float, default=600.0, help="follow's timeout in seconds (default 600)"
    )
    p.add_argument(
        "--step-seconds",
        type=float,
        default=0.05,
        help=f"the server's {STEP_ENV}: seconds per job state (default 0.05)",
    )
    p.add_argument(
        "--job-seconds",
        type=float,
        default=0.2,
        help=f"the server's {RUN_ENV}: seconds a job runs (default 0.2)",
    )
    p.add_argument(
        "--scenarios", default="dag,array", help="comma-separated: dag, array (default both)"
    )
    p.add_argument(
        "--no-tracemalloc",
        dest="tracemalloc",
        action="store_false",
        help="do not trace allocations (tracing slows this process's Python code severalfold)",
    )
    p.add_argument(
        "--profile",
        default="",
        help="comma-separated phases to run under cProfile (plan, execute, status, follow, "
        "reapply); prints the top functions of this process",
    )
    p.add_argument(
        "--profile-sort",
        default="cumulative",
        choices=("cumulative", "tottime"),
        help="how --profile orders functions (default cumulative)",
    )
    args = p.parse_args(argv)
    if args.tasks < 1 or args.layers < 1 or args.layers > args.tasks:
        p.error("--tasks and --layers: at least one task per layer")
    if not 2 <= args.array <= 10_000:
        p.error("--array: 2..10000, as Batch allows")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not set(args.scenarios) <= {"dag", "array"}:
        p.error("--scenarios: dag, array")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BATCH"):
        os.environ.pop(var, None)
    # MotoServer hands this process's environment to the server, where the sandbox reads these.
    os.environ[STEP_ENV] = f"{args.step_seconds:g}"
    os.environ[RUN_ENV] = f"{args.job_seconds:g}"
    rps = "disabled (0)" if args.max_rps <= 0 else f"{args.max_rps:g} calls/s"
    out(
        f"bench_pipeline: client-side rate budget (max-rps) {rps}; parallelism "
        f"{args.parallelism}; stack {STACK!r}; region {REGION}"
    )
    tracing = "on for all phases" if args.tracemalloc else "off"
    out(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; tracemalloc {tracing}; "
        f"sandbox jobs: {STEP_ENV}={args.step_seconds:g}, {RUN_ENV}={args.job_seconds:g}"
    )
    out(f"ru_maxrss after imports, before any phase: {_maxrss_mib():.0f} MiB")
    profile = Profiler({s.strip() for s in args.profile.split(",") if s.strip()}, args.profile_sort)
    results: list[Result] = []
    started = time.perf_counter()
    if args.tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        server = MotoServer(tmp)
        out(f"moto server: pid {server.proc.pid} at {server.endpoint} (separate process)")
        try:
            for sc in scenarios(args):
                if sc.key not in args.scenarios:
                    continue
                path = Path(tmp) / f"{sc.key}.yaml"
                path.write_text(sc.manifest)
                t = time.perf_counter()
                server.fresh_account()
                out()
                out(
                    f"== {sc.key}: {sc.title} (manifest {path.stat().st_size / 1024:.0f} KiB; "
                    f"account reset and seeded in {time.perf_counter() - t:.2f}s)"
                )
                r = run_scenario(sc, path, server, args, profile)
                results.append(r)
                print_result(r, args)
        finally:
            server.stop()
    tracemalloc.stop()
    elapsed = time.perf_counter() - started
    out()
    out(f"## Summary (max-rps {rps}, parallelism {args.parallelism})")
    out()
    for line in markdown_table(results):
        out(line)
    out()
    for r in results:
        out(
            f"{r.scenario.key}: status target {'holds' if r.status_ok else 'DOES NOT hold'}; "
            f"no-op re-apply target {'holds' if r.reapply_ok else 'DOES NOT hold'}"
        )
    all_ok = all(ok(r) for r in results)
    out(f"total run time {elapsed:.1f}s; {'all phases ok' if all_ok else 'SOME PHASES FAILED'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
