"""Secrets in clear, over HTTP to moto: a changed secret-looking environment value is applied
to AWS, yet its old and new values appear in no output of diff, apply or get, in any format
(the markdown is what a GitOps workflow posts on a pull request); the local `sensitive` flag
never reaches AWS and never makes a diff."""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from tests.conftest import client
from tests.stacks import infra, pipeline, stack

OLD, NEW = "old-s3cr3t-value", "new-s3cr3t-value"
OLD_HOST, NEW_HOST = "db-old.internal", "db-new.internal"
BY_HAND = "by-hand-s3cr3t"
SECRETS = (OLD, NEW, OLD_HOST, NEW_HOST, BY_HAND)
PATH = "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value"


def _jd(secret: str, host: str, mode: str = "fast", flag: str = ", sensitive: true") -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: JobDefinition
metadata:
  name: leader
spec:
  containerProperties:
    image: busybox:1
    vcpus: 1
    memory: 512
    environment:
      - {{name: AWS_SECRET_ACCESS_KEY, value: "{secret}"}}
      - {{name: DB_HOST, value: "{host}"{flag}}}
      - {{name: MODE, value: {mode}}}
"""


def _no_secret(result, what: str) -> None:  # type: ignore[no-untyped-def]
    for secret in SECRETS:
        assert secret not in result.out + result.err, f"{what} printed {secret!r}"


def _live_env(aws: str) -> list[dict[str, str]]:
    found = client(aws).describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    latest = max(found["jobDefinitions"], key=lambda d: d["revision"])
    return list(latest["containerProperties"]["environment"])


def test_a_changed_secret_is_applied_and_printed_nowhere(run, write, aws):
    first = run("apply", "-f", write(_jd(OLD, OLD_HOST)))
    assert first.code == 0, first.out + first.err
    _no_secret(first, "the first apply")
    assert "AWS_SECRET_ACCESS_KEY looks like a secret" in first.err, "warned, on stderr"
    path = write(_jd(NEW, NEW_HOST, mode="slow"))

    text = run("diff", "-f", path)
    assert text.code == 2, "the change is still detected"
    _no_secret(text, "diff")
    assert f"{PATH}: (sensitive value changed)" in text.out
    assert "containerProperties.environment.DB_HOST.value: (sensitive value changed)" in text.out
    assert "containerProperties.environment.MODE.value: fast -> slow" in text.out
    assert text.err.count("AWS_SECRET_ACCESS_KEY looks like a secret") == 1, "once per value"

    as_json = run("diff", "-f", path, "-o", "json")
    _no_secret(as_json, "diff -o json")
    changes = {c["path"]: c for a in json.loads(as_json.out)["actions"] for c in a["changes"]}
    assert changes[PATH] == {
        "path": PATH,
        "old": "(sensitive value)",
        "new": "(sensitive value)",
        "sensitive": True,
    }
    as_yaml = run("diff", "-f", path, "-o", "yaml")
    _no_secret(as_yaml, "diff -o yaml")
    assert YAML(typ="safe").load(as_yaml.out)["hasChanges"] is True
    as_markdown = run("diff", "-f", path, "-o", "markdown")
    _no_secret(as_markdown, "diff -o markdown")
    assert "*(sensitive value)*" in as_markdown.out

    for args in ((), ("-o", "json"), ("-o", "yaml")):
        got = run("get", "-f", path, *args)
        _no_secret(got, f"get {' '.join(args)}")
        assert "drift (3 fields)" in got.out
    assert f"JobDefinition/leader: {PATH}: (sensitive value changed)" in run("get", "-f", path).out

    applied = run("apply", "-f", path)
    assert applied.code == 0, applied.out + applied.err
    _no_secret(applied, "apply")
    assert applied.calls["batch:RegisterJobDefinition"] == 1
    live = {e["name"]: e["value"] for e in _live_env(aws)}
    assert live == {"AWS_SECRET_ACCESS_KEY": NEW, "DB_HOST": NEW_HOST, "MODE": "slow"}
    assert run("diff", "-f", path).code == 0


def test_a_secret_changed_by_hand_is_drift_shown_without_its_value(run, write, aws):
    path = write(_jd(NEW, NEW_HOST))
    assert run("apply", "-f", path).code == 0
    batch = client(aws)
    latest = batch.describe_job_definitions(jobDefinitionName="leader", status="ACTIVE")
    current = latest["jobDefinitions"][0]
    env = [
        {**e, "value": BY_HAND} if e["name"] == "AWS_SECRET_ACCESS_KEY" else e
        for e in current["containerProperties"]["environment"]
    ]
    batch.register_job_definition(
        jobDefinitionName="leader",
        type="container",
        containerProperties={**current["containerProperties"], "environment": env},
        tags=current["tags"],
    )
    for args in ((), ("-o", "json"), ("-o", "yaml")):
        got = run("get", "-f", path, *args)
        _no_secret(got, f"get {' '.join(args)}")
        assert "drift (1 field)" in got.out
    fixed = run("apply", "-f", path, "-o", "markdown")
    assert fixed.code == 0, fixed.out + fixed.err
    _no_secret(fixed, "apply -o markdown")
    assert {e["name"]: e["value"] for e in _live_env(aws)}["AWS_SECRET_ACCESS_KEY"] == NEW


def test_the_sensitive_flag_is_never_sent_to_aws_and_makes_no_diff(run, write, aws):
    plain = write(_jd(NEW, NEW_HOST, flag=""), "plain.yaml")
    flagged = write(_jd(NEW, NEW_HOST), "flagged.yaml")
    created = run("apply", "-f", flagged)  # botocore rejects a parameter AWS does not know
    assert created.code == 0, created.out + created.err
    assert all(set(e) == {"name", "value"} for e in _live_env(aws))
    assert run("diff", "-f", plain).code == 0, "removing the flag is no change"
    again = run("apply", "-f", flagged)
    assert again.code == 0 and again.writes == 0, again.out


@pytest.fixture
def quick_jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)  # reports default to ./.reconciler/runs


def test_a_task_override_flag_is_never_submitted_and_starts_no_run(srun, write, aws, quick_jobs):
    override = '[{name: STRESS_BUCKET, value: "s3://bucket"}]'
    assert override in pipeline()
    flagged = pipeline().replace(
        override, '[{name: STRESS_BUCKET, value: "s3://bucket"}, {name: API_TOKEN, value: t}]'
    )
    flagged = flagged.replace('value: "s3://bucket"}', 'value: "s3://bucket", sensitive: true}')
    path = write(stack(infra(), flagged), "flagged.yaml")
    submitted = srun("apply", "-f", path)
    assert submitted.code == 0, submitted.out + submitted.err
    assert submitted.calls["batch:SubmitJob"] == 2
    assert "API_TOKEN looks like a secret" in submitted.err
    unflagged = flagged.replace(", sensitive: true}", "}")
    plain = srun("diff", "-f", write(stack(infra(), unflagged), "plain.yaml"))
    assert plain.code == 0, plain.out
