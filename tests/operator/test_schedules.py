"""The operator with Schedule and Notification objects, and the job state changes of a run it
follows, said as events with the Slack message's fields."""

from __future__ import annotations

from tests import stacks
from tests.conftest import client
from tests.integration.test_notification import _setup, notification
from tests.integration.test_schedule import schedule, task
from tests.operator.conftest import NAMESPACE, condition, manifest, wait_for
from tests.operator.test_operator import TASK


def _schedules(aws: str) -> list[str]:
    """Every schedule's name: the operator's stack is the namespace, so is its group's name."""
    return [s["Name"] for s in client(aws, "scheduler").list_schedules()["Schedules"]]


def test_a_schedule_is_created_reports_its_next_firing_and_is_deleted(start_operator, aws):
    op = start_operator()
    for text in (stacks.ce(), stacks.jq(), stacks.jd("leader"), task(), schedule()):
        op.client.create(NAMESPACE, manifest(text))
    obj = op.wait_condition("Schedule", "hourly", "Ready", "True", timeout=60)
    assert condition(obj, "Synced")["status"] == "True"
    assert obj["status"]["state"] == "ENABLED"
    assert obj["status"]["nextFiring"].endswith(("CET", "CEST"))
    assert obj["status"]["target"] == "Task/poller"
    assert _schedules(aws) == ["hourly"]
    assert {e["involvedObject"]["name"] for e in op.events("Created")} >= {"hourly"}
    # The task is a template (submitOnApply: false): the operator submits nothing for it.
    assert op.stats.calls["batch:SubmitJob"] == 0

    op.client.delete("Schedule", NAMESPACE, "hourly")
    wait_for("the schedule to be released", lambda: op.obj("Schedule", "hourly") is None)
    assert _schedules(aws) == []
    assert "hourly" in {e["involvedObject"]["name"] for e in op.events("Deleted")}


def test_a_notification_is_wired_and_unwired(start_operator, aws):
    secret, inbox = _setup(aws, "http://127.0.0.1:9/never-posted-to")
    op = start_operator()
    for text in (stacks.ce(), stacks.jq(), notification(secret, inbox)):
        op.client.create(NAMESPACE, manifest(text))
    obj = op.wait_condition("Notification", "team-alerts", "Ready", "True", timeout=60)
    assert condition(obj, "Synced")["status"] == "True"
    rules = client(aws, "events").list_rules()["Rules"]
    assert len(rules) == 1 and rules[0]["State"] == "ENABLED"
    assert client(aws, "sns").list_topics()["Topics"]

    op.client.delete("Notification", NAMESPACE, "team-alerts")
    wait_for(
        "the notification to be released", lambda: op.obj("Notification", "team-alerts") is None
    )
    assert client(aws, "events").list_rules()["Rules"] == []
    assert client(aws, "sns").list_topics()["Topics"] == []


def test_each_job_state_change_of_a_followed_run_is_an_event(start_operator, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    op = start_operator(drift_interval=1.0)
    for text in (stacks.ce(), stacks.jq(), stacks.jd("leader"), TASK):
        op.client.create(NAMESPACE, manifest(text))

    def succeeded() -> list[dict]:
        said = [e for e in op.events("JobStateChange") if "SUCCEEDED" in e["message"]]
        return said

    said = wait_for("the SUCCEEDED event", succeeded, timeout=60)
    job = client(aws).list_jobs(jobQueue="main-queue", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(job) == 1
    message = said[0]["message"]
    assert message.startswith(f"one-off: SUCCEEDED job {job[0]['jobName']} ({job[0]['jobId']})")
    assert "queue main-queue" in message and "log stream leader/default/" in message
    statuses = [e["message"].split()[1] for e in op.events("JobStateChange")]
    assert len(statuses) == len(set(statuses)), statuses  # each state said once
