"""Benchmark: building and rendering the run report of a big array job.

    python benchmarks/bench_report.py [--sizes 1000 10000] [--runs 5]

Builds the report of a run with a leader and one array task of N children (about 0.5 % of them
failed), renders its HTML page and writes its YAML, as `reconciler report` does, and prints for
each N the best and median wall time of `--runs` runs, the page's size and the YAML's best
time. The page aggregates children (a band, not a row each), so time and size should grow
about linearly with N and stay well under a second and 2 MB at 10,000 children. (These were
timed assertions in the unit tests, which failed on a loaded machine: figures live here; the
tests check the page's and the YAML's shape.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.runs.report import build_report, render_html, render_yaml
from tests.unit.test_report import NOW, TaskJobs, big_array_task, leader_job


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    heads = ("children", "html best s", "median s", "page bytes", "yaml best s")
    print(" ".join(f"{h:>12}" for h in heads))
    for size in args.sizes:
        times, yaml_times, page = [], [], ""
        for _ in range(args.runs):
            tasks = [TaskJobs("leader", leader_job()), big_array_task(size)]
            started = time.perf_counter()
            report = build_report("etl", "run42", tasks, now=NOW)
            page = render_html(report)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            render_yaml(report)
            yaml_times.append(time.perf_counter() - started)
        print(
            f"{size:>12} {min(times):>12.3f} {statistics.median(times):>12.3f} "
            f"{len(page.encode()):>12,} {min(yaml_times):>12.3f}"
        )


if __name__ == "__main__":
    main()
