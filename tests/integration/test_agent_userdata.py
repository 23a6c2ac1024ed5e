"""The built user data, run locally with bash as cloud-init would (a fake `shutdown` on PATH that
writes a marker file), its output arriving through the Receiver from the moto server's SQS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.agent.userdata import UserData, build_user_data
from tests.integration.agent_helpers import Stage, agent_env


@pytest.fixture
def stage(moto_endpoint: str, tmp_path: Path) -> Stage:
    return Stage(moto_endpoint, tmp_path / "logs")


def fake_bin(tmp_path: Path, boto3: bool = True) -> Path:
    """Stand-ins on PATH: `shutdown` writes a marker; `python3` has boto3 (or none at all, and
    the package managers fail); `aws` sends an SQS message as the AWS CLI would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "shutdown": f'echo "$@" > {tmp_path / "shutdown-called"}',
        "python3": f'exec {sys.executable} "$@"' if boto3 else "exit 1",
        "aws": f"exec {sys.executable} -c 'import sys, boto3; a = sys.argv[1:]; "
        'boto3.client("sqs").send_message(QueueUrl=a[a.index("--queue-url") + 1], '
        'MessageBody=a[a.index("--message-body") + 1])\' "$@"',
    }
    if not boto3:
        scripts |= {name: "exit 1" for name in ("dnf", "yum", "apt-get")}
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def boot(stage: Stage, tmp_path: Path, data: UserData, boto3: bool = True) -> int:
    """Uploads what the runner uploads, then runs the user data as the instance would."""
    for key, body in data.uploads.items():
        bucket, _, prefix = stage.prefix("task")[len("s3://") :].partition("/")
        stage.s3.put_object(Bucket=bucket, Key=prefix + key, Body=body)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "user-data").write_text(data.text)
    env = agent_env(stage.endpoint)
    del env["PYTHONPATH"]  # the agent is one self-contained file
    env |= {"HOME": str(home), "PATH": f"{fake_bin(tmp_path, boto3)}:/usr/bin:/bin"}
    proc = subprocess.run(
        ["bash", str(tmp_path / "user-data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode


def user_data(stage: Stage, script: str, **options: object) -> UserData:
    return build_user_data(
        script=script,
        task="task",
        run=stage.run,
        queue_url=stage.queue_url,
        region="us-east-1",
        s3_prefix=stage.prefix("task"),
        **options,  # type: ignore[arg-type]
    )


def test_the_user_data_runs_the_script_streams_it_and_shuts_down(
    stage: Stage, tmp_path: Path
) -> None:
    script = 'echo HI\nfor i in `seq 3`; do echo "count: $i"; done\necho BYE >&2\nexit 4\n'
    data = user_data(stage, script)
    assert data.uploads == {}
    assert boot(stage, tmp_path, data) == 4
    stage.follow("task", limit=60)
    assert stage.text("task", "stdout") == ["HI", "count: 1", "count: 2", "count: 3"]
    assert stage.text("task", "stderr") == ["BYE"]
    assert stage.receiver.exit_code("task") == 4
    assert (tmp_path / "shutdown-called").read_text() == "-h now\n"


def test_a_large_script_is_fetched_from_s3_and_a_shebang_is_honoured(
    stage: Stage, tmp_path: Path
) -> None:
    import random

    rnd = random.Random(3)
    lines = [f"{rnd.getrandbits(128):032x}" for _ in range(1500)]
    script = "#!/usr/bin/env python3\nfor line in '''" + "\n".join(lines) + "'''.split():\n"
    script += "    print(line)\n"
    data = user_data(stage, script, timeout_seconds=60)
    assert "task.sh" in data.uploads
    assert boot(stage, tmp_path, data) == 0
    stage.follow("task", limit=60)
    assert stage.text("task", "stdout") == lines
    assert (tmp_path / "shutdown-called").exists()


def test_keep_alive_does_not_shut_down(stage: Stage, tmp_path: Path) -> None:
    assert boot(stage, tmp_path, user_data(stage, "echo up\n", keep_alive=True)) == 0
    stage.follow("task", limit=60)
    assert stage.text("task", "stdout") == ["up"]
    assert not (tmp_path / "shutdown-called").exists()


def test_an_image_without_boto3_fails_the_task_with_a_reason(stage: Stage, tmp_path: Path) -> None:
    assert boot(stage, tmp_path, user_data(stage, "echo never\n"), boto3=False) == 127
    stage.follow("task", limit=60)
    assert stage.receiver.exit_code("task") == 127
    assert "boto3" in (stage.receiver.reason("task") or "")
    assert stage.text("task", "stdout") == []
    assert (tmp_path / "shutdown-called").exists()  # and the instance still goes away
