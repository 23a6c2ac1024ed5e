"""Benchmark: how long the command line takes to start, hyperfine-style.

    python benchmarks/bench_startup.py [--runs 20] [--sandbox]

Runs each command line `--runs` times (after `--warmup` runs that are not counted, which also
write the byte-code caches) and prints, for each, the mean wall time ± its standard deviation,
the median, the minimum and the mean CPU time (user + system, from `wait4`), next to a bare
`python -c pass` and a floor: importing click, ruamel.yaml, libyaml and pydantic and validating
with one model, what any command line built on them pays (the targets are printed against it,
since on a slow machine the floor alone may exceed them). Then it lists which of the packages
that take longest to import (boto3, botocore, deepdiff, kopf, moto, jinja2) each command loaded.

With `--sandbox` it also starts a sandbox in a temporary state directory and compares
`diff --sandbox` with `diff --endpoint-url` at the same server: the difference is what finding
the running sandbox costs (its state file, its lock and one HTTP probe). The target is at most
0.3 s. The sandbox is stopped at the end.

Commands run as `python -m reconciler ...` from the repository's root with byte-code caching on,
as an installed package would run (PYTHONDONTWRITEBYTECODE is dropped from their environment).
On a shared machine, compare minima and CPU times rather than means.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for tests.stacks, the manifest text builders the tests use
    sys.path.insert(0, str(ROOT))

from tests.stacks import jd, stack  # noqa: E402

EXAMPLES = "manifests/examples/"
ONE_KIND = "{one_kind}"  # a file of 5 job definitions, written to a temporary directory
HEAVY = ("boto3", "botocore", "deepdiff", "kopf", "moto", "jinja2")
TARGET_S = 0.25  # issue #9: validate and --help
SANDBOX_TARGET_S = 0.3  # issue #9: what --sandbox may add over --endpoint-url
# What any command line that validates with pydantic and parses with ruamel pays before any
# code of ours: its imports, and one model built and used. The targets are read against it.
FLOOR = (
    "import click, ruamel.yaml, yaml, pydantic\n"
    "class M(pydantic.BaseModel):\n    name: str\n"
    "M.model_validate({'name': 'x'})"
)
FLOOR_NAME = "floor: click, ruamel, pydantic, 1 model"
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    (FLOOR_NAME, ["-c", FLOOR]),
    ("reconciler --help", ["-m", "reconciler", "--help"]),
    ("reconciler validate --help", ["-m", "reconciler", "validate", "--help"]),
    ("reconciler validate -f examples", ["-m", "reconciler", "validate", "-f", EXAMPLES]),
    ("reconciler validate -f 5 job definitions", ["-m", "reconciler", "validate", "-f", ONE_KIND]),
    ("reconciler diff --help", ["-m", "reconciler", "diff", "--help"]),
]
# The commands issue #9 gives a target.
TARGETED = (
    "reconciler --help",
    "reconciler validate --help",
    "reconciler validate -f examples",
    "reconciler validate -f 5 job definitions",
)
LIST_MODULES = """
import contextlib, io, json, sys
from reconciler.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    main(sys.argv[1:])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


@dataclass
class Timing:
    name: str
    wall: list[float]
    cpu: list[float]

    def line(self) -> str:
        sd = statistics.stdev(self.wall) if len(self.wall) > 1 else 0.0
        return (
            f"{self.name:<42} {statistics.mean(self.wall) * 1000:7.1f} ms ± {sd * 1000:5.1f}  "
            f"median {statistics.median(self.wall) * 1000:7.1f}  "
            f"min {min(self.wall) * 1000:7.1f}  cpu {statistics.mean(self.cpu) * 1000:7.1f} "
            f"(median {statistics.median(self.cpu) * 1000:5.1f}) ms"
        )


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the child's own, from wait4) and the exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def measure(
    name: str,
    args: list[str],
    runs: int,
    warmup: int,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> Timing:
    argv = [sys.executable, *args]
    env = env or child_env()
    for _ in range(warmup):
        _, _, code = run_once(argv, env)
        if code not in ok:
            raise SystemExit(f"{name}: exit code {code}: {' '.join(argv)}")
    timing = Timing(name, [], [])
    for _ in range(runs):
        wall, cpu, _ = run_once(argv, env)
        timing.wall.append(wall)
        timing.cpu.append(cpu)
    return timing


def measure_interleaved(
    cases: list[tuple[str, list[str], dict[str, str]]],
    runs: int,
    warmup: int,
    ok: tuple[int, ...] = (0,),
) -> list[Timing]:
    """Like `measure`, one run of each case in turn, so that a change in the machine's load
    during the measurement falls on all of them alike."""
    timings = [Timing(name, [], []) for name, _, _ in cases]
    for i in range(warmup + runs):
        for timing, (name, args, env) in zip(timings, cases, strict=True):
            wall, cpu, code = run_once([sys.executable, *args], env)
            if code not in ok:
                raise SystemExit(f"{name}: exit code {code}")
            if i >= warmup:
                timing.wall.append(wall)
                timing.cpu.append(cpu)
    return timings


def heavy_imports(args: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return [m for m in json.loads(done.stdout.splitlines()[-1]) if m in HEAVY]


def sandbox_comparison(runs: int, warmup: int) -> tuple[Timing, Timing]:
    """`diff --sandbox` and `diff --endpoint-url` at the same running sandbox."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as state:
        env = child_env({"RECONCILER_SANDBOX_DIR": state})
        reconciler = [sys.executable, "-m", "reconciler"]
        subprocess.run([*reconciler, "sandbox", "start"], cwd=ROOT, env=env, check=True)
        try:
            endpoint = json.loads((Path(state) / "server.json").read_text())["endpoint"]
            keys = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
            direct_env = {**env, **keys}
            diff = ["-m", "reconciler", "diff", "-f", EXAMPLES]
            at_endpoint = [*diff, "--endpoint-url", endpoint, "--region", "us-east-1"]
            # diff exits 2: the sandbox is empty, so the examples are all still to create
            with_flag, direct = measure_interleaved(
                [
                    ("diff --sandbox", [*diff, "--sandbox"], env),
                    ("diff --endpoint-url (same server)", at_endpoint, direct_env),
                ],
                runs,
                warmup,
                ok=(0, 2),
            )
        finally:
            subprocess.run([*reconciler, "sandbox", "stop"], cwd=ROOT, env=env, check=False)
    return with_flag, direct


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="also compare diff --sandbox with diff --endpoint-url at a running sandbox",
    )
    return p.parse_args(argv)


def expand(commands: list[tuple[str, list[str]]], one_kind: Path) -> list[tuple[str, list[str]]]:
    """The command lines with the one-kind file's path in (the floor's code has braces of its
    own, so this is no str.format)."""
    return [(name, [a.replace(ONE_KIND, str(one_kind)) for a in argv]) for name, argv in commands]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"bench_startup: {args.runs} runs after {args.warmup} warm-up runs; python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        one_kind = Path(tmp) / "job-definitions.yaml"
        one_kind.write_text(stack(*(jd(f"jd-{i}") for i in range(5))))
        commands = expand(COMMANDS, one_kind)
        timings = {}
        for name, cmd in commands:
            timings[name] = measure(name, cmd, args.runs, args.warmup)
            print(timings[name].line(), flush=True)
        print()
        for name, cmd in commands[1:]:
            if name == FLOOR_NAME:
                continue
            loaded = heavy_imports(cmd[2:])
            shown = ", ".join(loaded) if loaded else "none of " + "/".join(HEAVY)
            print(f"{name:<42} imports {shown}")
    ok = True
    floor = min(timings[FLOOR_NAME].wall)
    for name in TARGETED:
        fastest = min(timings[name].wall)
        ok = ok and fastest < TARGET_S
        print(
            f"{name}: fastest run {fastest * 1000:.0f} ms (target < {TARGET_S * 1000:.0f} ms; "
            f"{(fastest - floor) * 1000:+.0f} ms over the floor's {floor * 1000:.0f} ms)"
        )
    if args.sandbox:
        print()
        with_flag, direct = sandbox_comparison(args.runs, args.warmup)
        print(with_flag.line())
        print(direct.line())
        # The runs alternate, so each pair ran under about the same load.
        extra = statistics.median(a - b for a, b in zip(with_flag.wall, direct.wall, strict=True))
        ok = ok and extra <= SANDBOX_TARGET_S
        print(
            f"--sandbox adds {extra * 1000:.0f} ms (median of the paired differences; fastest "
            f"runs {(min(with_flag.wall) - min(direct.wall)) * 1000:.0f} ms, CPU "
            f"{(statistics.mean(with_flag.cpu) - statistics.mean(direct.cpu)) * 1000:.0f} ms) "
            f"over --endpoint-url (target <= {SANDBOX_TARGET_S * 1000:.0f} ms)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
