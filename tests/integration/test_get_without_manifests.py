"""`get` and `delete` without manifests, as kubectl users expect: what the stack owns, read
from AWS by its ownership tags; kinds by plural, singular or short name; KIND/NAME and KIND
NAME...; -l selectors; `not found` exits 1; -o wide shows ARNs; -o yaml is a manifest that
`apply` takes back as a no-op. All over HTTP to moto."""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from tests.conftest import client
from tests.stacks import ce, jd, jq, stack

OURS = stack(ce(), ce("other-ce", labels="{team: infra, tier: batch}"), jq(), jd(), jd("follower"))


@pytest.fixture
def applied(run, write, aws) -> str:
    """Our stack applied, and beside it what must never show: another stack's queue and a
    queue made by hand."""
    path = write(OURS)
    assert run("apply", "-f", path).code == 0
    theirs = write(stack(ce("their-ce"), jq("their-queue", envs=("their-ce",))), "theirs.yaml")
    assert run("apply", "-f", theirs, "--stack", "team-b").code == 0
    client(aws).create_job_queue(
        jobQueueName="hand-queue",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "their-ce"}],
    )
    return path


def _tables(out: str) -> dict[str, list[str]]:
    """Kind -> the NAME column of its table."""
    found: dict[str, list[str]] = {}
    kind = ""
    for line in out.splitlines():
        if line.endswith(":") and " " not in line:
            kind = line[:-1]
            found[kind] = []
        elif kind and line and not line.startswith("NAME"):
            found[kind].append(line.split()[0])
    return found


def test_get_lists_what_the_stack_owns_one_table_per_kind(run, applied):
    got = run("get")
    assert got.code == 0, got.err
    assert _tables(got.out) == {
        "ComputeEnvironment": ["other-ce", "spot-ce"],
        "JobDefinition": ["follower", "leader"],
        "JobQueue": ["main-queue"],
    }
    assert "STATUS" in got.out and "READY" in got.out and "arn:" not in got.out
    assert got.writes == 0
    # One batched read per kind (and the tagging index for job definitions); roles are read
    # as `apply --prune` reads them.
    batch = {k: n for k, n in got.calls.items() if k.startswith("batch:")}
    assert all(n == 1 for n in batch.values()), got.calls

    other = run("get", "--stack", "team-b")
    assert _tables(other.out) == {"ComputeEnvironment": ["their-ce"], "JobQueue": ["their-queue"]}


@pytest.mark.parametrize("word", ["jobqueues", "jobqueue", "JobQueue", "jq"])
def test_kinds_as_kubectl_takes_them(run, applied, word):
    got = run("get", word)
    assert got.code == 0, got.err
    assert _tables(got.out) == {"JobQueue": ["main-queue"]}
    assert not any(k.startswith("batch:DescribeComputeEnvironments") for k in got.calls)


def test_names_and_kinds_in_every_form(run, applied):
    assert _tables(run("get", "ce", "spot-ce", "other-ce").out) == {
        "ComputeEnvironment": ["other-ce", "spot-ce"]
    }
    assert _tables(run("get", "computeenvironment/spot-ce", "jd/leader").out) == {
        "ComputeEnvironment": ["spot-ce"],
        "JobDefinition": ["leader"],
    }
    assert _tables(run("get", "jq,jd").out) == {
        "JobDefinition": ["follower", "leader"],
        "JobQueue": ["main-queue"],
    }


def test_missing_is_not_found_and_exits_1(run, applied):
    got = run("get", "jobqueue", "main-queue", "x")
    assert got.code == 1
    assert 'error: jobqueue "x" not found' in got.err
    assert _tables(got.out) == {"JobQueue": ["main-queue"]}  # what exists is still shown
    # Another stack's and a hand-made queue are not this stack's: not found, with a pointer.
    for name in ("their-queue", "hand-queue"):
        other = run("get", f"jobqueue/{name}")
        assert other.code == 1
        assert f'error: jobqueue "{name}" not found' in other.err
        assert "reconciler export" in other.err
    assert run("get", "jobqueue/x", "-o", "yaml").code == 1


def test_label_selectors(run, applied):
    def names(*selector: str) -> dict[str, list[str]]:
        got = run("get", *selector)
        assert got.code == 0, got.err
        return _tables(got.out)

    genomics = {"ComputeEnvironment": ["spot-ce"], "JobDefinition": ["follower", "leader"]}
    assert names("-l", "team=genomics") == genomics
    assert names("-l", "team==genomics") == genomics
    assert names("-l", "team!=genomics") == {
        "ComputeEnvironment": ["other-ce"],
        "JobQueue": ["main-queue"],  # no team label at all: not equal
    }
    assert names("-l", "tier") == {"ComputeEnvironment": ["other-ce"]}
    assert names("-l", "!team") == {"JobQueue": ["main-queue"]}
    assert names("-l", "team=infra,tier=batch") == {"ComputeEnvironment": ["other-ce"]}
    assert names("-l", "team=infra", "-l", "tier=web") == {}
    assert names("ce", "-l", "team") == {"ComputeEnvironment": ["other-ce", "spot-ce"]}
    bad = run("get", "-l", "team=a=b,=x")
    assert bad.code == 64 and "is not a label requirement" in bad.err


def test_wide_shows_arns_and_labels(run, applied, aws):
    got = run("get", "jq", "-o", "wide")
    arn = client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"][0]["jobQueueArn"]
    assert arn in got.out and "ARN" in got.out and "LABELS" in got.out
    declared = run("get", "-f", applied, "jq", "-o", "wide")
    assert declared.code == 0 and arn in declared.out and "SYNC" in declared.out


def test_get_o_yaml_is_a_manifest_that_applies_as_a_no_op(run, write, applied):
    got = run("get", "-o", "yaml")
    assert got.code == 0, got.err
    assert "note:" not in got.err and "warning:" not in got.err
    docs = list(YAML(typ="safe").load_all(got.out))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("ComputeEnvironment", "other-ce"),
        ("ComputeEnvironment", "spot-ce"),
        ("JobDefinition", "follower"),
        ("JobDefinition", "leader"),
        ("JobQueue", "main-queue"),
    ]
    for d in docs:
        assert set(d) == {"apiVersion", "kind", "metadata", "spec"}
        assert "status" not in d["spec"] and "tags" not in d["spec"]
        assert not any(k.startswith("reconciler.io/") for k in d["metadata"].get("labels", {}))
        assert d["metadata"]["annotations"]["reconciler.io/arn"].startswith("arn:aws:batch:")
    assert docs[1]["metadata"]["labels"] == {"team": "genomics"}
    queue = docs[4]["spec"]
    assert queue["computeEnvironmentOrder"] == [{"computeEnvironment": "spot-ce", "order": 1}]

    back = run("apply", "-f", write(got.out, "got.yaml"))
    assert back.code == 0, back.out + back.err
    assert "No changes" in back.out and back.writes == 0, back.out

    listed = run("get", "jd", "-o", "json")  # several: a kubectl List, which apply reads
    assert json.loads(listed.out)["kind"] == "List"
    assert run("diff", "-f", write(listed.out, "list.json")).code == 0

    one = run("get", "jobdefinition/leader", "-o", "json")
    manifest = json.loads(one.out)
    assert manifest["kind"] == "JobDefinition" and manifest["metadata"]["name"] == "leader"
    assert manifest["spec"]["containerProperties"]["image"] == "busybox:1"
    again = run("diff", "-f", write(one.out, "leader.json"))
    assert again.code == 0, again.out


def test_get_o_yaml_follows_a_blue_green_replacement(run, write, aws):
    """A replaced environment lives under a derived AWS name: the queue's manifest still
    names it by its metadata.name, so the output applies unchanged."""
    assert run("apply", "-f", write(stack(ce(type_="EC2", strategy="BEST_FIT"), jq()))).code == 0
    changed = stack(ce(type_="EC2", strategy="BEST_FIT", instance_types="[c5]"), jq())
    assert run("apply", "--yes", "-f", write(changed, "changed.yaml")).code == 0  # a replacement
    got = run("get", "jq,ce", "-o", "yaml")
    docs = {d["metadata"]["name"]: d for d in YAML(typ="safe").load_all(got.out)}
    arn = docs["spot-ce"]["metadata"]["annotations"]["reconciler.io/arn"]
    assert not arn.endswith("/spot-ce")  # blue/green: a derived AWS name
    order = docs["main-queue"]["spec"]["computeEnvironmentOrder"]
    assert order == [{"computeEnvironment": "spot-ce", "order": 1}]
    back = run("diff", "-f", write(got.out, "back.yaml"))
    assert back.code == 0, back.out


def test_get_o_yaml_never_shows_a_secret(run, write, aws):
    path = write(jd().replace("MODE, value: fast", "DB_PASSWORD, value: hunter2"))
    assert run("apply", "-f", path).code == 0
    got = run("get", "jd/leader", "-o", "yaml")
    assert "hunter2" not in got.out + got.err
    assert "(sensitive value)" in got.out
    assert "placeholder" in got.err
    # Applying the placeholder would overwrite the secret: refused, with no AWS call.
    back = run("apply", "-f", write(got.out, "back.yaml"))
    assert back.code == 1 and "a placeholder for a secret value" in back.err
    assert back.calls == {}


def test_delete_by_name_shows_the_plan_and_deletes_only_that(run, applied, aws):
    dry = run("delete", "jobqueue/main-queue", "--dry-run")
    assert dry.code == 0 and "- JobQueue/main-queue" in dry.out and dry.writes == 0
    gone = run("delete", "--yes", "jq", "main-queue")
    assert gone.code == 0, gone.out + gone.err
    queues = {q["jobQueueName"] for q in client(aws).describe_job_queues()["jobQueues"]}
    assert "main-queue" not in queues and {"their-queue", "hand-queue"} <= queues
    envs = client(aws).describe_compute_environments()["computeEnvironments"]
    assert {"spot-ce", "other-ce"} <= {e["computeEnvironmentName"] for e in envs}


def test_delete_by_name_keeps_the_safety_of_delete_f(run, applied, aws):
    # An environment a queue still uses: refused in the plan, nothing written.
    used = run("delete", "--yes", "ce/spot-ce")
    assert used.code == 1 and "still used by JobQueue main-queue" in used.out
    assert used.writes == 0
    # What the stack does not own is left alone, and the plan says so.
    theirs = run("delete", "--yes", "jobqueue/hand-queue")
    assert (
        theirs.code == 1 and "refused" in theirs.out and "not managed by reconciler" in theirs.out
    )
    assert theirs.writes == 0
    other = run("delete", "--yes", "jobqueue/their-queue")
    assert other.code == 1 and "owned by stack 'team-b'" in other.out and other.writes == 0
    # Missing: not found, before any plan or write (all or nothing).
    missing = run("delete", "--yes", "jq", "main-queue", "nope")
    assert missing.code == 1 and 'error: jobqueue "nope" not found' in missing.err
    assert missing.writes == 0
    # A whole kind needs -l or --all.
    whole = run("delete", "--yes", "jobdefinitions")
    assert whole.code == 64 and "--all" in whole.err and whole.calls == {}
    labelled = run("delete", "--yes", "jd", "-l", "team=genomics")
    assert labelled.code == 0, labelled.out + labelled.err
    assert labelled.calls.get("batch:DeregisterJobDefinition") == 2
    assert run("get", "jd").out.strip() == ""


def test_watch_needs_manifests(run, applied):
    got = run("get", "--watch")
    assert got.code == 64 and "-f" in got.err


def test_no_resources(run, aws):
    got = run("get")
    assert got.code == 0 and got.out == ""
    assert "No resources found in stack 'default'" in got.err


def test_pipelines_are_named_with_manifests(run, aws):
    got = run("get", "pipelines")
    assert got.code == 64 and "name it with -f" in got.err


def test_a_recorded_deletion_policy_round_trips_and_is_honoured(run, write, aws):
    kept = jq().replace("spec:\n", "spec:\n  deletionPolicy: Retain\n", 1)
    assert run("apply", "-f", write(stack(ce(), kept))).code == 0
    got = run("get", "jq/main-queue", "-o", "yaml")
    [doc] = list(YAML(typ="safe").load_all(got.out))
    assert doc["spec"]["deletionPolicy"] == "Retain"
    assert run("diff", "-f", write(stack(ce(), "\n" + got.out), "back.yaml")).code == 0
    retained = run("delete", "--yes", "jq/main-queue")
    assert retained.code == 0 and "deletionPolicy Retain" in retained.out
    assert retained.calls.get("batch:DeleteJobQueue", 0) == 0
    assert client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"]


def test_every_kind_round_trips_a_bucket_too(run, write, aws):
    """Nothing in get or export knows a kind: a kind added later (S3 buckets) lists and
    writes its manifest the same way."""
    from tests.integration.test_bucket import bucket

    assert (
        run("apply", "-f", write(bucket(policy="Delete", extra="  versioning: Enabled\n"))).code
        == 0
    )
    assert _tables(run("get", "buckets").out) == {"Bucket": ["data-bkt"]}
    got = run("get", "bucket/data-bkt", "-o", "yaml")
    assert got.code == 0, got.err
    back = run("diff", "-f", write(got.out, "back.yaml"))
    assert back.code == 0, back.out + back.err
