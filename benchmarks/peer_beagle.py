"""Runs batchbeagle 0.2.0's `beagle` command line in its own virtualenv, as `bench_peer.py` needs.

    benchmarks/.peer/venv/bin/python benchmarks/peer_beagle.py -f stack.yml assemble

It is `beagle` itself (`batchbeagle.dplycli:main`) with one shim: batchbeagle calls
`yaml.load(f)` without a Loader, which PyYAML 6 refuses. Its own pin (PyYAML 3.12) does not
build on Python 3.11, so the peer's virtualenv has PyYAML 6, and this wrapper gives `yaml.load`
the default it had then, limited to safe YAML (a stack file is plain mappings and lists).

This file runs under the peer's interpreter, which has neither the reconciler nor its
dependencies: it imports only the standard library, PyYAML and batchbeagle.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

_load = yaml.load


def _load_with_default(stream: Any, Loader: Any = yaml.SafeLoader) -> Any:
    """`yaml.load` as PyYAML 3 called it: a Loader is optional."""
    return _load(stream, Loader=Loader)


def main() -> None:
    yaml.load = _load_with_default
    from batchbeagle.dplycli import main as beagle

    sys.argv[0] = "beagle"
    beagle()  # exits through click


if __name__ == "__main__":
    main()
