"""The GitOps workflow (manifests/gitops/github-actions.yml): its steps' scripts run here with
stand-ins for `gh` and `reconciler`, so what it does with comments and plans is checked, not
only its shape. `gh api --jq` is played by jq itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.render.markdown import HASH_MARKER, MARKER

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "manifests" / "gitops" / "github-actions.yml"
BOT = "github-actions[bot]"

GH = r'''#!PYTHON
"""gh, as far as the workflow uses it: `gh api` GETs from a fixture, writes logged."""
import json, os, subprocess, sys
args = sys.argv[1:]
assert args[0] == "api", args
method, path, jq, body = "GET", None, None, None
i = 1
while i < len(args):
    a = args[i]
    if a == "--paginate":
        pass
    elif a == "--method":
        method, i = args[i + 1], i + 1
    elif a == "--jq":
        jq, i = args[i + 1], i + 1
    elif a == "-F":
        key, _, value = args[i + 1].partition("=")
        body, i = open(value[1:]).read(), i + 1
    else:
        path = a
    i += 1
with open(os.environ["GH_LOG"], "a") as log:
    log.write(json.dumps({"method": method, "path": path, "body": body}) + "\n")
if method == "GET":
    data = json.load(open(os.environ["GH_FIXTURE"])).get(path, [])
    out = subprocess.run(["jq", "-r", jq], input=json.dumps(data), text=True,
                         capture_output=True, check=True).stdout
    sys.stdout.write(out)
'''


def workflow() -> dict[str, Any]:
    return dict(YAML(typ="safe").load(WORKFLOW.read_text()))


def step(job: str, name_start: str) -> dict[str, Any]:
    steps = workflow()["jobs"][job]["steps"]
    return next(s for s in steps if str(s.get("name", "")).startswith(name_start))


@pytest.fixture
def shell(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Runs a step's script as Actions does (bash -e), with the stand-ins first on PATH."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: it plays gh's --jq")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(GH.replace("PYTHON", sys.executable))
    gh.chmod(0o755)

    def run(
        script: str, fixture: dict[str, Any], env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], dict[str, str]]:
        (tmp_path / "fixture.json").write_text(json.dumps(fixture))
        log, output = tmp_path / "gh.log", tmp_path / "github_output"
        log.write_text("")
        output.write_text("")
        full_env = {
            **os.environ,
            **{k: str(v) for k, v in workflow()["env"].items()},
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "GH_FIXTURE": str(tmp_path / "fixture.json"),
            "GH_LOG": str(log),
            "GITHUB_OUTPUT": str(output),
            **(env or {}),
        }
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        return done, calls, outputs

    return run


def comment(id_: int, user: str, body: str) -> dict[str, Any]:
    return {"id": id_, "user": {"login": user}, "body": body}


PLAN = f"{MARKER}\n## Reconciler plan\n\nchanges\n---\n{HASH_MARKER.format('0123456789abcdef')}\n"
COMMENTS = "repos/o/r/issues/7/comments"


def test_the_first_push_adds_the_plan_comment(shell, tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text(PLAN)
    script = step("plan", "Comment the plan")["run"]
    done, calls, _ = shell(script, {COMMENTS: [comment(1, "alice", "looks good")]},
                           {"REPO": "o/r", "PR": "7"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    writes = [c for c in calls if c["method"] != "GET"]
    assert writes == [{"method": "POST", "path": COMMENTS, "body": PLAN}]


def test_later_pushes_update_that_one_comment(shell, tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text(PLAN)
    existing = [
        comment(40, "alice", f"{MARKER} quoted by a person: not the plan comment"),
        comment(42, BOT, f"{MARKER}\nold plan"),
        comment(43, BOT, "some other bot message"),
    ]
    script = step("plan", "Comment the plan")["run"]
    done, calls, _ = shell(script, {COMMENTS: existing}, {"REPO": "o/r", "PR": "7"})
    assert done.returncode == 0, done.stderr
    writes = [c for c in calls if c["method"] != "GET"]
    assert writes == [{"method": "PATCH", "path": "repos/o/r/issues/comments/42", "body": PLAN}]


@pytest.mark.parametrize(("code", "changes"), [(0, "false"), (2, "true")])
def test_the_plan_step_gates_on_the_diff_exit_code(shell, tmp_path: Path, code, changes) -> None:
    fake = tmp_path / "bin" / "reconciler"
    fake.write_text(f"#!/bin/sh\necho '{MARKER}'\necho plan\nexit {code}\n")
    fake.chmod(0o755)
    done, _, outputs = shell(step("plan", "Plan")["run"], {})
    assert done.returncode == 0, done.stderr
    assert outputs == {"exit-code": str(code), "changes": changes}
    assert (tmp_path / "plan.md").read_text().startswith(MARKER)


def test_a_failed_plan_replaces_the_comment_without_a_plan_to_apply(shell, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "reconciler"
    blocked = f"{MARKER}\nblocked plan\n{HASH_MARKER.format('0123456789abcdef')}\n"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{blocked}'\necho 'error: refused' >&2\nexit 1\n")
    fake.chmod(0o755)
    done, _, outputs = shell(step("plan", "Plan")["run"], {})
    assert done.returncode == 0, done.stderr  # the comment step runs; the gate step fails
    assert outputs == {"exit-code": "1"}
    text = (tmp_path / "plan.md").read_text()
    assert text.startswith(MARKER) and "failed with exit code 1" in text
    assert "error: refused" in text and "blocked plan" in text
    assert "plan-hash" not in text, "a plan that failed must never be applied at merge"
    gate = step("plan", "Fail the check")
    assert (
        gate["if"] == "steps.plan.outputs.exit-code != '0' && steps.plan.outputs.exit-code != '2'"
    )


def test_the_merge_applies_the_reviewed_plan_hash(shell) -> None:
    digest = "89abcdef01234567"
    fixture = {
        "repos/o/r/commits/abc/pulls": [{"number": 7}],
        COMMENTS: [
            comment(40, "mallory", f"{MARKER}\n{HASH_MARKER.format('ffffffffffffffff')}"),
            comment(42, BOT, f"{MARKER}\nplan\n{HASH_MARKER.format(digest)}\n<sub>...</sub>"),
        ],
    }
    script = step("apply", "Find the plan reviewed")["run"]
    done, _, outputs = shell(script, fixture, {"REPO": "o/r", "SHA": "abc"})
    assert done.returncode == 0, done.stderr
    assert outputs == {"hash": digest}
    steps = workflow()["jobs"]["apply"]["steps"]
    applies = [s["run"] for s in steps if "reconciler apply" in str(s.get("run", ""))]
    assert applies == [
        'reconciler apply -f "$MANIFESTS" --expect-plan "${{ steps.reviewed.outputs.hash }}"'
    ]


@pytest.mark.parametrize(
    "fixture",
    [
        {"repos/o/r/commits/abc/pulls": []},
        {"repos/o/r/commits/abc/pulls": [{"number": 7}], COMMENTS: [comment(1, BOT, "hi")]},
    ],
    ids=["pushed-without-a-pull-request", "no-plan-comment"],
)
def test_without_a_reviewed_plan_nothing_is_applied(shell, fixture) -> None:
    script = step("apply", "Find the plan reviewed")["run"]
    done, _, outputs = shell(script, fixture, {"REPO": "o/r", "SHA": "abc"})
    assert done.returncode == 1
    assert "hash" not in outputs


def test_permissions_are_the_least_each_job_needs() -> None:
    jobs = workflow()["jobs"]
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert jobs["apply"]["permissions"]["pull-requests"] == "read"
    assert jobs["apply"]["if"] == "github.event_name == 'push'"
