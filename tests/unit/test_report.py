"""Run reports: pure functions of hand-built DescribeJobs / ListJobs shapes, no AWS."""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.runs.report import (
    TaskJobs,
    build_report,
    render_html,
    render_yaml,
    run_status,
    write_report,
)
from reconciler.runs.report.yaml_text import _BlockWriter, ruamel_yaml

T0 = 1714564800000  # 2024-05-01T12:00:00Z, in milliseconds as boto3 returns it
NOW = datetime(2024, 5, 1, 12, 5, 0, tzinfo=UTC)  # the moment the report is taken
FAILED_CHILDREN = {3, 7, 10}
RUNNING_CHILD = 11


def at(seconds: float) -> int:
    return T0 + int(seconds * 1000)


def leader_job() -> dict[str, Any]:
    """One job, retried once: the first attempt exited 1, the second succeeded."""
    return {
        "jobId": "job-leader",
        "jobName": "etl-run42-leader",
        "status": "SUCCEEDED",
        "statusReason": "Essential container in task exited",
        "createdAt": at(-20),
        "startedAt": at(55),
        "stoppedAt": at(130),
        "attempts": [
            {
                "container": {"exitCode": 1, "logStreamName": "etl/default/a1", "reason": None},
                "startedAt": at(0),
                "stoppedAt": at(40),
                "statusReason": "Essential container in task exited",
            },
            {
                "container": {"exitCode": 0, "logStreamName": "etl/default/a2"},
                "startedAt": at(55),
                "stoppedAt": at(130),
                "statusReason": "Essential container in task exited",
            },
        ],
        "container": {"exitCode": 0, "logStreamName": "etl/default/a2"},
        "dependsOn": [],
        "tags": {"pipeline": "etl", "run": "run42"},
    }


def follower_job() -> dict[str, Any]:
    return {
        "jobId": "job-follower",
        "jobName": "etl-run42-follower",
        "status": "RUNNING",
        "createdAt": at(131),
        "startedAt": at(140),
        "arrayProperties": {
            "size": 12,
            "statusSummary": {"SUCCEEDED": 8, "FAILED": 3, "RUNNING": 1, "RUNNABLE": 0},
        },
        "dependsOn": [{"jobId": "job-leader", "type": "SEQUENTIAL"}],
    }


def follower_child(i: int) -> dict[str, Any]:
    child: dict[str, Any] = {
        "jobId": f"job-follower:{i}",
        "jobName": "etl-run42-follower",
        "status": "SUCCEEDED",
        "createdAt": at(131),
        "startedAt": at(140 + i * 5),
        "stoppedAt": at(170 + i * 8),
        "container": {"exitCode": 0},
        "arrayProperties": {"index": i},
    }
    if i in FAILED_CHILDREN:
        child.update(status="FAILED", statusReason="Essential container in task exited")
        child["container"] = {"exitCode": 2, "reason": "OutOfMemoryError: killed"}
    if i == RUNNING_CHILD:
        child.update(status="RUNNING", container={})
        del child["stoppedAt"]
    return child


def fixture_tasks() -> list[TaskJobs]:
    children = [follower_child(i) for i in range(12)]
    random.Random(4).shuffle(children)  # ListJobs gives no order; the report sorts by index
    return [
        TaskJobs("leader", leader_job()),
        TaskJobs("follower", follower_job(), children),
        TaskJobs("publish", None),
    ]


def big_array_task(size: int = 10_000) -> TaskJobs:
    children = []
    for i in range(size):
        child: dict[str, Any] = {
            "jobId": f"job-fanout:{i}",
            "status": "SUCCEEDED",
            "createdAt": at(131),
            "startedAt": at(140 + i * 0.01),
            "stoppedAt": at(150 + i * 0.01 + i % 40),
            "container": {"exitCode": 0},
            "arrayProperties": {"index": i},
        }
        if i % 97 == 0:
            child.update(status="FAILED", container={"exitCode": 137, "reason": "killed"})
        if i >= size - 300:  # the tail has not finished, the last 100 have not started
            child.update(status="RUNNING", container={})
            del child["stoppedAt"]
        if i >= size - 100:
            child["status"] = "RUNNABLE"
            del child["startedAt"]
        children.append(child)
    job = {
        "jobId": "job-fanout",
        "jobName": "etl-run42-fanout",
        "status": "RUNNING",
        "createdAt": at(131),
        "startedAt": at(140),
        "arrayProperties": {"size": size, "statusSummary": {}},
        "dependsOn": [{"jobId": "job-leader", "type": "SEQUENTIAL"}],
    }
    return TaskJobs("fanout", job, children)


@pytest.fixture
def report() -> dict[str, Any]:
    return build_report("etl", "run42", fixture_tasks(), now=NOW)


def task(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["tasks"] if t["name"] == name)


# ---------------------------------------------------------------------------------- report data


def test_report_keys_are_in_reading_order(report: dict[str, Any]) -> None:
    assert list(report)[:7] == [
        "pipeline", "runId", "status", "startedAt", "stoppedAt", "durationSeconds", "tasks",
    ]  # fmt: skip
    assert list(report["tasks"][0]) == [
        "name", "jobId", "jobName", "status", "statusReason", "createdAt", "startedAt",
        "stoppedAt", "durationSeconds", "dependsOn", "arraySize", "statusSummary", "attempts",
        "children",
    ]  # fmt: skip


def test_run_level_fields(report: dict[str, Any]) -> None:
    assert report["pipeline"] == "etl" and report["runId"] == "run42"
    assert report["status"] == "RUNNING"
    assert report["startedAt"] == "2024-05-01T12:00:00.000Z"  # the leader's first attempt
    assert report["stoppedAt"] is None and report["durationSeconds"] is None
    assert report["generatedAt"] == "2024-05-01T12:05:00.000Z"


def test_retried_leader_spans_both_attempts(report: dict[str, Any]) -> None:
    leader = task(report, "leader")
    assert leader["status"] == "SUCCEEDED"
    assert leader["createdAt"] == "2024-05-01T11:59:40.000Z"
    assert (leader["startedAt"], leader["stoppedAt"]) == (
        "2024-05-01T12:00:00.000Z",
        "2024-05-01T12:02:10.000Z",
    )
    assert leader["durationSeconds"] == 130.0
    assert [a["exitCode"] for a in leader["attempts"]] == [1, 0]
    assert leader["attempts"][0] == {
        "exitCode": 1,
        "startedAt": "2024-05-01T12:00:00.000Z",
        "stoppedAt": "2024-05-01T12:00:40.000Z",
        "statusReason": "Essential container in task exited",
        "logStreamName": "etl/default/a1",
    }
    assert leader["arraySize"] is None and leader["statusSummary"] is None
    assert leader["children"] == []


def test_array_follower(report: dict[str, Any]) -> None:
    follower = task(report, "follower")
    assert follower["status"] == "RUNNING"
    assert follower["dependsOn"] == ["leader"]  # job ids of known tasks become task names
    assert follower["arraySize"] == 12
    assert follower["statusSummary"]["FAILED"] == 3
    assert follower["stoppedAt"] is None and follower["durationSeconds"] is None
    children = follower["children"]
    assert [c["index"] for c in children] == list(range(12))
    assert {c["index"] for c in children if c["status"] == "FAILED"} == FAILED_CHILDREN
    assert children[3]["exitCode"] == 2
    assert children[3]["statusReason"] == "Essential container in task exited"
    running = children[RUNNING_CHILD]
    assert running["status"] == "RUNNING" and running["stoppedAt"] is None
    assert running["startedAt"] == "2024-05-01T12:03:15.000Z"
    assert list(children[0]) == [
        "index", "jobId", "status", "exitCode", "startedAt", "stoppedAt", "statusReason",
        "logStreamName", "attempts",
    ]  # fmt: skip


def test_unsubmitted_task(report: dict[str, Any]) -> None:
    publish = task(report, "publish")
    assert publish["status"] == "NOT_SUBMITTED"
    assert publish["jobId"] is None and publish["startedAt"] is None
    assert publish["attempts"] == [] and publish["children"] == [] and publish["dependsOn"] == []


def test_missing_fields_and_unknown_dependencies_are_tolerated() -> None:
    bare = {"jobId": "j1", "status": "RUNNABLE", "dependsOn": [{"jobId": "elsewhere"}]}
    child = {"jobId": "j1:4", "status": "RUNNABLE"}  # no index property, no times
    report = build_report("p", "r", [TaskJobs("only", bare, [child])], now=NOW)
    only = report["tasks"][0]
    assert only["dependsOn"] == ["elsewhere"]
    assert only["children"][0]["index"] == 4  # from the child's job id
    assert only["statusSummary"] == {"RUNNABLE": 1}  # counted when Batch gave none
    assert report["status"] == "PENDING" and report["startedAt"] is None
    assert "only" in render_html(report)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "NOT_SUBMITTED"),
        (["NOT_SUBMITTED", "NOT_SUBMITTED"], "NOT_SUBMITTED"),
        (["SUCCEEDED", "SUCCEEDED"], "SUCCEEDED"),
        (["SUCCEEDED", "FAILED"], "FAILED"),
        (["FAILED", "RUNNING", "NOT_SUBMITTED"], "FAILED"),
        (["SUCCEEDED", "RUNNING"], "RUNNING"),
        (["STARTING", "NOT_SUBMITTED"], "RUNNING"),
        (["SUCCEEDED", "NOT_SUBMITTED"], "RUNNING"),  # between tasks: the run goes on
        (["SUBMITTED", "NOT_SUBMITTED"], "PENDING"),
        (["PENDING", "RUNNABLE"], "PENDING"),
    ],
)
def test_run_status(statuses: list[str], expected: str) -> None:
    assert run_status(statuses) == expected


def test_no_tasks_is_not_submitted() -> None:
    report = build_report("p", "r", [], now=NOW)
    assert report["status"] == "NOT_SUBMITTED" and report["tasks"] == []
    assert "<svg" in render_html(report)


def test_finished_run_has_a_stop_and_a_duration() -> None:
    report = build_report("etl", "run42", [TaskJobs("leader", leader_job())], now=NOW)
    assert report["status"] == "SUCCEEDED"
    assert report["stoppedAt"] == "2024-05-01T12:02:10.000Z"
    assert report["durationSeconds"] == 130.0


def test_failed_run_still_running_elsewhere_has_no_stop_yet() -> None:
    failed = {**leader_job(), "status": "FAILED"}
    running = {"jobId": "j2", "status": "RUNNING", "startedAt": at(10)}
    report = build_report("p", "r", [TaskJobs("a", failed), TaskJobs("b", running)], now=NOW)
    assert report["status"] == "FAILED"
    assert report["stoppedAt"] is None


# ---------------------------------------------------------------------------------- YAML


def test_yaml_round_trips(report: dict[str, Any]) -> None:
    text = render_yaml(report)
    loaded = YAML(typ="safe").load(io.StringIO(text))
    assert loaded == report
    assert list(loaded) == list(report)
    assert loaded["tasks"][1]["children"][RUNNING_CHILD]["stoppedAt"] is None
    assert isinstance(loaded["startedAt"], str)  # quoted, not turned into a datetime
    assert "{" not in text.split("\n", 1)[0]  # block style


AWKWARD = [
    "", " ", "a b", " lead", "trail ", "yes", "No", "NULL", "null", "~", "True", "None", "on",
    "y", "123", "-7", "0x1F", "1.5", "1e3", ".inf", "2024-05-01", "2024-05-01T12:00:00.000Z",
    "2024-05-01 12:00:00", "12:30", "a: b", "a:", "#x", "a #b", "- x", "-", "?", "?x", "[x]",
    "{x}", "'q'", '"d"', "a'b", "@x", "`x", "%x", "!x", "&x", "*x", "|", ">", "=", "<<", "---",
    "...", "é", "日本", "💥", "tab\there", "line\nbreak", "cr\rx", "\x85", "\ufeffbom", "a\\b",
    "x" * 130, "OutOfMemoryError: Container killed due to memory usage " * 3, "word " * 30,
    "<script>alert(1)</script>", "etl/default/abc-123", "job-1:0", "a.b", "_x", "a-", "a.",
    "Essential container in task exited", "Host EC2 (instance i-0a1b2c) terminated.",
    "OutOfMemoryError: Container killed due to memory usage", "Error:", "a :b", "a::b", "a: b:",
    "x = 1 + 2, y", "a -b", "a - b", "a ,b", "a (b", "a  b", "a: 'b'", "a: #b", "a: b " * 9,
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
]  # fmt: skip


def awkward_tasks(rng: random.Random) -> list[TaskJobs]:
    """Strings YAML quotes, folds or reads as other types, wherever the report can hold them."""

    def word() -> str:
        return rng.choice(AWKWARD) if rng.random() < 0.7 else f"w{rng.randrange(99)}"

    tasks = []
    for n in range(rng.randrange(1, 4)):
        job = leader_job()
        job.update(jobId=word(), jobName=word(), statusReason=word(), status=word())
        job["dependsOn"] = [{"jobId": word()}, {"type": word()}]
        job["attempts"][0].update(statusReason=word())
        job["attempts"][1]["container"] = {"exitCode": rng.choice([0, 3, None]), "reason": word()}
        job["attempts"][0]["container"]["logStreamName"] = word()
        summary = {rng.choice(["FAILED", "None", "w_1", "x" * 90]): 1, "RUNNING": rng.randrange(5)}
        job["arrayProperties"] = {"size": 3, "statusSummary": summary}
        children = [
            {**follower_child(i), "status": word(), "statusReason": word(), "jobId": word()}
            for i in range(rng.randrange(3))
        ]
        tasks.append(TaskJobs(f"{word()}{n}", job, children))
    return tasks


def test_yaml_is_ruamels_text_byte_for_byte(report: dict[str, Any]) -> None:
    """The fast writer only copies ruamel: same quoting, folding, empty containers, numbers.

    The writer is called directly, so a fallback to ruamel cannot make this pass.
    """
    assert _BlockWriter().document(report) == render_yaml(report) == ruamel_yaml(report)
    bigger = build_report("etl", "r", [TaskJobs("a", leader_job()), big_array_task(500)], now=NOW)
    assert _BlockWriter().document(bigger) == ruamel_yaml(bigger)
    rng = random.Random(7)
    for _ in range(60):
        pipeline, run_id = rng.choice(AWKWARD), rng.choice(AWKWARD)
        awkward = build_report(pipeline, run_id, awkward_tasks(rng), now=NOW)
        assert _BlockWriter().document(awkward) == ruamel_yaml(awkward)


@pytest.mark.parametrize(
    "data",
    [
        {"nested": [[1, 2], []], "after": 1},  # a list in a list
        {"a": (shared := {"x": 1}), "b": shared},  # one object twice: an anchor and an alias
        {"null": 1, "x" * 130: 2, 3: "int key"},  # keys ruamel quotes or writes as '? key'
        {"when": datetime(2024, 5, 1, tzinfo=UTC), "floats": [0.1, 1e-05, 1e17, float("nan")]},
        {"deep": {"er": [{"a": {"b": [{"c": "x" * 90 + " y"}]}}]}, "e": {}, "l": [{}, []]},
    ],
)
def test_yaml_shapes_the_fast_writer_hands_to_ruamel(data: dict[Any, Any]) -> None:
    assert render_yaml(data) == ruamel_yaml(data)


def test_yaml_of_a_big_array_is_written_whole() -> None:
    """ruamel alone took seconds for 10,000 children, so the fast writer does it; how long it
    takes is measured by benchmarks/bench_report.py, not asserted here."""
    report = build_report("etl", "run42", [TaskJobs("leader", leader_job()), big_array_task()])
    text = render_yaml(report)
    assert text.count("\n  - index: ") == 10_000


# ---------------------------------------------------------------------------------- HTML


def test_html_names_every_task_and_is_self_contained(report: dict[str, Any]) -> None:
    page = render_html(report)
    for name in ("leader", "follower", "publish"):
        assert name in page
    assert "<svg" in page
    assert "<script" not in page.lower()
    no_namespace = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", page)
    assert "http://" not in no_namespace and "https://" not in no_namespace
    assert "not submitted" in page
    assert page.count('class="child"') == 12  # one row per child of a small array


def test_html_escapes_task_names() -> None:
    tasks = [TaskJobs("<b>bold</b> & co", leader_job()), TaskJobs("later", None)]
    page = render_html(build_report("p<i>", "r&1", tasks, now=NOW))
    assert "<b>bold" not in page and "<i>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert "p&lt;i&gt;" in page and "r&amp;1" in page


def test_html_escapes_markup_injected_by_users_and_aws() -> None:
    """Task names come from manifests, reasons and log streams from AWS: none may run script."""
    script = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    job = {**leader_job(), "status": "FAILED", "statusReason": script}
    job["attempts"][0]["statusReason"] = script
    job["attempts"][0]["container"]["logStreamName"] = f"etl/{script}"
    array = {**follower_job(), "status": '"><script>alert(2)</script>'}
    children = [{**follower_child(3), "statusReason": script}]
    tasks = [TaskJobs(script, job), TaskJobs("array", array, children)]
    page = render_html(build_report(script, script, tasks, now=NOW))
    assert "<script" not in page.lower()
    assert f"<title>{escaped} run {escaped}</title>" in page
    assert f"<b>{escaped}</b>" in page  # the task table and the failures
    assert f'<span class="reason">{escaped}</span>' in page
    assert f"<td>etl/{escaped}</td>" in page  # the failed attempt's log stream
    assert f"<title>{escaped}</title>" in page  # the timeline row's tooltip
    assert 'class="badge s-__' in page  # the status cannot leave its class attribute


def test_html_lists_each_attempt_of_a_retried_task(report: dict[str, Any]) -> None:
    page = render_html(report)
    section = page.split("<h2>Attempts</h2>", 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr><td><b>([^<]*)</b></td><td>([^<]*)</td><td>([^<]*)</td>", section)
    assert rows == [("leader", "attempt 1", "1"), ("leader", "attempt 2", "0")]
    assert "<td>etl/default/a1</td>" in section and "<td>etl/default/a2</td>" in section
    assert "<td>1m 15.0s</td>" in section or "<td>1m 15s</td>" in section  # 55s -> 130s


def test_retried_array_children_show_their_attempts_and_log_streams() -> None:
    """A child's log stream is where `reconciler logs --index N` reads: the report shows it."""
    child = follower_child(3)  # failed
    child["container"]["logStreamName"] = "etl/default/child-3-b"
    child["attempts"] = [
        {"container": {"exitCode": 2, "logStreamName": f"etl/default/child-3-{x}"}, "startedAt": t}
        for x, t in (("a", at(140)), ("b", at(150)))
    ]
    ok = follower_child(0)
    ok["attempts"] = [{"container": {"exitCode": 0, "logStreamName": "etl/default/child-0"}}]
    tasks = [TaskJobs("follower", follower_job(), [child, ok])]
    data = build_report("etl", "run42", tasks, now=NOW)
    children = task(data, "follower")["children"]
    assert [c["logStreamName"] for c in children] == [
        "etl/default/child-0",
        "etl/default/child-3-b",
    ]
    assert children[0]["attempts"] == []  # one attempt is the child itself
    assert [a["logStreamName"] for a in children[1]["attempts"]] == [
        "etl/default/child-3-a",
        "etl/default/child-3-b",
    ]
    page = render_html(data)
    failures = page.split("<h2>Failures</h2>", 1)[1]
    assert "<td>child [3]</td>" in failures and "<td>etl/default/child-3-b</td>" in failures
    attempts = page.split("<h2>Attempts</h2>", 1)[1].split("</section>", 1)[0]
    assert "<td>child [3] attempt 1</td>" in attempts
    assert "<td>etl/default/child-3-a</td>" in attempts
    assert "logStreamName: etl/default/child-3-a" in render_yaml(data)


def test_importing_the_report_leaves_jinja2_unloaded() -> None:
    """run_status is imported by the operator and the CLI; only drawing a page needs Jinja2."""
    code = "import sys, reconciler.runs.report; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_big_array_renders_small() -> None:
    """The page of 10,000 children aggregates them; how long it takes is measured by
    benchmarks/bench_report.py (a wall-clock assertion here failed on a loaded machine)."""
    tasks = [TaskJobs("leader", leader_job()), big_array_task()]
    report = build_report("etl", "run42", tasks, now=NOW)
    page = render_html(report)
    assert len(page.encode()) < 2_000_000
    assert len(report["tasks"][1]["children"]) == 10_000
    assert page.count("<rect") < 200  # a band, not one row per child
    assert "aggregated" in page and "fanout" in page
    failed = sum(c["status"] == "FAILED" for c in report["tasks"][1]["children"])
    assert f"and {failed - 50} more failed children" in page  # the first 50 are listed


def test_write_report(report: dict[str, Any], tmp_path: Path) -> None:
    yaml_path, html_path = write_report(report, tmp_path / "runs" / "run42")
    assert yaml_path == tmp_path / "runs" / "run42" / "report.yaml"
    assert html_path.name == "report.html"
    assert YAML(typ="safe").load(yaml_path.read_text(encoding="utf-8"))["runId"] == "run42"
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
