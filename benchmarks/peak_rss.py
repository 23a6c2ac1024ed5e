"""Runs a Python program and, as it exits, writes its peak resident set size to a file.

    python benchmarks/peak_rss.py OUT_FILE -m reconciler apply -f stack.yaml ...
    benchmarks/.peer/venv/bin/python benchmarks/peak_rss.py OUT_FILE benchmarks/peer_beagle.py ...

`bench_peer.py` runs both tools through it. The peak is the process's `VmHWM` from
/proc/self/status, in KiB. The `ru_maxrss` that `wait4` reports for a child is no good here: on
Linux a child starts from its parent's high-water mark (fork copies it, exec keeps it), so every
tool would report at least the benchmark's own size. The program runs in this interpreter
(`runpy`), as `python -m MODULE` or `python SCRIPT` would run it. Standard library only: it also
runs under the peer's virtualenv.
"""

from __future__ import annotations

import atexit
import os
import resource
import runpy
import sys
from pathlib import Path


def peak_kib() -> int:
    """VmHWM, or ru_maxrss (inherited, so too high) where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out_file = Path(sys.argv[1])
    atexit.register(lambda: out_file.write_text(str(peak_kib())))
    if sys.argv[2] == "-m":
        module = sys.argv[3]
        sys.argv = [module, *sys.argv[4:]]
        sys.path[0] = os.getcwd()  # where `python -m` looks first
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script = sys.argv[2]
        sys.argv = sys.argv[2:]
        sys.path[0] = str(Path(script).resolve().parent)
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
