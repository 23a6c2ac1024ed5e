"""Schedules over HTTP: start and end dates, a role IAM has not propagated yet, and queues a
schedule or a notification still uses."""

from __future__ import annotations

import datetime as dt
import json
from http.server import BaseHTTPRequestHandler

import pytest

from tests.conftest import Runner, client
from tests.integration.test_notification import _setup, notification
from tests.integration.test_schedule import GROUP, schedule, task
from tests.lossy_proxy import LossyProxy
from tests.stacks import infra, stack


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)


def _utc(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_start_and_end_dates_are_sent_shown_and_compared(run, write, aws):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = (now + dt.timedelta(days=3)).replace(minute=0, second=0)
    end = start + dt.timedelta(days=30)
    window = f"\n  startDate: {_utc(start)}\n  endDate: {_utc(end)}"
    path = write(stack(infra(), task(), schedule(timezone="UTC", extra=window)))
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    # The plan's next firings start at the start date, not now.
    firings = f"next firings: {start:%Y-%m-%d %H}:00 UTC, {start:%Y-%m-%d} {start.hour + 1:02d}"
    assert firings in first.out, first.out
    live = client(aws, "scheduler").get_schedule(GroupName=GROUP, Name="hourly")
    assert live["StartDate"] == start and live["EndDate"] == end
    assert run("apply", "-f", path).writes == 0  # read back as written: nothing to change

    later = f"\n  startDate: {_utc(start)}\n  endDate: {_utc(end + dt.timedelta(days=1))}"
    updated = run(
        "apply", "-f", write(stack(infra(), task(), schedule(timezone="UTC", extra=later)))
    )
    assert updated.code == 0, updated.out + updated.err
    assert "endDate" in updated.out and updated.calls.get("scheduler:UpdateSchedule") == 1
    live = client(aws, "scheduler").get_schedule(GroupName=GROUP, Name="hourly")
    assert live["EndDate"] == end + dt.timedelta(days=1)


def test_an_end_date_in_the_past_is_refused_in_the_plan(run, write, aws):
    past = "\n  endDate: 2021-01-01T00:00:00Z"
    out = run("apply", "-f", write(stack(infra(), task(), schedule(timezone="UTC", extra=past))))
    assert out.code == 1, out.out + out.err
    assert "never fires again before its endDate 2021-01-01T00:00:00Z (UTC)" in out.out
    assert out.calls.get("scheduler:CreateSchedule", 0) == 0
    bad = "\n  startDate: 2030-01-02T00:00:00Z\n  endDate: 2030-01-01T00:00:00Z"
    out = run("validate", "-f", write(stack(infra(), task(), schedule(extra=bad))))
    assert out.code == 1 and "endDate: must be after startDate" in out.err, out.err


class NotAssumableYet(LossyProxy):
    """Answers the first CreateSchedule as Scheduler does while IAM propagates a new role."""

    refusals = 1

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        creating = handler.command == "POST" and handler.path.startswith("/schedules/")
        if creating and self.refusals > 0:
            self.refusals -= 1
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            body = json.dumps(
                {
                    "Message": "The execution role you provide must allow AWS EventBridge "
                    "Scheduler to assume the role."
                }
            ).encode()
            handler.send_response(400)
            handler.send_header("x-amzn-ErrorType", "ValidationException")
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        super().forward(handler)


def test_a_role_iam_has_not_propagated_yet_is_waited_for(write, aws, capsys):
    path = write(stack(infra(), task(), schedule()))
    with NotAssumableYet(aws, {}) as proxy:
        applied = Runner(proxy.url, capsys)("apply", "-f", path)
        assert applied.code == 0, applied.out + applied.err
        assert proxy.refusals == 0, "the schedule was never refused"
    assert applied.calls.get("scheduler:CreateSchedule") == 2, applied.calls
    assert applied.calls.get("iam:CreateRole") == 1, applied.calls  # the role is not redone
    assert client(aws, "scheduler").get_schedule(GroupName=GROUP, Name="hourly")


def test_a_queue_a_schedule_still_fires_into_is_not_deleted(run, write, aws):
    assert run("apply", "-f", write(stack(infra(), task(), schedule()))).code == 0
    out = run("delete", "jobqueue/main-queue", "--yes")
    assert out.code == 1, out.out + out.err
    assert "still used by Schedule hourly (stack 'default')" in out.out, out.out
    assert client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"]
    # Deleting both deletes the schedule first, then the queue.
    both = run("delete", "schedule/hourly", "jobqueue/main-queue", "--yes")
    assert both.code == 0, both.out + both.err
    done = [line.split()[2] for line in both.out.splitlines() if line.startswith("  done")]
    assert done == ["Schedule/hourly:", "JobQueue/main-queue:"], both.out


def test_a_queue_a_notification_still_listens_to_is_not_deleted(run, write, aws):
    secret, inbox = _setup(aws, "http://127.0.0.1:9/never-posted-to")
    assert run("apply", "-f", write(stack(infra(), notification(secret, inbox)))).code == 0
    out = run("delete", "jobqueue/main-queue", "--yes")
    assert out.code == 1, out.out + out.err
    assert "still used by Notification team-alerts" in out.out, out.out
    assert client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"]
