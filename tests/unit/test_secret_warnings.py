"""The warning about a secret written in clear in a manifest: once per value, located where
it is written, on stderr (stdout stays machine-readable), never quoting the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from reconciler.models.job_definition import JobDefinitionSpec
from reconciler.models.pipeline import PipelineSpec
from reconciler.models.sensitive import plain_secrets


def _jd(env: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "type": "container",
        "containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512, "environment": env},
        **spec,
    }


def test_plain_secrets_are_found_once_each_where_they_are_declared() -> None:
    spec = JobDefinitionSpec.model_validate(
        _jd(
            [
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "x"},
                {"name": "MODE", "value": "fast"},
                {"name": "DB_HOST", "value": "h", "sensitive": True},  # decided: no warning
                {"name": "SSH_KEY", "value": "k", "sensitive": False},  # decided: no warning
                {"name": "DATABASE_URL", "value": "postgres://u:p@h/db"},
            ],
            parameters={"dbPassword": "x"},
        )
    )
    found = [(f.loc, f.name) for f in plain_secrets(spec)]
    assert found == [
        (("parameters", "dbPassword"), "dbPassword"),
        (("containerProperties", "environment", 0), "AWS_SECRET_ACCESS_KEY"),
        (("containerProperties", "environment", 4), "DATABASE_URL"),
    ]
    messages = {f.name: f.message for f in plain_secrets(spec)}
    assert "Secrets Manager" in messages["AWS_SECRET_ACCESS_KEY"]
    assert "SSM Parameter Store" in messages["AWS_SECRET_ACCESS_KEY"]
    assert "sensitive: false" in messages["AWS_SECRET_ACCESS_KEY"]
    assert "sensitive: false" not in messages["dbPassword"], "a map entry has no flag"


MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: JobDefinition
metadata:
  name: leader
spec:
  containerProperties:
    image: busybox
    vcpus: 1
    memory: 512
    environment:
      - {name: MODE, value: fast}
      - {name: AWS_SECRET_ACCESS_KEY, value: abc123}
"""


def test_validate_warns_once_per_value_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jd.yaml"
    path.write_text(MANIFEST)
    capsys.readouterr()
    assert main(["validate", "-f", str(path)]) == 0, "a warning is no error"
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {path}:12: JobDefinition/leader: spec.containerProperties.environment.1: "
        "AWS_SECRET_ACCESS_KEY looks like a secret written in clear (AWS and the manifest's "
        "history keep it readable): use a secrets entry of the job definition whose valueFrom "
        "is the ARN of a Secrets Manager secret or an SSM Parameter Store parameter; or set "
        "sensitive: false if it is no secret"
    ]
    assert "abc123" not in captured.out + captured.err
    assert main(["validate", "-f", str(path), "-o", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("[") and "warning:" in captured.err, "stdout stays JSON"


def test_task_overrides_and_multinode_environments_are_looked_at_too() -> None:
    pipeline = PipelineSpec.model_validate(
        {
            "jobQueue": "q",
            "tasks": [
                {
                    "name": "t",
                    "jobDefinition": "leader",
                    "containerOverrides": {
                        "environment": [
                            {"name": "MODE", "value": "x"},
                            {"name": "GITHUB_TOKEN", "value": "x"},
                        ]
                    },
                }
            ],
        }
    )
    assert [(f.loc, f.name) for f in plain_secrets(pipeline)] == [
        (("tasks", 0, "containerOverrides", "environment", 1), "GITHUB_TOKEN")
    ]
    env = [{"name": "MODE", "value": "x"}, {"name": "DB_PASSWORD", "value": "x"}]
    node = {"targetNodes": "0:", "container": {"image": "busybox", "environment": env}}
    multinode = JobDefinitionSpec.model_validate(
        {"type": "multinode", "nodeProperties": {"numNodes": 1, "nodeRangeProperties": [node]}}
    )
    (found,) = plain_secrets(multinode)
    assert found.name == "DB_PASSWORD" and "sensitive: false" not in found.message
    assert found.loc == ("nodeProperties", "nodeRangeProperties", 0, "container", "environment", 1)
