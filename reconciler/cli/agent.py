"""`reconciler agent exec`: the agent of EC2 tasks, for images that have this package installed.

The same code as `python3 agent.py exec ...`, which the user data runs from the single file
`reconciler/agent/exec.py` when the image has only Python 3 and boto3. Imported when the command
runs: the other commands do not pay for boto3.
"""

from __future__ import annotations

import click

from reconciler.cli import values
from reconciler.cli.help import ExampleCommand, SectionedGroup


@click.command(
    "exec",
    cls=ExampleCommand,
    short_help="run a command, streaming its output to SQS and S3",
    help="Run COMMAND, send its stdout, stderr and exit code to the run's SQS queue (batched, "
    "numbered, never dropped; nothing while it is idle) and keep them in S3 under --s3-prefix. "
    "Exits with the command's exit code (124 after --timeout). The user data of an EC2 task "
    "runs this on the instance.",
    examples=[
        "reconciler agent exec --queue-url URL --run RUN --task count \\",
        "    --s3-prefix s3://bucket/runs/RUN/count/ --timeout 3600 -- bash task.sh",
    ],
    context_settings={"allow_interspersed_args": False},
)
@click.option("--queue-url", required=True, help="the run's SQS queue")
@click.option("--run", "run_id", required=True, help="the run the task belongs to")
@click.option("--task", required=True, help="the task's name: the receiver's key")
@click.option("--s3-prefix", default=None, help="s3://bucket/prefix/ for the durable copy")
@click.option(
    "--timeout",
    type=values.positive_seconds(),
    default=None,
    help="seconds; then the command's process group is killed and the exit code is 124",
)
@click.option("--region", default=None, help="the queue's region (default: the environment's)")
# Tuning, as `agent.py exec` takes it (tests and benchmarks): hidden from help.
@click.option("--flush-bytes", type=click.IntRange(1), default=64 * 1024, hidden=True)
@click.option("--flush-seconds", type=values.positive_seconds(), default=1.0, hidden=True)
@click.option("--upload-seconds", type=values.positive_seconds(), default=30.0, hidden=True)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(
    queue_url: str,
    run_id: str,
    task: str,
    s3_prefix: str | None,
    timeout: float | None,
    region: str | None,
    command: tuple[str, ...],
    **tuning: float,
) -> int:
    from reconciler.agent import exec as agent

    if s3_prefix:
        try:
            agent.parse_s3(s3_prefix)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--s3-prefix") from None
    config = agent.Config(
        list(command), queue_url, run_id, task, s3_prefix, timeout, region, **tuning
    )
    return agent.run(config)


@click.group(
    "agent",
    cls=SectionedGroup,
    sections=[("Commands", [exec_command])],
    short_help="the agent that runs an EC2 task's script on its instance",
    examples=["reconciler agent exec --help"],
)
def agent_group() -> None:
    """The agent that runs an EC2 task's script on its instance and streams its output home."""
