"""Secrets in clear: which values count as secrets, how the diff hides them while still
comparing them, and the local `sensitive` flag that AWS never sees."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.engine.diff import Change, diff
from reconciler.kinds.base import spec_dict
from reconciler.models.job_definition import JobDefinition, JobDefinitionSpec
from reconciler.models.pipeline import Pipeline
from reconciler.models.sensitive import (
    SENSITIVE,
    looks_secret,
    sensitivity_flags,
)
from reconciler.runs import identity
from reconciler.runs.submit import Unit, _request

OLD, NEW = "old-s3cr3t-value", "new-s3cr3t-value"


@pytest.mark.parametrize(
    "name",
    [
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "DBPASSWORD",
        "db_passwd",
        "dbPassword",
        "apiKey",
        "OPENAI_API_KEY",
        "SSH_KEY",
        "PRIVATE_KEY",
        "KEY",
        "DB_PWD",
        "GPG_PASSPHRASE",
        "GOOGLE_CREDENTIALS",
        "splunk-token",
        "client.secret",
    ],
)
def test_names_that_look_secret(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("STRESS_BUCKET", "no secret word"),
        ("KEYCLOAK_URL", "KEY only as a whole word"),
        ("MONKEY", "KEY only as a whole word"),
        ("PWD", "the working directory"),
        ("AWS_ACCESS_KEY_ID", "an identifier (Terraform shows access key IDs too)"),
        ("KMS_KEY_ID", "an identifier"),
        ("DB_SECRET_ARN", "a reference to a secret"),
        ("DB_PASSWORD_FILE", "a path to a file holding the secret"),
        ("TOKEN_TTL", "describes a token"),
        ("S3_KEY_PREFIX", "a data key"),
        ("PARTITION_KEY", "a data key"),
        ("S3_KEY", "an object key"),
    ],
)
def test_names_that_do_not(name: str, why: str) -> None:
    assert not looks_secret(name), why


def test_a_url_with_a_password_is_a_secret_whatever_its_name() -> None:
    assert looks_secret("DATABASE_URL", "postgres://app:hunter2@db:5432/app")
    assert not looks_secret("DATABASE_URL", "postgres://db:5432/app")
    assert not looks_secret("BUCKET", "s3://bucket/key")


def _jd(env: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "type": "container",
        "containerProperties": {"image": "busybox", "vcpus": 1, "memory": 512, "environment": env},
        **spec,
    }


def _flags(desired: dict[str, Any]) -> dict[Any, bool]:
    return sensitivity_flags(JobDefinitionSpec.model_validate(desired))


def _text(changes: list[Change]) -> str:
    return "\n".join([*(str(c) for c in changes), *(repr(c.as_dict()) for c in changes)])


def test_a_changed_secret_is_a_change_that_shows_no_value() -> None:
    actual = _jd([{"name": "AWS_SECRET_ACCESS_KEY", "value": OLD}, {"name": "MODE", "value": "a"}])
    desired = _jd([{"name": "AWS_SECRET_ACCESS_KEY", "value": NEW}, {"name": "MODE", "value": "b"}])
    changes = diff(desired, actual, JobDefinitionSpec)
    assert [c.path for c in changes] == [
        "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value",
        "containerProperties.environment.MODE.value",
    ], "the secret's change is still detected, per entry"
    secret, mode = changes
    assert secret.sensitive and (secret.old, secret.new) == (SENSITIVE, SENSITIVE)
    assert str(secret) == (
        "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value: (sensitive value changed)"
    )
    assert secret.as_dict() == {
        "path": "containerProperties.environment.AWS_SECRET_ACCESS_KEY.value",
        "old": SENSITIVE,
        "new": SENSITIVE,
        "sensitive": True,
    }
    assert str(mode) == "containerProperties.environment.MODE.value: a -> b", "others shown"
    assert OLD not in _text(changes) and NEW not in _text(changes)


def test_an_added_or_removed_secret_entry_shows_its_name_not_its_value() -> None:
    actual = _jd([{"name": "DB_PASSWORD", "value": OLD}])
    desired = _jd([{"name": "API_TOKEN", "value": NEW}])
    added, removed = diff(desired, actual, JobDefinitionSpec)
    assert added.path == "containerProperties.environment.API_TOKEN"
    assert added.new == {"name": "API_TOKEN", "value": SENSITIVE} and added.old is None
    assert removed.path == "containerProperties.environment.DB_PASSWORD"
    assert removed.old == {"name": "DB_PASSWORD", "value": SENSITIVE} and removed.new is None
    assert OLD not in _text([added, removed]) and NEW not in _text([added, removed])


def test_a_whole_environment_appearing_is_reported_entry_by_entry() -> None:
    actual = _jd([])
    desired = _jd([{"name": "MODE", "value": "fast"}, {"name": "DB_PASSWORD", "value": NEW}])
    secret, mode = diff(desired, actual, JobDefinitionSpec)
    assert secret.path == "containerProperties.environment.DB_PASSWORD"
    assert secret.new == {"name": "DB_PASSWORD", "value": SENSITIVE}
    assert mode.path == "containerProperties.environment.MODE"
    assert mode.new == {"name": "MODE", "value": "fast"}, "a neighbour stays readable"


def test_a_secret_inside_a_larger_changed_value_is_masked_alone() -> None:
    actual = {"type": "multinode", "nodeProperties": {"numNodes": 1}}
    desired = _jd([{"name": "MODE", "value": "fast"}, {"name": "DB_PASSWORD", "value": NEW}])
    changes = {c.path: c for c in diff(desired, actual, JobDefinitionSpec)}
    whole = changes["containerProperties"]
    assert not whole.sensitive and whole.old is None
    assert whole.new["environment"] == {
        "DB_PASSWORD": {"name": "DB_PASSWORD", "value": SENSITIVE},
        "MODE": {"name": "MODE", "value": "fast"},
    }
    assert whole.new["image"] == "busybox"
    assert NEW not in _text(list(changes.values()))


def test_the_sensitive_flag_hides_a_plain_name_and_false_shows_a_secret_looking_one() -> None:
    actual = _jd([{"name": "DB_HOST", "value": OLD}, {"name": "SSH_KEY", "value": "k1"}])
    declared = [
        {"name": "DB_HOST", "value": NEW, "sensitive": True},
        {"name": "SSH_KEY", "value": "k2", "sensitive": False},
    ]
    flags = _flags(_jd(declared))
    sent = _jd([{"name": e["name"], "value": e["value"]} for e in declared])  # flags are ours
    changes = diff(sent, actual, JobDefinitionSpec, flags=flags)
    host, key = changes
    assert host.sensitive and OLD not in _text(changes) and NEW not in _text(changes)
    assert str(key) == "containerProperties.environment.SSH_KEY.value: k1 -> k2"
    unflagged = diff(sent, actual, JobDefinitionSpec)
    assert not unflagged[0].sensitive and unflagged[1].sensitive, "without flags, names decide"


def test_parameters_and_log_driver_options_are_hidden_by_name() -> None:
    log = {"logDriver": "splunk", "options": {"splunk-token": OLD, "splunk-url": "https://a"}}
    actual = _jd([], parameters={"dbPassword": OLD, "mode": "a"})
    actual["containerProperties"]["logConfiguration"] = log
    desired = copy.deepcopy(actual)
    desired["parameters"] = {"dbPassword": NEW, "mode": "b"}
    desired["containerProperties"]["logConfiguration"]["options"] = {
        "splunk-token": NEW,
        "splunk-url": "https://b",
    }
    changes = {c.path: c for c in diff(desired, actual, JobDefinitionSpec)}
    assert changes["parameters.dbPassword"].sensitive
    assert changes["containerProperties.logConfiguration.options.splunk-token"].sensitive
    assert str(changes["parameters.mode"]) == "parameters.mode: a -> b"
    assert not changes["containerProperties.logConfiguration.options.splunk-url"].sensitive
    assert OLD not in _text(list(changes.values())) and NEW not in _text(list(changes.values()))


def test_secret_references_are_shown_a_reviewer_must_see_which_secret_a_job_reads() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-{}"
    actual = _jd([])
    actual["containerProperties"]["secrets"] = [{"name": "DB_PASSWORD", "valueFrom": arn[:-2]}]
    desired = copy.deepcopy(actual)
    desired["containerProperties"]["secrets"] = [{"name": "DB_PASSWORD", "valueFrom": arn + "2"}]
    (change,) = diff(desired, actual, JobDefinitionSpec)
    assert not change.sensitive and change.new == arn + "2"


def test_untyped_fields_hide_secret_entries_by_shape() -> None:
    def multinode(value: str) -> dict[str, Any]:
        env = [{"name": "DB_PASSWORD", "value": value}, {"name": "MODE", "value": "x"}]
        node = {"targetNodes": "0:", "container": {"image": "busybox", "environment": env}}
        nodes = {"numNodes": 2, "nodeRangeProperties": [node]}
        return {"type": "multinode", "nodeProperties": nodes}

    (change,) = diff(multinode(NEW), multinode(OLD), JobDefinitionSpec)
    assert change.path == "nodeProperties.nodeRangeProperties"
    assert change.sensitive, "only a secret differs: a sensitive change, not an unreadable x -> x"
    assert OLD not in _text([change]) and NEW not in _text([change])
    desired = multinode(NEW)
    desired["nodeProperties"]["nodeRangeProperties"][0]["container"]["image"] = "busybox:2"
    (partly,) = diff(desired, multinode(OLD), JobDefinitionSpec)
    assert not partly.sensitive and "busybox:2" in str(partly) and SENSITIVE in str(partly)
    assert OLD not in _text([partly]) and NEW not in _text([partly])


def test_a_change_marked_sensitive_never_holds_the_values_it_was_given() -> None:
    change = Change("p", OLD, NEW, sensitive=True)
    assert (change.old, change.new) == (SENSITIVE, SENSITIVE)
    assert OLD not in repr(change) and NEW not in repr(change)
    assert str(Change("p", None, NEW, sensitive=True)) == "p: (unset) -> (sensitive value)"
    assert str(Change("p", OLD, None, sensitive=True)) == "p: (sensitive value) -> (unset)"
    assert Change(**change.as_dict()) == change, "as_dict round-trips (get's drift lines)"


# -- the local flag: never sent to AWS, never a diff -----------------------------------------

JD_DOC = {
    "kind": "JobDefinition",
    "metadata": {"name": "leader"},
    "spec": _jd([{"name": "DB_HOST", "value": "db.internal", "sensitive": True}]),
}


def test_the_sensitive_flag_is_not_in_what_aws_is_sent_and_makes_no_diff() -> None:
    res = JobDefinition.model_validate(JD_DOC)
    request = spec_dict(res)
    assert request["containerProperties"]["environment"] == [
        {"name": "DB_HOST", "value": "db.internal"}
    ]
    assert "revisionHistoryLimit" not in request, "top-level local fields still dropped"
    live = _jd([{"name": "DB_HOST", "value": "db.internal"}])  # what AWS has
    assert diff(request, live, JobDefinitionSpec, flags=sensitivity_flags(res.spec)) == []
    flagged = copy.deepcopy(request)
    flagged["containerProperties"]["environment"][0]["sensitive"] = True
    assert diff(flagged, live, JobDefinitionSpec) == [], "the canonical form drops it too"


PIPELINE_DOC = {
    "kind": "Pipeline",
    "metadata": {"name": "p"},
    "spec": {
        "jobQueue": "q",
        "tasks": [
            {
                "name": "t",
                "jobDefinition": "leader",
                "containerOverrides": {
                    "environment": [{"name": "DB_HOST", "value": "h", "sensitive": True}]
                },
            }
        ],
    },
}


def test_a_task_override_flag_is_not_submitted_and_starts_no_new_run(ctx: Any) -> None:
    flagged = Pipeline.model_validate(PIPELINE_DOC)
    plain_doc = copy.deepcopy(PIPELINE_DOC)
    del plain_doc["spec"]["tasks"][0]["containerOverrides"]["environment"][0]["sensitive"]
    plain = Pipeline.model_validate(plain_doc)
    assert identity.run_id(flagged, {}) == identity.run_id(plain, {})
    task = flagged.task_list()[0]
    request = _request(ctx, flagged, "r1", Unit("t", task), "q", {})
    assert request["containerOverrides"] == {"environment": [{"name": "DB_HOST", "value": "h"}]}
