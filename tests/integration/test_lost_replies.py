"""A reply lost on the way back never duplicates work: nothing is submitted or registered twice.

The proxy in front of moto lets the request through (AWS carries it out) and then drops the
connection, as a network does; without care, the SDK's retry sends the same write again."""

from __future__ import annotations

from tests.conftest import Runner, client
from tests.lossy_proxy import LossyProxy
from tests.stacks import infra, pipeline, stack

SUBMIT = "/v1/submitjob"
REGISTER = "/v1/registerjobdefinition"


def test_lost_submit_and_register_replies_are_checked_not_resent(run, write, aws, capsys):
    path = write(stack(infra(), pipeline()))
    with LossyProxy(aws, {SUBMIT: 1, REGISTER: 1}) as proxy:
        applied = Runner(proxy.url, capsys)("apply", "-f", path)
        assert applied.code == 0, applied.out + applied.err
        assert proxy.left[SUBMIT] == 0 and proxy.left[REGISTER] == 0, "replies were lost"
    batch = client(aws)
    jobs = batch.list_jobs(
        jobQueue="main-queue", filters=[{"name": "JOB_NAME", "values": ["stress*"]}]
    )["jobSummaryList"]
    assert sorted(j["jobName"].split("--")[1] for j in jobs) == ["follower", "leader"]
    for name in ("leader", "follower"):
        revisions = batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
        assert [d["revision"] for d in revisions] == [1], name
    assert run("apply", "-f", path).writes == 0
