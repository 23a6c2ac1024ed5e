"""What the agent keeps in S3 of a task's output, read back for `reconciler logs` and reports.

The live stream (SQS) lasts only while the CLI follows the run; the agent also copies stdout,
stderr and the exit code under the task's S3 prefix, so a detached task, or one whose CLI was
killed, still has its output and result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.agent.exec import parse_s3


@dataclass
class TaskOutput:
    stdout: str
    stderr: str
    exit_code: int | None  # None: the task has not finished (or its agent never reported)


def read_output(s3: Any, s3_prefix: str) -> TaskOutput:
    """The task's output so far: what the agent last copied (at least every ~30 s)."""
    bucket, prefix = parse_s3(s3_prefix)

    def text(name: str) -> str:
        try:
            body = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return ""
        return bytes(body).decode("utf-8", "replace")

    code = text("exitCode").strip()
    return TaskOutput(
        stdout=text("stdout"),
        stderr=text("stderr"),
        exit_code=int(code) if code.lstrip("-").isdigit() else None,
    )
