"""The user data of an EC2 task: a bash script that runs the task under the agent, then shuts
the instance down (launched with InstanceInitiatedShutdownBehavior=terminate, so it goes away).

What it does, in order:
1. `trap` on EXIT runs `shutdown -h now` (unless keep_alive): whatever fails below, the instance
   does not stay up and bill.
2. Makes sure `python3` can import boto3: a stock Amazon Linux 2023 has python3 but not always
   boto3, so it tries `dnf install python3-boto3` (AL2023's package), then yum, apt-get, pip.
   If that fails, it says so on the queue with the AWS CLI (AL2023 ships it), as the task's
   stderr and exit code 127, so the run fails with a reason instead of waiting.
3. Puts the agent (`agent/exec.py`, docstrings stripped) and the task script in a scratch
   directory: inline as gzip+base64 when everything fits EC2's 16 KB cap, else fetched from the
   task's S3 prefix (`uploads`, which the runner puts there before launching).
4. Runs `python3 agent.py exec ... -- bash task.sh` (or `./task.sh` when it has a `#!` line).
"""

from __future__ import annotations

import ast
import base64
import gzip
import json
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from reconciler.agent import exec as agent_exec

USER_DATA_LIMIT = 16 * 1024  # EC2: 16 KB of user data, before base64
AGENT_KEY = "agent.py"
SCRIPT_KEY = "task.sh"
NO_BOTO3_EXIT = 127
DELIMITER = "RECONCILER_EOF"  # cannot occur in base64


@dataclass
class UserData:
    text: str  # the whole user data (a bash script); boto3 base64-encodes it
    uploads: dict[str, bytes] = field(default_factory=dict)  # key under s3_prefix -> bytes


@cache
def agent_source() -> bytes:
    """exec.py without its docstrings (the module's own says where the full text is): the same
    code in about two thirds of the bytes, leaving more of the 16 KB for inline scripts."""
    tree = ast.parse(Path(agent_exec.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                node.body = body[1:] or [ast.Pass()]
    head = "# The agent of reconciler's EC2 tasks: reconciler/agent/exec.py, docstrings left out.\n"
    return (head + ast.unparse(tree) + "\n").encode()


def packed(data: bytes) -> str:
    return base64.encodebytes(gzip.compress(data, 9, mtime=0)).decode()


def build_user_data(
    *,
    script: str,
    task: str,
    run: str,
    queue_url: str,
    region: str,
    s3_prefix: str,
    keep_alive: bool = False,
    timeout_seconds: int | None = None,
) -> UserData:
    """The user data, with the agent and the script inline when they fit, else in `uploads`."""
    agent_exec.parse_s3(s3_prefix)  # a bad prefix is the caller's bug: fail before launching
    files = {AGENT_KEY: agent_source(), SCRIPT_KEY: script.encode()}
    for inline in ((AGENT_KEY, SCRIPT_KEY), (AGENT_KEY,), ()):
        text = _render(
            files={k: v for k, v in files.items() if k in inline},
            fetched=[k for k in files if k not in inline],
            script=script,
            task=task,
            run=run,
            queue_url=queue_url,
            region=region,
            s3_prefix=s3_prefix,
            keep_alive=keep_alive,
            timeout_seconds=timeout_seconds,
        )
        if len(text.encode()) <= USER_DATA_LIMIT:
            return UserData(text, {k: v for k, v in files.items() if k not in inline})
    raise ValueError(
        f"the user data of task {task!r} is {len(text.encode())} bytes even with nothing "
        f"inline: EC2 allows {USER_DATA_LIMIT} (are the names or the queue URL that long?)"
    )


def _no_boto3_message(run: str, task: str) -> str:
    """The agent's last message, as the agent would send it, for an image it cannot run on."""
    why = "no python3 with boto3 on the instance, and installing it failed"
    text = f"reconciler: {why}: see README, 'What an image needs for EC2 tasks'\n"
    msg = agent_exec.envelope(run, task, 0, None, {"o": 0, "e": 0})
    msg.update(out=[["e", text]], exit=NO_BOTO3_EXIT, reason=why)
    return json.dumps(msg, separators=(",", ":"))


def _render(
    *,
    files: dict[str, bytes],
    fetched: list[str],
    script: str,
    task: str,
    run: str,
    queue_url: str,
    region: str,
    s3_prefix: str,
    keep_alive: bool,
    timeout_seconds: int | None,
) -> str:
    q = shlex.quote
    stop = (
        'echo "reconciler: keepInstanceAliveAfterFinish: the instance stays up"'
        if keep_alive
        else "shutdown -h now"
    )
    lines = [
        "#!/bin/bash",
        f"# reconciler: EC2 task {task!r} of run {run!r}. The instance shuts down (and, launched",
        "# with InstanceInitiatedShutdownBehavior=terminate, goes away) when this script ends.",
        "set -u -o pipefail",
        f'finish() {{ echo "reconciler: user data finished (exit $?)"; {stop}; }}',
        "trap finish EXIT",
        'export HOME="${HOME:-/root}"',
        f'export AWS_DEFAULT_REGION="${{AWS_DEFAULT_REGION:-{region}}}"',
        f"QUEUE_URL={q(queue_url)} RUN={q(run)} TASK={q(task)} S3_PREFIX={q(s3_prefix)}",
        'work="$HOME/reconciler-task" && mkdir -p "$work" && cd "$work" || exit 1',
        "has_boto3() { python3 -c 'import boto3' >/dev/null 2>&1; }",
        "if ! has_boto3; then",
        '  echo "reconciler: installing boto3"',
        "  dnf install -y -q python3-boto3 || yum install -y -q python3-boto3 ||",
        "    { apt-get update -q && apt-get install -y -q python3-boto3; } ||",
        "    python3 -m pip install -q boto3",
        "fi",
        "if ! has_boto3; then",
        '  echo "reconciler: no python3 with boto3: the task cannot run" >&2',
        '  command -v aws >/dev/null && aws sqs send-message --queue-url "$QUEUE_URL" \\',
        f"    --message-body {q(_no_boto3_message(run, task))} >/dev/null",
        f"  exit {NO_BOTO3_EXIT}",
        "fi",
    ]
    for name, data in files.items():
        lines += [f"base64 -d <<'{DELIMITER}' | gunzip > {name}", packed(data) + DELIMITER]
    if fetched:
        lines += [
            f"python3 - \"$S3_PREFIX\" {' '.join(fetched)} <<'{DELIMITER}' || exit 1",
            "import sys, boto3",
            'bucket, _, prefix = sys.argv[1][len("s3://"):].partition("/")',
            "for name in sys.argv[2:]:",
            '    boto3.client("s3").download_file(bucket, prefix + name, name)',
            DELIMITER,
        ]
    # A script with a `#!` line runs with that interpreter, as it would by hand.
    shebang = script.startswith("#!")
    timeout = f" --timeout {int(timeout_seconds)}" if timeout_seconds else ""
    if shebang:
        lines.append(f"chmod +x {SCRIPT_KEY}")
    lines += [
        'python3 agent.py exec --queue-url "$QUEUE_URL" --run "$RUN" --task "$TASK" \\',
        f'  --s3-prefix "$S3_PREFIX"{timeout} -- '
        + (f"./{SCRIPT_KEY}" if shebang else f"bash {SCRIPT_KEY}"),
    ]
    return "\n".join(lines) + "\n"
