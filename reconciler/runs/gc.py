"""What interrupted runs left behind, found by the tags every resource carries from creation.

A run's driver (apply, or the operator) ends what it started: on success, on failure, on
Ctrl-C. A driver that was killed (`kill -9`, a lost laptop) cannot, so `reconciler gc` looks
for a stack's leftovers while holding the stack's lease, which proves no apply of that stack is
driving a run right now:
- instances of attached (not detached) EC2 tasks: no one follows them, terminate them;
- instances of detached tasks past the deadline they were tagged with at launch (their timeout
  plus boot time): terminate them; younger ones are doing what they were asked;
- spot requests of ours still open or active whose instance is gone or being ended: cancel;
- run queues whose run has no instance left running: delete;
- security groups an image build made for its builder (runs/image_build.py): delete, after
  the builders (a builder is an attached task of its build's run, so it is ended above).
The run's S3 prefix stays: it is the run's record and its output (`logs`), and expires with the
bucket's lifecycle rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reconciler.aws.tags import MANAGED_BY, STACK, TOOL
from reconciler.engine.context import Context
from reconciler.errors import NotFoundError, ProviderError
from reconciler.runs import ec2_launch, identity
from reconciler.runs import ec2_scratch as scratch
from reconciler.runs.ec2_state import DETACHED, owned_instances
from reconciler.runs.image_build import BUILDER, ROLE

LIVE = ("pending", "running", "stopping", "stopped")
GROUP_ATTEMPTS = 10  # about a minute for terminated builders to let go of their group
GROUP_WAIT = 6.0


@dataclass
class Leftover:
    what: str  # instance, spot request, queue
    id: str
    why: str


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}


def find(ctx: Context, now: float | None = None) -> list[Leftover]:
    """Everything of the stack's runs that no driver will end (read-only)."""
    now = time.time() if now is None else now
    out: list[Leftover] = []
    instances = owned_instances(ctx, [{"Name": f"tag:{STACK}", "Values": [ctx.stack]}])
    live_runs: set[str] = set()
    ending: set[str] = set()
    for instance in instances:
        tags = _tags(instance)
        run = tags.get(identity.RUN)
        state = (instance.get("State") or {}).get("Name")
        if not run or state not in LIVE:
            ending.add(instance["InstanceId"])
            continue
        task = f"{tags.get(identity.KIND, '?')}/{tags.get('reconciler.io/name', '?')}"
        where = f"run {run} of {task}, task {tags.get(identity.TASK, '?')}"
        deadline = float(tags.get(ec2_launch.DEADLINE) or 0)
        if tags.get(DETACHED) != "true":
            out.append(Leftover("instance", instance["InstanceId"], f"{where}: no driver"))
            ending.add(instance["InstanceId"])
        elif deadline and now > deadline:
            out.append(Leftover("instance", instance["InstanceId"], f"{where}: past its timeout"))
            ending.add(instance["InstanceId"])
        else:
            live_runs.add(run)
    pages = ctx.aws.client("ec2").get_paginator("describe_spot_instance_requests")
    filters = [
        {"Name": f"tag:{MANAGED_BY}", "Values": [TOOL]},
        {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
        {"Name": "state", "Values": ["open", "active"]},
    ]
    for page in pages.paginate(Filters=filters):
        for request in page.get("SpotInstanceRequests") or []:
            instance = request.get("InstanceId")
            if not instance or instance in ending:
                out.append(
                    Leftover("spot request", request["SpotInstanceRequestId"], "no live instance")
                )
    out += [
        Leftover("queue", url, "its run has no instance left running")
        for url, run in _run_queues(ctx)
        if run not in live_runs
    ]
    groups = ctx.aws.client("ec2").get_paginator("describe_security_groups")
    builder_groups = [
        {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
        {"Name": f"tag:{ROLE}", "Values": [BUILDER]},
    ]
    out += [
        Leftover("security group", g["GroupId"], f"made for an image builder ({g['GroupName']})")
        for page in groups.paginate(Filters=builder_groups)
        for g in page.get("SecurityGroups") or []
        if _tags(g).get(MANAGED_BY) == TOOL
    ]
    return out


def _run_queues(ctx: Context) -> list[tuple[str, str]]:
    """(URL, run) of the stack's run queues."""
    sqs = ctx.aws.client("sqs")
    urls = [
        u
        for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=scratch.QUEUE_PREFIX)
        for u in page.get("QueueUrls") or []
    ]
    found = []
    for url in urls:
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
        if tags.get(MANAGED_BY) == TOOL and tags.get(STACK) == ctx.stack:
            found.append((url, tags.get(identity.RUN, "")))
    return found


def remove(ctx: Context, leftovers: list[Leftover]) -> None:
    """Ends what `find` found: instances first (their spot requests close with them)."""
    ec2 = ctx.aws.client("ec2")
    instances = [x.id for x in leftovers if x.what == "instance"]
    for i in range(0, len(instances), 1000):
        ec2.terminate_instances(InstanceIds=instances[i : i + 1000])
    spots = [x.id for x in leftovers if x.what == "spot request"]
    for i in range(0, len(spots), 1000):
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=spots[i : i + 1000])
    for x in leftovers:
        if x.what == "queue":
            scratch.delete_queue(ctx, x.id)
    for x in leftovers:
        if x.what == "security group":
            _delete_group(ctx, x.id)


def _delete_group(ctx: Context, group: str) -> None:
    """A builder's group, once its instance has let go of it (a terminating instance keeps its
    network interface, and the group, for a while: DependencyViolation until then)."""
    ec2 = ctx.aws.client("ec2")
    for attempt in range(GROUP_ATTEMPTS):
        try:
            ec2.delete_security_group(GroupId=group)
            return
        except NotFoundError:
            return
        except ProviderError as exc:
            if exc.code != "DependencyViolation" or attempt == GROUP_ATTEMPTS - 1:
                ctx.log(f"security group {group} kept ({exc.code}): run `reconciler gc` again")
                return
            time.sleep(GROUP_WAIT)
