"""EC2 instances on the sandbox behave like EC2 instances, and the tool's run their user data
(reconciler.sandbox.ec2_patches, ec2_host, ec2_machine, ec2_standins, ec2_faults), observed
with plain boto3 over HTTP, as the EC2 task runner and its users see them.

The user data here is written by hand, as the runner's would be: bash that writes to S3 with
the `aws` stand-in and sends an SQS message with python3 and boto3, then `shutdown -h now`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler.sandbox import ec2_faults, moto_ext
from reconciler.sandbox.config import (
    AWS_CLI_ENV,
    PENDING_ENV,
    SERVER_DIR_ENV,
    TIME_SCALE_ENV,
    USER_DATA_ENV,
)
from tests.conftest import REGION, client

IMAGE = "ami-12c6146b"  # one of moto's images
OWNED = {
    "reconciler.io/managed-by": "reconciler",
    "reconciler.io/stack": "t",
    "reconciler.io/name": "n",
}
ENDED = ("terminated", "stopped")
SHUTDOWN_REASON = "Client.InstanceInitiatedShutdown: Instance initiated shutdown"


def tag_specs(*types: str, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    pairs = [{"Key": k, "Value": v} for k, v in (tags or OWNED).items()]
    return [{"ResourceType": t, "Tags": pairs} for t in types]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Ec2:
    endpoint: str
    ec2: Any
    root: Path  # the server's directory: instances/<id>/ under it

    def launch(self, user_data: str | None = None, owned: bool = True, **kwargs: Any) -> str:
        if owned:
            kwargs.setdefault("TagSpecifications", tag_specs("instance", "volume"))
        if user_data is not None:
            kwargs["UserData"] = user_data
        reply = self.ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, **kwargs)
        return str(reply["Instances"][0]["InstanceId"])

    def describe(self, instance_id: str) -> dict[str, Any]:
        [reservation] = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return dict(reservation["Instances"][0])

    def watch(
        self, instance_id: str, until: tuple[str, ...] = ENDED, timeout: float = 30.0
    ) -> tuple[list[str], dict[str, Any]]:
        """Polls until the instance is in one of `until`: (states seen in order, describe)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            found = self.describe(instance_id)
            state = found["State"]["Name"]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in until:
                return seen, found
            assert time.monotonic() < deadline, (
                f"{instance_id} still {state}: {self.log(instance_id)}"
            )
            time.sleep(0.02)

    def log(self, instance_id: str) -> str:
        return str(self.ec2.get_console_output(InstanceId=instance_id).get("Output", ""))

    def directory(self, instance_id: str) -> Path:
        return self.root / "instances" / instance_id

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)


@pytest.fixture
def sb(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ec2]:
    monkeypatch.setenv(PENDING_ENV, "0.3")
    monkeypatch.setenv(SERVER_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(AWS_CLI_ENV, "shim")  # the sandbox's `aws`, whatever the host has
    monkeypatch.delenv(USER_DATA_ENV, raising=False)
    yield Ec2(aws, client(aws, "ec2"), tmp_path)
    extensions = moto_ext.installed()
    if extensions is not None:  # the test's server outlives no instance process
        extensions.ec2.shutdown()


def test_user_data_runs_in_its_scratch_directory_and_shutdown_terminates_the_instance(
    sb, monkeypatch
):
    monkeypatch.setenv(PENDING_ENV, "1")  # long enough to be seen on a loaded machine
    s3, sqs = client(sb.endpoint, "s3"), client(sb.endpoint, "sqs")
    s3.create_bucket(Bucket="results")
    queue = sqs.create_queue(QueueName="run")["QueueUrl"]
    user_data = f"""#!/bin/bash -eu
trap 'shutdown -h now' EXIT
echo "$HOME|$(pwd)|$RECONCILER_SANDBOX_INSTANCE_ID" > where.txt
aws s3 cp where.txt s3://results/where.txt --quiet
sudo -E -u root env SUDO_WORKED=yes sh -c 'echo "sudo: $SUDO_WORKED"'
python3 - <<'EOF'
import boto3
boto3.client("sqs").send_message(QueueUrl="{queue}", MessageBody="task done")
EOF
echo "to stderr" >&2
"""
    instance_id = sb.launch(user_data, InstanceInitiatedShutdownBehavior="terminate")
    seen, found = sb.watch(instance_id)
    assert seen == ["pending", "running", "terminated"]
    assert found["StateReason"]["Message"] == SHUTDOWN_REASON
    assert found["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"

    home, cwd, me = (
        s3.get_object(Bucket="results", Key="where.txt")["Body"].read().decode().strip().split("|")
    )
    assert home == cwd == str(sb.directory(instance_id) / "home") and me == instance_id
    assert not Path(home).exists(), "the scratch directory goes with the instance"
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == "task done"
    output = sb.log(instance_id)
    assert "sudo: yes" in output and "to stderr" in output
    assert (sb.directory(instance_id) / "cloud-init-output.log").read_text() == output


def test_shutdown_stops_an_instance_by_default_and_a_start_does_not_run_it_again(sb):
    instance_id = sb.launch("#!/bin/sh\necho boot >> runs.txt\ncat runs.txt\npoweroff\n")
    seen, found = sb.watch(instance_id)
    assert seen[-2:] == ["running", "stopped"]
    assert found["StateReason"]["Message"] == SHUTDOWN_REASON
    assert (sb.directory(instance_id) / "home" / "runs.txt").read_text() == "boot\n", "kept"

    reply = sb.ec2.start_instances(InstanceIds=[instance_id])
    assert reply["StartingInstances"][0]["CurrentState"]["Name"] == "pending"
    sb.watch(instance_id, until=("running",))
    time.sleep(0.5)
    assert sb.describe(instance_id)["State"]["Name"] == "running", "user data runs once"
    assert sb.log(instance_id).count("boot") == 1


def test_user_data_that_exits_leaves_the_instance_running_and_terminate_kills_what_runs(sb):
    finished = sb.launch("#!/bin/sh\necho finished\nexit 3\n")
    looping = sb.launch("#!/bin/sh\nsleep 300 &\necho $! > child.pid\necho $$ > main.pid\nwait\n")
    home = sb.directory(looping) / "home"
    sb.wait_for(lambda: (home / "child.pid").exists() and (home / "main.pid").exists(), "pids")
    sb.wait_for(lambda: "exited with code 3" in sb.log(finished), "the first to exit")
    assert sb.describe(finished)["State"]["Name"] == "running", "as on EC2"

    pids = [int((home / name).read_text()) for name in ("main.pid", "child.pid")]
    assert all(alive(pid) for pid in pids)
    reply = sb.ec2.terminate_instances(InstanceIds=[looping, finished])
    assert {i["CurrentState"]["Name"] for i in reply["TerminatingInstances"]} <= {
        "shutting-down",
        "terminated",
    }
    assert not any(alive(pid) for pid in pids), "the whole process group is killed"
    assert not home.exists()
    found = sb.describe(looping)
    assert (found["State"]["Name"], found["StateReason"]["Code"]) == (
        "terminated",
        "Client.UserInitiatedShutdown",
    )


def test_stop_instances_kills_the_user_data(sb):
    instance_id = sb.launch("#!/bin/sh\necho $$ > main.pid\nexec sleep 300\n")
    pid_file = sb.directory(instance_id) / "home" / "main.pid"
    sb.wait_for(pid_file.exists, "the user data started")
    pid = int(pid_file.read_text())
    sb.ec2.stop_instances(InstanceIds=[instance_id])
    assert sb.describe(instance_id)["State"]["Name"] == "stopped"
    assert not alive(pid)


def test_instances_not_launched_by_the_tool_never_run_anything(sb):
    instance_id = sb.launch(
        "#!/bin/sh\ntouch /tmp/should-not-exist\nshutdown -h now\n", owned=False
    )
    sb.watch(instance_id, until=("running",))
    time.sleep(0.5)
    assert sb.describe(instance_id)["State"]["Name"] == "running"
    assert not sb.directory(instance_id).exists()
    assert "reconciler sandbox" not in sb.log(instance_id)


def test_a_setting_turns_user_data_off(sb, monkeypatch):
    monkeypatch.setenv(USER_DATA_ENV, "0")
    instance_id = sb.launch("#!/bin/sh\nshutdown -h now\n")
    sb.watch(instance_id, until=("running",))
    time.sleep(0.5)
    assert sb.describe(instance_id)["State"]["Name"] == "running"
    assert not sb.directory(instance_id).exists()


def test_a_client_token_launches_once_and_refuses_other_parameters(sb):
    first = sb.ec2.run_instances(
        ImageId=IMAGE,
        MinCount=1,
        MaxCount=1,
        ClientToken="run-1/task-a",
        TagSpecifications=tag_specs("instance"),
    )
    again = sb.ec2.run_instances(
        ImageId=IMAGE,
        MinCount=1,
        MaxCount=1,
        ClientToken="run-1/task-a",
        TagSpecifications=tag_specs("instance"),
    )
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [
        i["InstanceId"] for i in first["Instances"]
    ]
    with pytest.raises(ClientError) as refused:
        sb.ec2.run_instances(
            ImageId=IMAGE,
            MinCount=1,
            MaxCount=1,
            ClientToken="run-1/task-a",
            InstanceType="t3.large",
        )
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    other = sb.ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, ClientToken="run-1/task-b")
    assert other["ReservationId"] != first["ReservationId"]
    reservations = sb.ec2.describe_instances()["Reservations"]
    assert len([i for r in reservations for i in r["Instances"]]) == 2


def test_ids_of_a_launch_with_a_client_token_come_from_the_token_not_the_random_generator(sb):
    def launch() -> tuple[str, str]:
        reply = sb.ec2.run_instances(
            ImageId=IMAGE,
            MinCount=1,
            MaxCount=1,
            ClientToken="run-1/task-a",
            TagSpecifications=tag_specs("instance"),
        )
        return reply["ReservationId"], reply["Instances"][0]["InstanceId"]

    first = launch()
    _post(sb.endpoint, "/moto-api/reset", b"")
    _post(sb.endpoint, "/moto-api/seed?a=7", b"")  # another random sequence
    sb.ec2.create_vpc(CidrBlock="10.9.0.0/16")  # which other requests draw from
    assert launch() == first
    assert first[1].startswith("i-") and len(first[1]) == 19
    tagged = sb.ec2.describe_instances(
        Filters=[{"Name": "tag:reconciler.io/managed-by", "Values": ["reconciler"]}]
    )["Reservations"]
    assert [i["InstanceId"] for r in tagged for i in r["Instances"]] == [first[1]]


def test_a_spot_launch_has_a_tagged_spot_request_closed_when_the_instance_ends(sb):
    spot = {
        "MarketType": "spot",
        "SpotOptions": {"MaxPrice": "0.07", "SpotInstanceType": "one-time"},
    }
    specs = tag_specs("instance", "volume", "spot-instances-request")
    instance_id = sb.launch(
        "#!/bin/sh\nsleep 300\n", InstanceMarketOptions=spot, TagSpecifications=specs
    )
    [request] = sb.ec2.describe_spot_instance_requests(
        Filters=[{"Name": "tag:reconciler.io/managed-by", "Values": ["reconciler"]}]
    )["SpotInstanceRequests"]
    assert request["InstanceId"] == instance_id
    assert (request["State"], request["Status"]["Code"]) == ("active", "fulfilled")
    assert request["Type"] == "one-time" and float(request["SpotPrice"]) == 0.07
    found = sb.describe(instance_id)
    assert found["InstanceLifecycle"] == "spot"
    assert found["SpotInstanceRequestId"] == request["SpotInstanceRequestId"]
    volumes = sb.ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]
    assert volumes and all(
        {"Key": "reconciler.io/managed-by", "Value": "reconciler"} in v["Tags"] for v in volumes
    )

    sb.watch(instance_id, until=("running",))
    sb.ec2.terminate_instances(InstanceIds=[instance_id])
    [request] = sb.ec2.describe_spot_instance_requests(
        SpotInstanceRequestIds=[request["SpotInstanceRequestId"]]
    )["SpotInstanceRequests"]
    assert (request["State"], request["Status"]["Code"]) == (
        "closed",
        "instance-terminated-by-user",
    )


def test_cancelling_a_spot_request_leaves_it_described_as_cancelled(sb):
    instance_id = sb.launch(InstanceMarketOptions={"MarketType": "spot"})
    [request] = sb.ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    reply = sb.ec2.cancel_spot_instance_requests(
        SpotInstanceRequestIds=[request["SpotInstanceRequestId"]]
    )
    assert reply["CancelledSpotInstanceRequests"][0]["State"] == "cancelled"
    [request] = sb.ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    assert request["State"] == "cancelled" and request["InstanceId"] == instance_id
    with pytest.raises(ClientError) as unknown:
        sb.ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=["sir-00000000"])
    assert unknown.value.response["Error"]["Code"] == "InvalidSpotInstanceRequestID.NotFound"


def test_injected_capacity_errors_fail_the_next_matching_launches(sb):
    ec2 = _no_retries(sb.endpoint)  # boto3 would retry a 500 itself
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    ec2_faults.fail_launches(sb.endpoint, 2, subnet=subnets[0])
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, SubnetId=subnets[0])
        error = refused.value.response
        assert error["Error"]["Code"] == "InsufficientInstanceCapacity"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 500, "a server error, as on AWS"
        ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, SubnetId=subnets[1])
    ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, SubnetId=subnets[0])

    ec2_faults.fail_launches(sb.endpoint, 1, instance_type="t3.large", code="VcpuLimitExceeded")
    ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.small")
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.large")
    assert refused.value.response["Error"]["Code"] == "VcpuLimitExceeded"
    with pytest.raises(ValueError, match="code"):
        ec2_faults.fail_launches(sb.endpoint, 1, code="NoSuchError")
    reservations = ec2.describe_instances()["Reservations"]
    assert len(reservations) == 4, "a refused launch launches nothing"


def _no_retries(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.parametrize(
    ("cause", "code", "spot_status"),
    [
        ("spot-interruption", "Server.SpotInstanceTermination", "instance-terminated-no-capacity"),
        ("host-failure", "Server.InternalError", "instance-terminated-by-service"),
    ],
)
def test_an_injected_death_kills_the_instance_before_its_user_data_finishes(
    sb, cause, code, spot_status
):
    instance_id = sb.launch(
        "#!/bin/sh\necho $$ > main.pid\nsleep 300\necho finished\n",
        InstanceMarketOptions={"MarketType": "spot"},
    )
    pid_file = sb.directory(instance_id) / "home" / "main.pid"
    sb.wait_for(pid_file.exists, "the user data started")
    pid = int(pid_file.read_text())
    ec2_faults.kill_instance(sb.endpoint, instance_id, cause)
    found = sb.describe(instance_id)
    assert found["State"]["Name"] == "terminated"
    assert found["StateReason"]["Code"] == code and found["StateReason"]["Message"].startswith(code)
    assert not alive(pid) and "finished" not in sb.log(instance_id)
    [request] = sb.ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    assert (request["State"], request["Status"]["Code"]) == ("closed", spot_status)
    with pytest.raises(ValueError, match="no running instance"):
        ec2_faults.kill_instance(sb.endpoint, instance_id, cause)


def test_shutdown_at_a_later_time_waits_and_can_be_cancelled(sb, monkeypatch):
    monkeypatch.setenv(TIME_SCALE_ENV, "10")  # `+1` is 6 s
    later = sb.launch(
        "#!/bin/sh\nshutdown -h +1 'going down'\necho scheduled\nsleep 300\n",
        InstanceInitiatedShutdownBehavior="terminate",
    )
    cancelled = sb.launch("#!/bin/sh\nshutdown -h +1\nshutdown -c\necho cancelled\nsleep 300\n")
    seen, found = sb.watch(later)
    assert seen[-1] == "terminated" and found["StateReason"]["Message"] == SHUTDOWN_REASON
    assert "scheduled" in sb.log(later)
    sb.wait_for(lambda: "cancelled" in sb.log(cancelled), "the cancel")
    time.sleep(6.5)
    assert sb.describe(cancelled)["State"]["Name"] == "running"


def test_an_instance_is_never_described_ended_with_another_reason_than_its_own(sb, monkeypatch):
    """AWS: the state and its reason change together. moto sets the state and its own reason,
    the host the real one after that; here the host takes half a second to, and a
    DescribeInstances meanwhile waits for it instead of showing moto's reason."""
    instance_id = sb.launch(
        "#!/bin/sh\nshutdown -h now\n", InstanceInitiatedShutdownBehavior="terminate"
    )
    host = moto_ext.installed().ec2
    ended = host.ended

    def slowly(instance: Any, terminated: bool) -> None:
        time.sleep(0.5)
        ended(instance, terminated)

    monkeypatch.setattr(host, "ended", slowly)
    seen, found = sb.watch(instance_id)
    assert seen[-1] == "terminated"
    assert found["StateReason"]["Message"] == SHUTDOWN_REASON


def test_reboot_kills_the_user_data_and_the_instance_runs_on(sb):
    instance_id = sb.launch("#!/bin/sh\necho before\nsudo reboot\necho after\n")
    sb.wait_for(lambda: "rebooted" in sb.log(instance_id), "the reboot")
    time.sleep(0.3)
    assert sb.describe(instance_id)["State"]["Name"] == "running"
    assert "before" in sb.log(instance_id) and "after" not in sb.log(instance_id)


def test_gzip_user_data_runs_and_other_kinds_are_noted(sb):
    import gzip

    zipped = sb.launch(gzip.compress(b"#!/bin/sh\necho from gzip\n"))  # boto3 encodes bytes
    config = sb.launch("#cloud-config\nruncmd: [echo hi]\n")
    sb.wait_for(lambda: "from gzip" in sb.log(zipped), "the gzip user data")
    sb.wait_for(lambda: "not a #! script" in sb.log(config), "the note")


def test_the_admin_call_refuses_what_it_does_not_know(sb):
    with pytest.raises(ValueError, match="expected one of"):
        ec2_faults.post(sb.endpoint, {"explode": {}})
    # moto's own config call is untouched
    assert "batch" in json.loads(_post_config(sb.endpoint, {"batch": {"use_docker": False}}))


def _post_config(endpoint: str, body: dict[str, Any]) -> str:
    return _post(endpoint, "/moto-api/config", json.dumps(body).encode())


def _post(endpoint: str, path: str, body: bytes) -> str:
    import urllib.request

    req = urllib.request.Request(f"{endpoint}{path}", data=body, method="POST")
    with urllib.request.urlopen(req) as reply:
        return str(reply.read().decode())


def test_the_process_sees_the_sandbox_and_not_the_host(sb, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("SECRET_OF_THE_HOST", "x")
    instance_id = sb.launch(
        "#!/bin/sh\nenv | sort\n"
        "for c in python3 shutdown halt poweroff reboot sudo aws; do command -v $c; done\n"
    )
    sb.wait_for(lambda: "exited with code" in sb.log(instance_id), "the user data")
    output = sb.log(instance_id)
    assert f"AWS_ENDPOINT_URL={sb.endpoint}" in output and f"AWS_DEFAULT_REGION={REGION}" in output
    assert "AWS_PROFILE" not in output and "SECRET_OF_THE_HOST" not in output
    standins = sb.directory(instance_id) / "bin"
    for name in ("python3", "shutdown", "halt", "poweroff", "reboot", "sudo"):
        assert f"{standins}/{name}\n" in output, name
    assert os.environ.get("AWS_PROFILE") == "production"


def test_ending_an_instance_spares_another_sandboxs_instance_of_the_same_id(tmp_path):
    """Instance IDs come from client tokens, so two sandboxes on one machine (a user's and a
    test run's) can each run an instance of the same ID: ending one must not kill the other's
    processes (it did, when processes were recognised by the instance ID alone)."""
    import os
    import subprocess

    from reconciler.sandbox import ec2_machine

    procs = {}
    for server in ("one", "two"):
        directory = tmp_path / server / "instances" / "i-0123456789abcdef0"
        directory.mkdir(parents=True)
        env = {
            **os.environ,
            ec2_machine.INSTANCE_ENV: directory.name,
            ec2_machine.MARK_ENV: str(directory.resolve()),
        }
        procs[server] = (directory, subprocess.Popen(["sleep", "60"], env=env))
    try:
        ec2_machine.kill_marked(procs["one"][0])
        assert procs["one"][1].wait(10) == -9
        assert procs["two"][1].poll() is None, "the other sandbox's instance was killed"
        assert ec2_machine.marked(procs["two"][0]) == [procs["two"][1].pid]
    finally:
        for _, proc in procs.values():
            proc.kill()
            proc.wait()
