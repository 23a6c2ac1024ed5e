"""The sandbox's settings across restarts: which a server runs with, and what to do when the
caller's environment asks for others.

A server reads its settings (`config.SETTINGS`: whether job commands run locally, a state's
seconds, ...) from the environment it was started with, so a variable set in a later shell
would be silently ignored. Instead the manager (`manager.ensure`) compares:
- the settings are kept in the state directory (`settings.json`) and in `server.json` for the
  running server; a variable the caller's environment does not set keeps its kept value (a
  shell without RECONCILER_SANDBOX_RUN_COMMANDS does not turn local commands off), one it sets
  replaces it;
- a running server whose settings differ from those is restarted with them when no job
  attempt is running on it: nothing is lost (finished jobs are restored from the journal,
  unstarted ones go on);
- while attempts run, a restart would fail them (as a lost host), so the server is kept as it
  is and the caller is told so, and how to restart once they are done, or now
  (`reconciler sandbox restart`).
Nothing here imports moto or boto3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from reconciler.sandbox.config import SETTINGS, SandboxConfig
from reconciler.sandbox.job_journal import BEGAN, ENDED, FINISHED, JOURNAL

SETTINGS_FILE = "settings.json"


def kept(directory: Path) -> dict[str, str]:
    """The settings kept in the state directory (those the last server was started with)."""
    try:
        data = json.loads((directory / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in SETTINGS and isinstance(v, str)}


def wanted(directory: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kept settings, with those the caller's environment sets instead."""
    environ = os.environ if environ is None else environ
    merged = kept(directory)
    merged.update({name: environ[name] for name in SETTINGS if name in environ})
    return merged


def keep(directory: Path, values: Mapping[str, str]) -> None:
    (directory / SETTINGS_FILE).write_text(json.dumps(dict(values), sort_keys=True))


def differences(running: Mapping[str, str], asked: Mapping[str, str]) -> list[str]:
    """`NAME=value` for each setting asked for that the running server does not have."""
    have, want = SandboxConfig(running).settings(), SandboxConfig(asked).settings()
    keys = dict(zip(SETTINGS, have, strict=True))  # variable -> the name status shows
    return [
        f"{name}={asked.get(name, '')}"
        for name, key in keys.items()
        if have[key] != want[key] and name in asked
    ]


def running_attempts(directory: Path) -> int:
    """How many job attempts the journal shows begun and not ended (running now, if the
    server is up): what a restart would fail."""
    began: dict[str, int] = {}
    try:
        with (directory / JOURNAL).open("rb") as lines:
            for raw in lines:
                try:
                    entry = json.loads(raw)
                    job, event = str(entry["jobId"]), entry["event"]
                except (ValueError, KeyError, TypeError):
                    continue
                if event == BEGAN:
                    began[job] = began.get(job, 0) + 1
                elif event == ENDED:
                    began[job] = began.get(job, 0) - 1
                elif event == FINISHED:
                    began.pop(job, None)
    except OSError:
        return 0
    return sum(1 for n in began.values() if n > 0)


def kept_running_notice(changed: list[str], attempts: int, instances: int = 0) -> str:
    running = [f"{attempts} job attempt(s)"] if attempts else []
    running += [f"{instances} EC2 instance(s)"] if instances else []
    return (
        f"warning: this command's environment sets {', '.join(changed)}, but the sandbox "
        f"server runs with other settings and {' and '.join(running)} are running on it: "
        "restarting it would fail them, so it keeps its settings for now. When they are done, "
        "run the command again (it restarts the sandbox then), or now: "
        f"`{' '.join(changed)} reconciler sandbox restart` (running attempts fail as on a "
        "lost host, and are retried if their retry strategy says so; EC2 instances are "
        "terminated)"
    )


def restarted_notice(changed: list[str]) -> str:
    return f"the sandbox was restarted to apply {', '.join(changed)} (finished jobs kept)"
