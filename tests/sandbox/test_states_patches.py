"""Step Functions' Batch states on the sandbox (reconciler.sandbox.states_patches): the patch
reaches moto's runner whenever moto imports it, without the server importing it at start.

In a fresh interpreter: the test process has moto's runner imported already, by other tests.
What the patches do to a fired Pipeline is in test_schedule_firing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from reconciler.sandbox.states_patches import BATCH_SERVICE

CHECK = textwrap.dedent(
    f"""
    import sys
    from reconciler.sandbox import moto_ext
    from reconciler.sandbox.patching import owner_of

    extensions = moto_ext.install()
    print("imported at install:", {BATCH_SERVICE!r} in sys.modules)
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends  # moto's own path
    cls = sys.modules[{BATCH_SERVICE!r}].StateTaskServiceBatch
    print("patched:", all(
        owner_of(cls, name) is extensions
        for name in ("_normalise_parameters", "_normalise_response")
    ))
    """
)


def test_the_runner_is_patched_when_moto_imports_it_and_not_imported_before() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["imported at install: False", "patched: True"]


def test_a_runner_imported_before_the_install_is_patched_at_once() -> None:
    first = f"import {BATCH_SERVICE}\n"
    done = subprocess.run(
        [sys.executable, "-c", first + CHECK],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["imported at install: True", "patched: True"]
