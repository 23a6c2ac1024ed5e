"""Following a driven run's output: the receiver on the run's queue, and taking over a run that
a killed CLI was following.

The receiver (agent/receiver.py) prints each task's lines as they arrive and writes the seed's
per-task files in the run's log directory. A re-apply after `kill -9` re-attaches to the run,
but the dead CLI had taken (and deleted) the messages it printed, so a new receiver is told
where each task's output stands: the dead CLI's files, if they are of the same launch (its
`.ec2.json` names the same instance), and the agent's copy in S3; the queue's messages follow on
from there. Another machine has no such files: what the S3 copy holds is printed, and lines the
dead CLI took that the copy does not have yet come when the agent next copies (every 30 s, and
at the end).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.engine.context import Context
from reconciler.runs import ec2_scratch as scratch

STREAMS = ("stdout", "stderr")


def open_receiver(ctx: Context, queue_url: str, log_dir: Path | None, subject: str) -> Any:
    """A receiver on the run's queue that prints `SUBJECT/TASK: line` (`!:` for stderr)."""
    from reconciler.agent.receiver import Receiver

    def show(task: str, stream: str, line: str) -> None:
        ctx.log(f"{subject}/{task}{'!' if stream == 'stderr' else ''}: {line}")

    return Receiver(ctx.aws.client("sqs"), queue_url, log_dir, show)


def read_copy(ctx: Context, prefix: str, final: bool = False) -> dict[str, str]:
    """The agent's S3 copy of a task's streams under `prefix` (`final`: the task ended, the
    copy is whole), decoded as the agent decoded its messages."""
    from reconciler.agent.receiver import decoded

    out = {}
    for stream in STREAMS:
        data = scratch.read_bytes(ctx, prefix + stream)
        out[stream] = decoded(data, final) if data else ""
    return out


def launched_here(log_dir: Path | None, key: str, instance_id: str) -> bool:
    """Whether the files of `key` in the log directory are of this instance's launch (not of
    an earlier one that was interrupted, whose files a later launch has not yet replaced)."""
    if log_dir is None:
        return False
    try:
        record = json.loads((log_dir / f"{key}.ec2.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((record.get("response") or {}).get("InstanceId") == instance_id)


def resume(ctx: Context, receiver: Any, key: str, prefix: str, instance_id: str) -> None:
    """Takes over task `key` (its output under `prefix`) from a receiver that died."""
    here = launched_here(receiver.log_dir, key, instance_id)
    receiver.resume(key, read_copy(ctx, prefix), local=here)


def keep_files(
    log_dir: Path | None, key: str, script: str, user_data: str, request: Any, instance: Any
) -> None:
    """The seed's per-task files in the run's log directory."""
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{key}.sh").write_text(script)
    (log_dir / f"{key}.startup.sh").write_text(user_data)
    (log_dir / f"{key}.ec2.json").write_text(
        json.dumps({"request": request, "response": instance}, indent=1, default=str)
    )
