"""Baking an image on a builder instance: the steps of a build, and what deletes images.

The kind (kinds/ of MachineImage) decides what to build; this module carries a build out with
the EC2-task machinery (runs/ec2_launch.py's request and retries, the agent's user data and its
exit code in S3), as one observation-driven step function (`Builder.step`): every call reads
AWS (the builder by its tags, the image by its recipe hash), takes the next step and returns
Pending, so no worker sleeps and a re-plan (a killed CLI, the operator) continues where it was:
launch -> the agent's exit code in S3 -> stop -> CreateImage -> available -> tag snapshots ->
terminate the builder, delete its security group and queue.

AWS quirks handled here:
- A one-time spot instance cannot be stopped: a spot builder's image is created from the
  running instance (CreateImage reboots it first, for a consistent file system).
- moto raises NotImplementedError on snapshot TagSpecifications in CreateImage: snapshots are
  tagged with CreateTags once the image is available (on AWS too: one code path).
- CreateImage names are unique per account and region: a lost reply's retry fails with
  InvalidAMIName.Duplicate; the image is then found by its recipe tag.
- DeregisterImage leaves the image's snapshots (and billing for them): each is deleted after.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.aws.errors import IAM_DELAYS, iam_propagating
from reconciler.aws.tags import MANAGED_BY, NAME, STACK, TOOL, ownership_tags
from reconciler.engine.context import Context
from reconciler.engine.types import Pending, Step
from reconciler.errors import NotFoundError, PlanError, ProviderError, RunFailed
from reconciler.models.ec2_task import Ec2Settings
from reconciler.runs import ec2_launch, identity
from reconciler.runs import ec2_scratch as scratch

RECIPE = "reconciler.io/recipe"
ROLE = "reconciler.io/role"
BUILDER = "image-builder"
LIVE = ("pending", "running", "stopping", "stopped")
TAIL_LINES = 20
RECEIVE_BATCH = 10  # SQS's most messages a receive: a full batch means more are waiting
FAILED = "failed.json"  # under the build's prefix: why the build of this recipe failed
# On an image from CreateImage until its build has ended the builder and deleted its group and
# queue: a plan that finds it (a killed CLI, the operator's next reconcile, which re-plans and
# sees the image in sync) finishes that cleanup, so no builder outlives its build.
UNFINISHED = "reconciler.io/unfinished-build"


def failed_build(ctx: Context, res: Any, recipe_hash: str) -> str | None:
    """Why the last build of this recipe failed, if it did (one GetObject)."""
    run = f"mi-{recipe_hash[:10]}"
    text = scratch.read_text(ctx, scratch.run_prefix(ctx.stack, res.KIND, res.name, run) + FAILED)
    if text is None:
        return None
    try:
        return str(json.loads(text).get("reason") or "unknown")
    except ValueError:
        return "unknown"


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}


def pairs(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def file_etags(ctx: Context, spec: Any) -> dict[str, str]:
    """Each build file's ETag (HeadObject): a new object under the same name is a new recipe."""
    out = {}
    for f in spec.build.files or []:
        bucket, _, key = f.source.removeprefix("s3://").partition("/")
        try:
            head = ctx.aws.client("s3").head_object(Bucket=bucket, Key=key)
        except ProviderError as exc:
            raise PlanError(f"spec.build.files: {f.source}: {exc}") from exc
        out[f.source] = str(head.get("ETag") or "").strip('"')
    return out


def build_script(spec: Any) -> str:
    """The user's script, after copying the build files with python3 + boto3 (the agent's)."""
    lines = ["set -e"]
    for f in spec.build.files or []:
        bucket, _, key = f.source.removeprefix("s3://").partition("/")
        target = f.path + key.rsplit("/", 1)[-1] if f.path.endswith("/") else f.path
        code = (
            "import boto3,os,sys; os.makedirs(os.path.dirname(sys.argv[3]) or '/', "
            "exist_ok=True); boto3.client('s3').download_file(sys.argv[1], sys.argv[2], "
            "sys.argv[3])"
        )
        lines.append(
            f"python3 -c {shlex.quote(code)} {shlex.quote(bucket)} {shlex.quote(key)} "
            f"{shlex.quote(target)}"
        )
    return "\n".join(lines) + "\n" + spec.build.script


@dataclass
class Builder:
    """The build of one recipe, as steps recovered from AWS each time."""

    res: Any  # the MachineImage
    recipe_hash: str
    parts: dict[str, str]
    base: str
    tags: dict[str, str]  # the image's (and the builder's) tags
    image_name: str  # chosen at plan time, so that a retried CreateImage finds the same name
    profile: str | None = None  # the builder's instance profile (name or ARN)
    attempt: int = 0
    iam_waits: int = 0
    not_before: float = 0.0
    outcome: str | None = None  # the image is available: winding up
    image_id: str | None = None  # the image made, once available
    receiver: Any = None  # the script's output, live, while someone follows the apply
    queue: str | None = None
    failure: str | None = None  # the build failed: winding up, then raised
    # As an EC2 task's (settable for slow bases): the builder's deadline tag is its timeout
    # plus this after launch, and a plan waits for a build its timeout plus twice this.
    boot_slack: float = field(default_factory=ec2_launch.boot_slack_from_env)

    @property
    def run(self) -> str:
        return f"mi-{self.recipe_hash[:10]}"  # as failed_build

    def _prefix(self, ctx: Context) -> str:
        return scratch.run_prefix(ctx.stack, self.res.KIND, self.res.name, self.run)

    def _builder_tags(self, ctx: Context) -> dict[str, str]:
        return {
            **self.tags,
            **identity.run_tags(self.res, ctx.stack, BUILDER, self.run),
            ROLE: BUILDER,
            ec2_launch.DEADLINE: str(
                int(time.time() + self.boot_slack) + self.res.spec.build.timeoutSeconds
            ),
        }

    def _filters(self, ctx: Context) -> list[dict[str, Any]]:
        return [
            {"Name": f"tag:{MANAGED_BY}", "Values": [TOOL]},
            {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
            {"Name": f"tag:{NAME}", "Values": [self.res.name]},
            {"Name": f"tag:{identity.KIND}", "Values": [self.res.KIND]},
            {"Name": f"tag:{RECIPE}", "Values": [self.recipe_hash]},
        ]

    def step(self, ctx: Context) -> Step:
        ec2 = ctx.aws.client("ec2")
        instances = [
            i
            for r in ec2.describe_instances(Filters=self._filters(ctx))["Reservations"]
            for i in r["Instances"]
        ]
        builders = [i for i in instances if i["State"]["Name"] in LIVE]
        if self.outcome is not None or self.failure is not None:
            return self._wind_up(ctx, instances)
        images = ec2.describe_images(Owners=["self"], Filters=self._filters(ctx)).get("Images")
        image = (images or [None])[0]
        if image is not None:
            if image.get("State") == "pending":
                return Pending(f"image {image['ImageId']} is being created", self.step, 5.0)
            if image.get("State") != "available":
                self.failure = f"image {image['ImageId']} is {image.get('State')}"
                return self._wind_up(ctx, instances)
            snapshots = [
                m["Ebs"]["SnapshotId"]
                for m in image.get("BlockDeviceMappings") or []
                if (m.get("Ebs") or {}).get("SnapshotId")
            ]
            if snapshots:
                ec2.create_tags(Resources=snapshots, Tags=pairs(self.tags))
            self.image_id = image["ImageId"]
            self.outcome = f"{image['ImageId']} ({image.get('Name')}) available"
            return self._wind_up(ctx, instances)
        code = scratch.read_text(ctx, f"{self._prefix(ctx)}{BUILDER}/exitCode")
        code = None if code is None else code.strip()
        if code is not None and code != "0":
            self.failure = self._failure(ctx, code)
            return self._wind_up(ctx, instances)
        if not builders:
            return self._launch(ctx)
        builder = builders[0]
        state = builder["State"]["Name"]
        self._follow(ctx)
        if code is None:
            if state in ("stopping", "stopped"):
                self.failure = (
                    f"the builder {builder['InstanceId']} stopped before its script ended"
                )
                return self._wind_up(ctx, instances)
            return Pending(f"builder {builder['InstanceId']} runs the script", self.step, 5.0)
        spot = builder.get("InstanceLifecycle") == "spot"
        if state in ("pending", "stopping") or (state == "running" and not spot):
            if state == "running":
                ec2.stop_instances(InstanceIds=[builder["InstanceId"]])
            return Pending(f"stopping the builder {builder['InstanceId']}", self.step, 5.0)
        return self._create_image(ctx, builder)

    def finish(self, ctx: Context, image: dict[str, Any]) -> Step:
        """Ends what the build of an available image left (see UNFINISHED), as its last steps
        would have: its snapshots tagged like it, the builder, its group and its queue."""
        if self.image_id is None:
            tags = {k: v for k, v in tags_of(image).items() if k != UNFINISHED}
            snapshots = [
                m["Ebs"]["SnapshotId"]
                for m in image.get("BlockDeviceMappings") or []
                if (m.get("Ebs") or {}).get("SnapshotId")
            ]
            if snapshots:
                ctx.aws.client("ec2").create_tags(Resources=snapshots, Tags=pairs(tags))
            self.image_id = image["ImageId"]
            self.outcome = f"the build of {image['ImageId']} cleaned up"
        return self.step(ctx)

    def _follow(self, ctx: Context) -> None:
        """Prints what the script wrote since the last step (`NAME/image-builder: line`), as
        EC2 tasks do; one short receive a step, so a step never waits long."""
        if not ctx.options.stream_output:
            return
        if self.receiver is None:
            from reconciler.agent.receiver import Receiver

            name = scratch.queue_name(ctx.stack, self.res.KIND, self.res.name, self.run)
            self.queue = self.queue or scratch.queue_url(ctx, name)
            if self.queue is None:
                return
            subject = self.res.name

            def show(task: str, stream: str, line: str) -> None:
                ctx.log(f"{subject}/{task}{'!' if stream == 'stderr' else ''}: {line}")

            self.receiver = Receiver(ctx.aws.client("sqs"), self.queue, None, show)
        while self.receiver.poll(wait_seconds=0) == RECEIVE_BATCH:
            pass

    def _wind_up(self, ctx: Context, instances: list[dict[str, Any]]) -> Step:
        """Terminates the builder, waits until it is gone (a terminating instance still holds
        its group), deletes the group and the queue, then reports the outcome."""
        live = [i["InstanceId"] for i in instances if i["State"]["Name"] in LIVE]
        if live:
            ctx.aws.client("ec2").terminate_instances(InstanceIds=live)
            return Pending(f"ending the builder {', '.join(live)}", self.step, 2.0)
        if any(i["State"]["Name"] == "shutting-down" for i in instances):
            return Pending("waiting for the builder to terminate", self.step, 5.0)
        if self.receiver is not None:
            self._follow(ctx)  # the last lines, before the queue goes
        self._clean(ctx)
        if self.image_id is not None and self.failure is None:
            ctx.aws.client("ec2").delete_tags(Resources=[self.image_id], Tags=[{"Key": UNFINISHED}])
        if self.failure is not None:
            # Recorded: the next plan refuses to pay for this recipe again (spec.rebuild does).
            scratch.put_json(ctx, self._prefix(ctx) + FAILED, {"reason": self.failure})
            raise RunFailed(self.failure)
        return str(self.outcome)

    def _failure(self, ctx: Context, code: str) -> str:
        prefix = f"{self._prefix(ctx)}{BUILDER}/"
        out = (scratch.read_text(ctx, prefix + "stdout") or "").splitlines()
        err = (scratch.read_text(ctx, prefix + "stderr") or "").splitlines()
        tail = "\n".join((out + err)[-TAIL_LINES:])
        return f"the build script exited with {code}; its last lines:\n{tail}"

    def _create_image(self, ctx: Context, builder: dict[str, Any]) -> Step:
        spec = self.res.spec
        name = self.image_name
        request: dict[str, Any] = {
            "InstanceId": builder["InstanceId"],
            "Name": name,
            "Description": f"reconciler {self.res.KIND} {self.res.name} {self.recipe_hash[:8]}",
            "TagSpecifications": [
                {"ResourceType": "image", "Tags": pairs({**self.tags, UNFINISHED: "true"})}
            ],
        }
        if spec.image.blockDeviceMappings:
            request["BlockDeviceMappings"] = [
                {
                    "DeviceName": m.deviceName,
                    "Ebs": {
                        k[0].upper() + k[1:]: v
                        for k, v in m.ebs.model_dump(exclude_none=True).items()
                    },
                }
                for m in spec.image.blockDeviceMappings
            ]
        try:
            image_id = ctx.aws.client("ec2").create_image(**request)["ImageId"]
        except ProviderError as exc:
            if exc.code != "InvalidAMIName.Duplicate":
                raise
            return Pending(f"image {name} exists: reading it again", self.step, 2.0)
        ctx.log(f"  {self.res.name}: creating image {image_id} ({name})")
        return Pending(f"image {image_id} is being created", self.step, 5.0)

    def _launch(self, ctx: Context) -> Step:
        from reconciler.agent.userdata import build_user_data

        if time.monotonic() < self.not_before:
            return Pending("waiting before the next launch attempt", self.step, 2.0)
        build = self.res.spec.build
        prefix = f"{self._prefix(ctx)}{BUILDER}/"
        bucket = scratch.ensure_bucket(ctx)
        tags = self._builder_tags(ctx)
        queue = scratch.ensure_queue(
            ctx, scratch.queue_name(ctx.stack, self.res.KIND, self.res.name, self.run), tags
        )
        self.queue = queue
        user_data = build_user_data(
            script=build_script(self.res.spec),
            task=BUILDER,
            run=self.run,
            queue_url=queue,
            region=ctx.aws.region,
            s3_prefix=f"s3://{bucket}/{prefix}",
            keep_alive=True,  # the image is made from the instance after the script ends
            timeout_seconds=build.timeoutSeconds,
        )
        for key, body in user_data.uploads.items():
            scratch.put(ctx, f"{prefix}{key}", body)
        subnets = ctx.resolver.subnets(build.subnets or [{"defaultVpc": True}])
        groups = (
            ctx.resolver.security_groups(build.securityGroupIds)
            if build.securityGroupIds
            else [self._security_group(ctx, subnets)]
        )
        # One instance type per attempt, and the subnets in turn within it.
        instance_type = build.instanceTypes[self.attempt % len(build.instanceTypes)]
        subnet = (
            subnets[(self.attempt // len(build.instanceTypes)) % len(subnets)] if subnets else None
        )
        settings = Ec2Settings(
            instanceType=instance_type,
            image=self.base,
            spot=build.spot,
            volumeSizeGiB=build.volumeSizeGiB,
        )
        request = ec2_launch.launch_request(
            settings,
            image_id=self.base,
            subnet=subnet,
            security_groups=groups,
            profile=self.profile,
            user_data=user_data.text,
            tags=tags,
            token=ec2_launch.client_token(
                ctx.stack, self.res.KIND, self.res.name, self.run, BUILDER, self.attempt
            ),
        )
        try:
            reply = ctx.aws.client("ec2", retries=False).run_instances(**request)
        except ProviderError as exc:
            if iam_propagating(exc) and self.iam_waits < len(IAM_DELAYS):
                self.iam_waits += 1  # a profile made by this apply, not yet seen by EC2
                return Pending(f"waiting for IAM: {exc}", self.step, IAM_DELAYS[self.iam_waits - 1])
            if exc.code not in ec2_launch.CAPACITY:
                raise
            self.attempt += 1
            if self.attempt >= ec2_launch.LaunchRetries.from_env().attempts:
                self._clean(ctx)
                raise RunFailed(f"no builder after {self.attempt} attempts: {exc}") from exc
            self.not_before = time.monotonic() + ec2_launch.jitter(5.0)
            ctx.log(f"  {self.res.name}: {exc.code} for {instance_type} in {subnet}: next")
            return Pending("launching the builder again", self.step, 1.0)
        instance = reply["Instances"][0]["InstanceId"]
        shown = {k: v for k, v in request.items() if k != "UserData"}  # as EC2 tasks keep it
        scratch.put_json(ctx, f"{prefix}ec2.json", {"request": shown, "instance": instance})
        ctx.log(f"  {self.res.name}: builder {instance} ({instance_type}, {subnet}) launched")
        return Pending(f"builder {instance} launched", self.step, 5.0)

    def _security_group(self, ctx: Context, subnets: list[str]) -> str:
        """A group with no inbound rule for this build (the builder needs none)."""
        ec2 = ctx.aws.client("ec2")
        name = f"reconciler-builder-{ctx.stack}-{self.res.name}-{self.recipe_hash[:8]}"[:255]
        found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
        if found.get("SecurityGroups"):
            return str(found["SecurityGroups"][0]["GroupId"])
        vpc = None
        if subnets:
            vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
        tags = {**ownership_tags(ctx.stack, self.res.name), ROLE: BUILDER}
        tags[RECIPE] = self.recipe_hash
        reply = ec2.create_security_group(
            GroupName=name,
            Description="reconciler image builder: no inbound access",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": pairs(tags)}],
            **({"VpcId": vpc} if vpc else {}),
        )
        return str(reply["GroupId"])

    def _clean(self, ctx: Context) -> None:
        """Deletes the build's group and queue (its builder is gone)."""
        ec2 = ctx.aws.client("ec2")
        groups = (
            ec2.describe_security_groups(
                Filters=[
                    {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
                    {"Name": f"tag:{NAME}", "Values": [self.res.name]},
                    {"Name": f"tag:{RECIPE}", "Values": [self.recipe_hash]},
                ]
            ).get("SecurityGroups")
            or []
        )
        for group in groups:
            try:
                ec2.delete_security_group(GroupId=group["GroupId"])
            except ProviderError as exc:  # still attached somehow: `reconciler gc` deletes it
                ctx.log(f"  {self.res.name}: security group {group['GroupId']} kept: {exc.code}")
        url = scratch.queue_url(
            ctx, scratch.queue_name(ctx.stack, self.res.KIND, self.res.name, self.run)
        )
        if url:
            scratch.delete_queue(ctx, url)


def images_in_use(ctx: Context, image_ids: list[str]) -> set[str]:
    """Which of `image_ids` a compute environment, a launch template or an instance uses."""
    if not image_ids:
        return set()
    used: set[str] = set()
    batch = ctx.aws.client("batch")
    for page in batch.get_paginator("describe_compute_environments").paginate():
        for ce in page.get("computeEnvironments") or []:
            resources = ce.get("computeResources") or {}
            used.add(resources.get("imageId") or "")
            used.update(
                c.get("imageIdOverride") or "" for c in resources.get("ec2Configuration") or []
            )
    ec2 = ctx.aws.client("ec2")
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        for template in page.get("LaunchTemplates") or []:
            versions = ec2.describe_launch_template_versions(
                LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest", "$Default"]
            )
            for v in versions.get("LaunchTemplateVersions") or []:
                used.add((v.get("LaunchTemplateData") or {}).get("ImageId") or "")
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "image-id", "Values": image_ids},
            {"Name": "instance-state-name", "Values": list(LIVE)},
        ]
    )["Reservations"]
    used.update(i["ImageId"] for r in reservations for i in r["Instances"])
    return used & set(image_ids)


def deregister(ctx: Context, image: dict[str, Any]) -> None:
    """DeregisterImage, then DeleteSnapshot of each of its snapshots (owned with the image)."""
    ec2 = ctx.aws.client("ec2")
    with contextlib.suppress(NotFoundError):  # deregistered already: an interrupted delete
        ec2.deregister_image(ImageId=image["ImageId"])
    for m in image.get("BlockDeviceMappings") or []:
        snapshot = (m.get("Ebs") or {}).get("SnapshotId")
        if snapshot:
            with contextlib.suppress(NotFoundError):
                ec2.delete_snapshot(SnapshotId=snapshot)
