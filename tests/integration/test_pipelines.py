"""Pipelines and Tasks over HTTP to the sandbox's moto: submission, runs, policies, reports."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from reconciler.runs import submit
from tests.conftest import client
from tests.stacks import ce, infra, jd, jq, pipeline, stack


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_SANDBOX_STEP_SECONDS", "0.05")
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "0.2")
    monkeypatch.chdir(tmp_path)  # reports default to ./.reconciler/runs: keep them out of the repo


def _jobs(endpoint: str, prefix: str = "stress--") -> list[dict]:
    batch = client(endpoint)
    ids = [
        s["jobId"]
        for s in batch.list_jobs(
            jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": [prefix + "*"]}]
        )["jobSummaryList"]
        if ":" not in s["jobId"]
    ]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def _by_task(jobs: list[dict]) -> dict[str, dict]:
    return {j["tags"]["reconciler.io/task"]: j for j in jobs}


def test_submission_wiring_and_idempotent_reapply(srun, write, aws, tmp_path):
    path = write(stack(infra(), pipeline()))
    first = srun("apply", "-f", path, "--wait", "--report", str(tmp_path / "runs"))
    assert first.code == 0, first.out + first.err
    assert "submit run" in first.out and "2 tasks" in first.out
    assert "SUCCEEDED" in first.out
    jobs = _by_task(_jobs(aws))
    leader, follower = jobs["leader"], jobs["follower"]
    assert follower["dependsOn"] == [{"jobId": leader["jobId"]}]
    assert follower["arrayProperties"]["size"] == 4
    assert leader["tags"]["reconciler.io/run"] == follower["tags"]["reconciler.io/run"]
    assert leader["container"]["environment"][0]["name"] == "STRESS_BUCKET" or any(
        e["name"] == "STRESS_BUCKET" for e in leader["container"].get("environment", [])
    )

    again = srun("apply", "-f", path)
    assert again.code == 0 and again.writes == 0, again.out
    assert "SubmitJob" not in " ".join(again.calls)
    got = srun("get", "-f", path, "pipeline/stress")
    assert "SUCCEEDED" in got.out


def test_report_is_written_from_aws_state(srun, write, aws, tmp_path):
    path = write(stack(infra(), pipeline()))
    assert srun("apply", "-f", path, "--wait", "--report", str(tmp_path / "r")).code == 0
    reports = list((tmp_path / "r").rglob("report.yaml"))
    assert len(reports) == 1
    data = YAML(typ="safe").load(reports[0].read_text())
    assert data["status"] == "SUCCEEDED"
    assert [t["name"] for t in data["tasks"]] == ["leader", "follower"]
    assert len(data["tasks"][1]["children"]) == 4
    html = reports[0].with_name("report.html").read_text()
    assert "leader" in html and "follower" in html and "<svg" in html

    regenerated = srun("report", "-f", path, "pipeline/stress", "--report", str(tmp_path / "x"))
    assert regenerated.code == 0, regenerated.err
    assert regenerated.out.strip().endswith("report.html")


def test_failure_is_reported_and_fails_dependants(srun, write, aws, tmp_path):
    path = write(stack(infra(), pipeline(leader_fails=True)))
    result = srun("apply", "-f", path, "--wait", "--report", str(tmp_path))
    assert result.code == 1
    assert "FAILED Pipeline/stress task leader" in result.out
    assert "exit codes: 3" in result.out
    jobs = _by_task(_jobs(aws))
    assert jobs["follower"]["status"] == "FAILED"
    assert jobs["follower"]["statusReason"] == "Dependent Job failed"


def test_changed_spec_with_forbid_is_refused_while_a_run_is_active(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "30")
    assert srun("apply", "-f", write(stack(infra(), pipeline()))).code == 0
    refused = srun("apply", "-f", write(stack(infra(), pipeline(size=6))))
    assert refused.code == 1
    assert "concurrencyPolicy is Forbid" in refused.out
    assert refused.writes == 0


def test_replace_cancels_the_active_run_then_submits(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "30")
    assert srun("apply", "-f", write(stack(infra(), pipeline(policy="Replace")))).code == 0
    old_run = _jobs(aws)[0]["tags"]["reconciler.io/run"]
    replaced = srun(
        "apply", "--yes", "-f", write(stack(infra(), pipeline(policy="Replace", size=6)))
    )
    assert replaced.code == 0, replaced.out + replaced.err
    assert f"first cancels run {old_run}" in replaced.out
    runs: dict[str, list[dict]] = {}
    for job in _jobs(aws):
        runs.setdefault(job["tags"]["reconciler.io/run"], []).append(job)
    assert len(runs) == 2
    assert all(j["status"] == "FAILED" for j in runs[old_run]), runs[old_run]
    assert all("cancelled by reconciler" in j["statusReason"] for j in runs[old_run])
    new = next(v for k, v in runs.items() if k != old_run)
    assert all(j["status"] != "FAILED" for j in new)


def test_allow_keeps_both_runs(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "30")
    assert srun("apply", "-f", write(stack(infra(), pipeline(policy="Allow")))).code == 0
    assert srun("apply", "-f", write(stack(infra(), pipeline(policy="Allow", rerun=1)))).code == 0
    jobs = _jobs(aws)
    assert len({j["tags"]["reconciler.io/run"] for j in jobs}) == 2
    assert not any(j["status"] == "FAILED" for j in jobs)


def test_delete_cancels_and_terminates_unfinished_jobs(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "30")
    path = write(stack(infra(), pipeline()))
    assert srun("apply", "-f", path).code == 0
    ids = [j["jobId"] for j in _jobs(aws)]
    deleted = srun("delete", "-f", path, "--force", "--yes")
    assert deleted.code == 0, deleted.out + deleted.err
    assert "cancel or terminate 2 unfinished job(s)" in deleted.out
    jobs = client(aws).describe_jobs(jobs=ids)["jobs"]
    assert len(jobs) == 2 and all(j["status"] == "FAILED" for j in jobs)
    assert all("cancelled by reconciler" in j["statusReason"] for j in jobs)


def test_delete_with_drain_lets_the_runs_jobs_finish(srun, write, aws, monkeypatch):
    """--drain means the work finishes: the run's jobs are waited for, not terminated."""
    monkeypatch.setenv("RECONCILER_SANDBOX_JOB_SECONDS", "5")  # still running at the delete
    path = write(stack(infra(), pipeline()))
    assert srun("apply", "-f", path).code == 0
    ids = [j["jobId"] for j in _jobs(aws)]
    deleted = srun("delete", "-f", path, "--drain", "--yes")
    assert deleted.code == 0, deleted.out + deleted.err
    assert "let 2 unfinished job(s) of run" in deleted.out and "finish (--drain)" in deleted.out
    assert deleted.calls.get("batch:TerminateJob", 0) == 0
    jobs = client(aws).describe_jobs(jobs=ids)["jobs"]
    assert sorted(j["status"] for j in jobs) == ["SUCCEEDED", "SUCCEEDED"]
    queues = client(aws).describe_job_queues(jobQueues=["main-queue"])["jobQueues"]
    assert all(q["status"] == "DELETED" for q in queues), "the queue went after its jobs"


def test_new_job_definition_revision_is_used_by_the_run_in_the_same_apply(srun, write, aws):
    assert srun("apply", "-f", write(stack(infra(), pipeline())), "--wait").code == 0
    changed = srun("apply", "-f", write(stack(infra(image="busybox:2"), pipeline())))
    assert changed.code == 0, changed.out + changed.err
    assert "new revision" in changed.out and "submit run" in changed.out
    runs: dict[str, dict] = {}
    for job in _jobs(aws):
        if job["tags"]["reconciler.io/task"] == "leader":
            runs[job["tags"]["reconciler.io/run"]] = job
    assert sorted(j["jobDefinition"].rsplit(":", 1)[1] for j in runs.values()) == ["1", "2"]


def test_interrupted_submission_finishes_the_same_run_without_duplicates(
    srun, write, aws, monkeypatch
):
    path = write(stack(infra(), pipeline()))
    original = submit._request

    def flaky(ctx, res, run, unit, queue, job_ids):
        if unit.key == "follower":
            raise RuntimeError("network went away")
        return original(ctx, res, run, unit, queue, job_ids)

    monkeypatch.setattr(submit, "_request", flaky)
    broken = srun("apply", "-f", path)
    assert broken.code == 1 and "network went away" in broken.out
    monkeypatch.setattr(submit, "_request", original)

    plan = srun("diff", "-f", path)
    assert "finishing: 1 already submitted" in plan.out
    rerun = srun("apply", "-f", path, "--wait")
    assert rerun.code == 0, rerun.out + rerun.err
    assert rerun.calls["batch:SubmitJob"] == 1
    jobs = _jobs(aws)
    assert sorted(j["tags"]["reconciler.io/task"] for j in jobs) == ["follower", "leader"]


def test_large_fan_in_uses_barrier_jobs(srun, write, aws):
    tasks = "\n".join(f"    - {{name: t{i}, jobDefinition: leader}}" for i in range(45))
    deps = ", ".join(f"{{task: t{i}}}" for i in range(45))
    doc = f"""
apiVersion: reconciler.io/v1alpha1
kind: Pipeline
metadata: {{name: fanin}}
spec:
  jobQueue: main-queue
  tasks:
{tasks}
    - {{name: gather, jobDefinition: follower, dependsOn: [{deps}]}}
"""
    path = write(stack(infra(), doc))
    plan = srun("diff", "-f", path)
    assert "3 barrier job(s) added" in plan.out
    result = srun("apply", "-f", path, "--wait")
    assert result.code == 0, result.out + result.err
    jobs = _jobs(aws, "fanin--")
    assert len(jobs) == 45 + 1 + 3
    assert max(len(j.get("dependsOn") or []) for j in jobs) <= 20
    gather = next(j for j in jobs if j["tags"]["reconciler.io/task"] == "gather")
    assert len(gather["dependsOn"]) == 3


def test_preflight_refuses_tasks_that_could_never_start(srun, write, aws):
    big = pipeline(
        extra="\n      containerOverrides:\n        resourceRequirements: "
        "[{type: VCPU, value: 512}]"
    )
    refused = srun("diff", "-f", write(stack(infra(), big)))
    assert refused.code == 1
    assert "asks for 512 vCPUs" in refused.out and "at most 16" in refused.out
    disabled = srun(
        "diff", "-f", write(stack(ce(), jq(state="DISABLED"), jd(), jd("follower"), pipeline()))
    )
    assert disabled.code == 1 and "queue main-queue is DISABLED" in disabled.out


def test_preflight_does_not_refuse_tasks_on_an_unmanaged_environment(srun, write, aws):
    """An UNMANAGED environment's instances are the user's: their size is unknown, not 0."""
    unmanaged = """
apiVersion: reconciler.io/v1alpha1
kind: ComputeEnvironment
metadata: {name: spot-ce}
spec: {type: UNMANAGED, unmanagedvCpus: 8}
"""
    plan = srun("diff", "-f", write(stack(unmanaged, jq(), jd(), jd("follower"), pipeline())))
    assert plan.code == 2, plan.out
    assert "at most 0" not in plan.out and "submit run" in plan.out


def test_a_task_is_a_single_job(srun, write, aws):
    task = """
apiVersion: reconciler.io/v1alpha1
kind: Task
metadata: {name: once}
spec:
  jobQueue: main-queue
  jobDefinition: leader
  arrayProperties: {size: 3}
  dependsOn: [{type: SEQUENTIAL}]
"""
    path = write(stack(infra(), task))
    result = srun("apply", "-f", path, "--wait")
    assert result.code == 0, result.out + result.err
    jobs = _jobs(aws, "once--")
    assert len(jobs) == 1 and jobs[0]["status"] == "SUCCEEDED"
    assert jobs[0]["dependsOn"] == [{"type": "SEQUENTIAL"}]
    assert srun("apply", "-f", path).writes == 0


def test_logs_of_a_task_run_locally(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_RUN_COMMANDS", "1")
    doc = pipeline().replace(
        '      containerOverrides:\n        environment: [{name: STRESS_BUCKET, value: "s3://bucket"}]',
        "      containerOverrides:\n        command: [sh, -c, 'echo leader says $STRESS_BUCKET']\n"
        '        environment: [{name: STRESS_BUCKET, value: "s3://bucket"}]',
    )
    path = write(stack(infra(), doc))
    assert "leader says" in doc
    assert srun("apply", "-f", path, "--wait").code == 0
    logs = srun("logs", "-f", path, "pipeline/stress/leader")
    assert logs.code == 0, logs.err
    assert "leader says s3://bucket" in logs.out
    child = srun("logs", "-f", path, "pipeline/stress/follower")
    assert child.code == 1 and "give --index 0..3" in child.err


def test_preflight_refuses_more_memory_than_any_instance_has(srun, write, aws):
    huge = pipeline(
        extra="\n      containerOverrides:\n        resourceRequirements: "
        "[{type: MEMORY, value: 600000}]"
    )
    refused = srun("diff", "-f", write(stack(infra(), huge)))
    assert refused.code == 1
    assert "asks for 600000 MiB" in refused.out and "per job" in refused.out


def test_n_to_n_pairs_array_children(srun, write, aws):
    doc = """
apiVersion: reconciler.io/v1alpha1
kind: Pipeline
metadata: {name: stress}
spec:
  jobQueue: main-queue
  tasks:
    - {name: prepare, jobDefinition: leader, arrayProperties: {size: 3}}
    - name: process
      jobDefinition: follower
      arrayProperties: {size: 3}
      dependsOn: [{task: prepare, type: N_TO_N}]
"""
    result = srun("apply", "-f", write(stack(infra(), doc)), "--wait")
    assert result.code == 0, result.out + result.err
    jobs = _by_task(_jobs(aws))
    assert jobs["process"]["dependsOn"] == [{"jobId": jobs["prepare"]["jobId"], "type": "N_TO_N"}]
    assert jobs["process"]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3


def test_logs_follow_prints_until_the_job_ends(srun, write, aws, monkeypatch):
    monkeypatch.setenv("RECONCILER_SANDBOX_RUN_COMMANDS", "1")
    task = """
apiVersion: reconciler.io/v1alpha1
kind: Task
metadata: {name: chatty}
spec:
  jobQueue: main-queue
  jobDefinition: leader
  containerOverrides:
    command: [sh, -c, 'echo first; sleep 1; echo second']
"""
    path = write(stack(infra(), task))
    assert srun("apply", "-f", path).code == 0
    followed = srun("logs", "-f", path, "task/chatty", "--follow")
    assert followed.code == 0, followed.err
    assert followed.out.splitlines() == ["first", "second"]


def test_report_shows_each_attempt_and_the_log_streams_of_array_children(
    srun, write, aws, tmp_path
):
    """The children's log streams are those `reconciler logs --index N` reads; a retried
    child's attempts each get a row."""
    doc = pipeline(size=2, extra="\n      sandbox: {outcome: fail, exitCode: 4}")
    path = write(stack(infra(), doc))
    assert srun("apply", "-f", path, "--wait", "--report", str(tmp_path / "r")).code == 1
    made = srun("report", "-f", path, "pipeline/stress", "--report", str(tmp_path / "x"))
    assert made.code == 0, made.err
    html = next((tmp_path / "x").glob("**/report.html")).read_text()
    follower = _by_task(_jobs(aws))["follower"]
    child = client(aws).describe_jobs(jobs=[f"{follower['jobId']}:1"])["jobs"][0]
    streams = [a["container"]["logStreamName"] for a in child["attempts"]]
    assert len(streams) == 2 and streams[0] != streams[1]
    failures = html.split("<h2>Failures</h2>", 1)[1]
    assert "<td>child [1]</td><td>4</td><td>" in failures
    assert f"<td>{streams[1]}</td>" in failures  # was an em dash
    attempts = html.split("<h2>Attempts</h2>", 1)[1].split("</section>", 1)[0]
    assert "<td>child [1] attempt 1</td>" in attempts and f"<td>{streams[0]}</td>" in attempts
    assert "<td>child [1] attempt 2</td>" in attempts and f"<td>{streams[1]}</td>" in attempts
    shown = srun("logs", "-f", path, "pipeline/stress/follower", "--index", "1")
    assert shown.code == 0, shown.err
