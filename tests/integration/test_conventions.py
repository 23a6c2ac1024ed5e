"""What users expect of a command line like terraform's and kubectl's: destructive plans are
confirmed, `apply --dry-run` exits 0 unless asked, colours only on a terminal, no silent
region, revisions predicted as AWS numbers them, and a reviewed plan applied as reviewed."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.cli import approval
from tests.conftest import REGION, client
from tests.stacks import jd, stack

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROMPT = "Do you want to perform these actions?"


class Terminal:
    """stdin as a person at a terminal: isatty, and an answer to read."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked = 0

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        self.asked += 1
        return self.answer


def _batch_writes(result) -> dict[str, int]:
    """Writes to Batch itself: the stack's lease (DynamoDB) aside."""
    return {
        k: n
        for k, n in result.calls.items()
        if k.startswith("batch:") and not k.split(":", 1)[1].startswith(("Describe", "List"))
    }


def _definitions(aws: str, name: str = "leader") -> list[tuple[int, str]]:
    found = client(aws).describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    return sorted((d["revision"], d["status"]) for d in found)


# -- 1. confirmation of destructive plans ----------------------------------------------------


def test_without_a_terminal_a_delete_needs_yes(run, write, aws):
    path = write(stack(jd()))
    created = run("apply", "-f", path)
    assert created.code == 0, "creating needs no confirmation, terminal or not"
    refused = run("delete", "-f", path)
    assert refused.code == 1
    assert "pass --yes" in refused.err and "no terminal" in refused.err
    assert "Traceback" not in refused.err
    assert refused.calls, "--stats counts a refused command's calls too"
    assert refused.writes == 0, "nothing deleted, and the stack's lease not even taken"
    assert _definitions(aws) == [(1, "ACTIVE")]
    assert "JobDefinition/leader" in refused.out, "the plan was shown first"
    assert "Plan hash" not in refused.out, "delete takes no --expect-plan: no hash to offer"
    deleted = run("delete", "-f", path, "-y")
    assert deleted.code == 0, deleted.err
    assert _definitions(aws) == [(1, "INACTIVE")]


def test_without_a_terminal_a_prune_needs_yes_and_an_update_does_not(run, write, aws):
    run("apply", "-f", write(stack(jd(), jd("follower"))))
    updated = run("apply", "-f", write(stack(jd(image="busybox:2"), jd("follower"))))
    assert updated.code == 0, "a new revision destroys nothing: no confirmation"
    smaller = write(stack(jd(image="busybox:2")), "smaller.yaml")
    refused = run("apply", "-f", smaller, "--prune")
    assert refused.code == 1 and "pass --yes" in refused.err
    assert refused.writes == 0
    assert run("apply", "-f", smaller, "--prune", "--yes").code == 0
    assert _definitions(aws, "follower") == [(1, "INACTIVE")]


@pytest.mark.parametrize("answer", ["no\n", "y\n", "YES please\n", ""])
def test_on_a_terminal_only_yes_goes_ahead(run, write, aws, monkeypatch, answer):
    path = write(stack(jd()))
    run("apply", "-f", path)
    terminal = Terminal(answer)
    monkeypatch.setattr(sys, "stdin", terminal)
    cancelled = run("delete", "-f", path)
    assert terminal.asked == 1
    assert PROMPT in cancelled.out and "Only 'yes' will be accepted" in cancelled.out
    assert cancelled.code == 1 and "cancelled" in cancelled.err
    assert _batch_writes(cancelled) == {}
    assert _definitions(aws) == [(1, "ACTIVE")]


def test_on_a_terminal_yes_carries_out_the_plan_shown(run, write, aws, monkeypatch):
    path = write(stack(jd()))
    run("apply", "-f", path)
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    deleted = run("delete", "-f", path)
    assert deleted.code == 0, deleted.err
    assert deleted.out.index("JobDefinition/leader") < deleted.out.index(PROMPT)
    assert deleted.out.index(PROMPT) < deleted.out.index("Applying:")
    assert _definitions(aws) == [(1, "INACTIVE")]


def test_on_a_terminal_a_plan_without_deletions_is_not_asked_about(run, write, aws, monkeypatch):
    terminal = Terminal("no\n")
    monkeypatch.setattr(sys, "stdin", terminal)
    created = run("apply", "-f", write(stack(jd())))
    assert created.code == 0 and terminal.asked == 0 and PROMPT not in created.out


def test_yes_skips_the_question_on_a_terminal(run, write, aws, monkeypatch):
    path = write(stack(jd()))
    run("apply", "-f", path)
    terminal = Terminal("no\n")
    monkeypatch.setattr(sys, "stdin", terminal)
    assert run("delete", "-f", path, "--yes").code == 0
    assert terminal.asked == 0


# -- 2. apply --dry-run exits like diff only when asked ----------------------------------------


def test_apply_dry_run_exits_0_unless_asked_for_the_detailed_exit_code(run, write, aws):
    path = write(stack(jd()))
    assert run("diff", "-f", path).code == 2, "diff keeps exiting 2 on changes"
    dry = run("apply", "-f", path, "--dry-run")
    assert dry.code == 0 and "JobDefinition/leader" in dry.out and dry.writes == 0
    assert run("apply", "-f", path, "--dry-run", "--detailed-exitcode").code == 2
    run("apply", "-f", path)
    assert run("apply", "-f", path, "--dry-run", "--detailed-exitcode").code == 0
    misuse = run("apply", "-f", path, "--detailed-exitcode")
    assert misuse.code == 64 and "--dry-run" in misuse.err


# -- 3. colours on a terminal only -----------------------------------------------------------


def test_colours_on_a_terminal_and_never_otherwise(run, write, aws, monkeypatch):
    run("apply", "-f", write(stack(jd())))
    path = write(stack(jd(image="busybox:2"), jd("new")), "next.yaml")
    piped = run("diff", "-f", path)
    assert not ANSI.search(piped.out), "stdout is not a terminal here"

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(approval, "_is_terminal", lambda _stream: True)
    coloured = run("diff", "-f", path)
    lines = coloured.out.splitlines()
    new = next(line for line in lines if "JobDefinition/new" in line)
    assert new.startswith("\x1b[32m") and new.endswith("\x1b[0m"), "create: green"
    revision = next(line for line in lines if "JobDefinition/leader " in line)
    assert revision.startswith("\x1b[32m"), "a new revision adds: green"
    assert ANSI.sub("", coloured.out) == piped.out, "colour is all that differs"

    assert not ANSI.search(run("diff", "-f", path, "--no-color").out)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(run("diff", "-f", path).out)
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not count
    assert ANSI.search(run("diff", "-f", path).out)


def test_deletions_are_red_and_refusals_red_and_bold(run, write, aws, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(approval, "_is_terminal", lambda _stream: True)
    path = write(stack(jd()))
    run("apply", "-f", path)
    deleting = run("delete", "-f", path, "--dry-run")
    line = next(x for x in deleting.out.splitlines() if "JobDefinition/leader" in x)
    assert line.startswith("\x1b[31m")
    client(aws).register_job_definition(  # made by hand: not this stack's
        jobDefinitionName="theirs",
        type="container",
        containerProperties={"image": "x", "vcpus": 1, "memory": 512},
    )
    conflict = run("diff", "-f", write(stack(jd("theirs")), "theirs.yaml"))
    line = next(x for x in conflict.out.splitlines() if "JobDefinition/theirs" in x)
    assert line.startswith("\x1b[1;31m"), "a conflict blocks the plan: red and bold"


def test_a_real_terminal_gets_colours_and_the_question(aws, write, tmp_path):
    """The same, through a pseudo-terminal: what a person running the command sees."""
    path = write(stack(jd()))
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("NO_COLOR", None)
    base = [sys.executable, "-m", "reconciler"]
    target = ["--endpoint-url", aws, "--region", REGION]
    assert (
        subprocess.run(
            [*base, "apply", "-f", path, *target], env=env, capture_output=True
        ).returncode
        == 0
    )
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [*base, "delete", "-f", path, *target], env=env, stdin=child, stdout=child, stderr=child
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Enter a value:" not in seen and time.monotonic() < deadline:
        if select.select([main], [], [], 1)[0]:
            seen += os.read(main, 65536)
    os.write(main, b"yes\n")
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([main], [], [], 0.5)[0]:
            try:
                seen += os.read(main, 65536)
            except OSError:
                break
    proc.wait(10)
    os.close(main)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\x1b[31m" in text, "the delete in red"
    assert PROMPT in text and "Apply complete" in text
    assert _definitions(aws) == [(1, "INACTIVE")]


# -- 4. no silent region; missing credentials point at --sandbox --------------------------------


@pytest.fixture
def bare_aws_config(monkeypatch, tmp_path):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_a_missing_region_says_how_to_set_one(bare_aws_config, moto_endpoint, write, capsys):
    from reconciler.cli import main

    code = main(["diff", "-f", write(stack(jd())), "--endpoint-url", moto_endpoint])
    err = capsys.readouterr().err
    assert code == 1
    assert "no AWS region" in err and "--region" in err and "AWS_REGION" in err
    assert "aws configure" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_aws_region_is_honoured(bare_aws_config, moto_endpoint, write, capsys, monkeypatch):
    from reconciler.cli import main

    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = main(["diff", "-f", write(stack(jd())), "--endpoint-url", moto_endpoint])
    assert code == 2
    assert "Plan for stack 'default' in eu-west-3:" in capsys.readouterr().out


def test_missing_credentials_point_at_the_sandbox(bare_aws_config, moto_endpoint, write, capsys):
    from reconciler.cli import main

    argv = ["diff", "-f", write(stack(jd())), "--endpoint-url", moto_endpoint, "--region", REGION]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert "no AWS credentials" in err and "--sandbox" in err and "aws configure" in err
    assert "Traceback" not in err


# -- 5. the revision AWS will really assign ----------------------------------------------------


def test_a_recreated_definition_is_predicted_at_the_revision_aws_gives(run, write, aws):
    path = write(stack(jd()))
    run("apply", "-f", path)
    assert run("delete", "-f", path, "--yes").code == 0
    plan = run("diff", "-f", path)
    assert "create: revision 2 (AWS numbers on from deregistered revision 1)" in plan.out
    applied = run("apply", "-f", path)
    assert "leader:2 registered" in applied.out
    assert _definitions(aws) == [(1, "INACTIVE"), (2, "ACTIVE")]


def test_a_new_revision_after_a_deregistered_one_is_predicted(run, write, aws):
    run("apply", "-f", write(stack(jd())))
    run("apply", "-f", write(stack(jd(image="busybox:2"))))
    client(aws).deregister_job_definition(jobDefinition="leader:2")  # by hand: 1 is current
    plan = run("diff", "-f", write(stack(jd(image="busybox:3"))))
    assert "new revision: revision 3 (after 1)" in plan.out
    applied = run("apply", "-f", write(stack(jd(image="busybox:3"))))
    assert "leader:3 registered" in applied.out


# -- 9. the reviewed plan, and nothing else --------------------------------------------------


def _hash(text: str) -> str:
    found = re.search(r"^Plan hash: ([0-9a-f]{16})", text, re.M)
    assert found, text
    return found.group(1)


def test_expect_plan_applies_the_reviewed_plan(run, write, aws):
    path = write(stack(jd()))
    reviewed = _hash(run("diff", "-f", path).out)
    applied = run("apply", "-f", path, "--expect-plan", reviewed)
    assert applied.code == 0, applied.err
    assert _definitions(aws) == [(1, "ACTIVE")]


def test_expect_plan_refuses_a_plan_that_changed_since(run, write, aws):
    run("apply", "-f", write(stack(jd())))
    wanted = write(stack(jd(image="busybox:2")), "wanted.yaml")
    review = run("diff", "-f", wanted)
    assert "revision 2 (after 1)" in review.out
    reviewed = _hash(review.out)
    assert run("apply", "-f", write(stack(jd(image="busybox:3")))).code == 0  # someone else
    refused = run("apply", "-f", wanted, "--expect-plan", reviewed)
    assert refused.code == 1
    assert f"it was {reviewed}" in refused.err and "nothing was changed" in refused.err
    assert "revision 3 (after 2)" in refused.out, "the plan as it is now, for a new review"
    assert refused.calls and _batch_writes(refused) == {}
    assert _definitions(aws) == [(1, "ACTIVE"), (2, "ACTIVE")]


def test_a_saved_plan_is_applied_only_while_it_is_still_the_plan(run, write, aws, tmp_path):
    path = write(stack(jd()))
    saved = tmp_path / "plan.json"
    diff = run("diff", "-f", path, "-o", "json")
    saved.write_text(diff.out)
    assert json.loads(diff.out)["planHash"] == _hash(run("diff", "-f", path).out)

    changed = write(stack(jd(image="busybox:2")))  # the same file, edited after the review
    refused = run("apply", "-f", changed, "--plan", str(saved))
    assert refused.code == 1 and "the plan changed since it was reviewed" in refused.err
    assert refused.calls and _batch_writes(refused) == {}
    assert _definitions(aws) == []

    back = write(stack(jd()))
    applied = run("apply", "-f", back, "--plan", str(saved))
    assert applied.code == 0, applied.err
    assert _definitions(aws) == [(1, "ACTIVE")]
    again = run("apply", "-f", back, "--plan", str(saved))
    assert again.code == 1 and _batch_writes(again) == {}, "applied once: that plan is gone"


def test_a_reviewed_deletion_needs_no_second_confirmation(run, write, aws):
    path = write(stack(jd()))
    run("apply", "-f", path)
    smaller = write(stack(jd("other")), "smaller.yaml")
    reviewed = _hash(run("diff", "-f", smaller, "--prune").out)
    applied = run("apply", "-f", smaller, "--prune", "--expect-plan", reviewed)
    assert applied.code == 0, applied.err
    assert _definitions(aws) == [(1, "INACTIVE")]


def test_bad_plan_hashes_and_files_are_usage_errors(run, write, aws, tmp_path):
    path = write(stack(jd()))
    assert run("apply", "-f", path, "--expect-plan", "nothex").code == 64
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    no_hash = run("apply", "-f", path, "--plan", str(empty))
    assert no_hash.code == 64 and "planHash" in no_hash.err
    both = run("apply", "-f", path, "--plan", str(empty), "--expect-plan", "0" * 16)
    assert both.code == 64
    assert _definitions(aws) == []
