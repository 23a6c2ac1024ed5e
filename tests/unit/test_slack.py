"""The Slack formatter shipped as the notification function: the seed's fields, no secrets."""

from __future__ import annotations

import io
import json
import zipfile

from reconciler.notify import slack, wiring


def event(status: str, **detail: object) -> dict:
    base = {
        "jobName": "poller--poller--d32c5kddcf5bb8c3",
        "jobId": "4e5f-1",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/poller-queue",
        "status": status,
        "container": {"logStreamName": "poller/default/abc"},
    }
    return {
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "detail": {**base, **detail},
    }


def test_a_success_shows_name_status_id_queue_and_log_stream() -> None:
    text = slack.message(event("SUCCEEDED"))["text"]
    assert text.splitlines() == [
        ":white_check_mark: *poller--poller--d32c5kddcf5bb8c3* SUCCEEDED",
        "Job ID: `4e5f-1`",
        "Queue: poller-queue",
        "Log stream: poller/default/abc",
    ]


def test_a_failure_adds_the_reason_and_the_exit_code() -> None:
    failed = event(
        "FAILED",
        statusReason="Essential container in task exited",
        container={"logStreamName": "poller/default/abc", "exitCode": 3},
    )
    text = slack.message(failed)["text"]
    assert "Reason: Essential container in task exited" in text
    assert text.endswith("Exit code: 3")


def test_a_failure_before_any_container_says_so() -> None:
    text = slack.message(event("FAILED", container={}, statusReason="Dependent Job failed"))["text"]
    assert "Log stream: (none yet)" in text and "Exit code: (none)" in text


def test_exit_code_and_stream_from_the_last_attempt() -> None:
    attempts = [{"container": {"exitCode": 137, "logStreamName": "s/2"}}]
    fields = slack.fields(event("FAILED", container={}, attempts=attempts))
    assert fields["exitCode"] == 137 and fields["logStreamName"] == "s/2"


def test_the_webhook_comes_from_the_secret_value_plain_or_json() -> None:
    url = "https://hooks.slack.com/services/T/B/X"
    assert slack.webhook_from(url + "\n") == url
    assert slack.webhook_from(json.dumps({"webhookUrl": url})) == url


def test_the_function_package_is_the_module_and_stable() -> None:
    package = wiring.function_zip()
    assert package == wiring.function_zip()  # same bytes: CodeSha256 says if it is current
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.read("reconciler/notify/slack.py") == wiring.FORMATTER.read_bytes()
        assert archive.read("reconciler/aws/slack_function.py") == wiring.FUNCTION.read_bytes()
        assert archive.read("reconciler/__init__.py") == b""  # nothing else of the package


def test_the_package_runs_on_its_own(tmp_path) -> None:
    """What Lambda imports: the handler and the formatter, without the rest of reconciler."""
    import subprocess
    import sys

    with zipfile.ZipFile(io.BytesIO(wiring.function_zip())) as archive:
        archive.extractall(tmp_path)
    code = (
        "import json, reconciler.aws.slack_function as f;"
        "print(json.dumps(f.slack.message({'detail': {'jobName': 'j', 'status': 'FAILED'}})))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "*j* FAILED" in out.stdout


def test_one_line_with_the_same_fields_for_a_terminal_or_a_kubernetes_event() -> None:
    assert slack.line(event("SUCCEEDED")) == (
        "SUCCEEDED job poller--poller--d32c5kddcf5bb8c3 (4e5f-1), queue poller-queue, "
        "log stream poller/default/abc"
    )
    failed = event(
        "FAILED",
        statusReason="Essential container in task exited",
        container={"logStreamName": "poller/default/abc", "exitCode": 3},
    )
    assert slack.line(failed).endswith("; reason: Essential container in task exited; exit code: 3")
    # A DescribeJobs description is what an event's detail is.
    assert slack.line(slack.of_job(event("RUNNING")["detail"])).startswith("RUNNING job ")


def test_a_followed_run_says_each_state_change_once() -> None:
    from reconciler.runs.watch import Watched, change_lines

    def job(status: str, **more: object) -> dict:
        return {**event(status)["detail"], **more}

    target = Watched("Task", "poller", "r1", {"poller": "4e5f-1", "batch": "9-1"})
    shown: dict[str, str] = {}
    target.jobs = {"poller": job("RUNNABLE")}
    assert [k for k, _ in change_lines(target, shown)] == ["poller", "batch"]  # not found yet
    assert change_lines(target, shown) == []  # nothing changed: nothing said
    array = {"size": 4, "statusSummary": {"RUNNING": 1, "PENDING": 3}}
    target.jobs = {"poller": job("RUNNING"), "batch": job("PENDING", arrayProperties=array)}
    said = dict(change_lines(target, shown))
    assert said["poller"].startswith("RUNNING job poller--poller--d32c5kddcf5bb8c3 (4e5f-1)")
    assert said["batch"].startswith("PENDING job ")
    array = {"size": 4, "statusSummary": {"RUNNING": 2, "PENDING": 2}}
    target.jobs["batch"] = job("PENDING", arrayProperties=array)
    assert change_lines(target, shown) == [("batch", "PENDING (4 jobs: 2 PENDING, 2 RUNNING)")]
    target.jobs["poller"] = job("FAILED", statusReason="boom", container={"exitCode": 3})
    assert change_lines(target, shown) == [
        (
            "poller",
            "FAILED job poller--poller--d32c5kddcf5bb8c3 (4e5f-1), queue poller-queue, "
            "log stream (none yet); reason: boom; exit code: 3",
        )
    ]
