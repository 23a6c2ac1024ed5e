"""MachineImage: decides whether to bake an image, and which old images go (issue #12).

One MachineImage is observed as one resource whatever number of images it has: `arn` is the
current image (the newest available one), `extra["images"]` all of its owned images, and its
spec `{"recipe": HASH}`. The desired spec carries the hash of the recipe as it is now (base
resolved, S3 ETags read), so the engine's own diff decides: equal means nothing is built, a
different hash is an update, which is a build (runs/image_build.py carries it out, in steps
that never block a worker).

AWS quirks handled here:
- DescribeImages with Owners=self and tag filters reads every image of the stack in one call.
- An SSM public parameter (`/aws/service/ecs/optimized-ami/...`) is read with GetParameter.
"""

from __future__ import annotations

from typing import Any

from reconciler.aws.tags import MANAGED_BY, NAME, STACK, TOOL, owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.decide import spec_changes
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Pending, Step, Verb, Work
from reconciler.errors import NotFoundError, PlanError, ProviderError, RunFailed
from reconciler.kinds.base import Column, Kind, Permission, desired_tags
from reconciler.models.common import RoleReference
from reconciler.models.ec2_task import ImageLookup
from reconciler.models.machine_image import (
    ImageState,
    MachineImage,
    SsmParameter,
    build_reason,
    cost_bound,
    image_name,
    new_image,
    parse_parts,
    parts_tag,
    recipe,
)
from reconciler.models.role import Role
from reconciler.runs import ec2_launch, identity
from reconciler.runs.image_build import (
    RECIPE,
    UNFINISHED,
    Builder,
    deregister,
    failed_build,
    file_etags,
    images_in_use,
    pairs,
    tags_of,
)

PARTS = "reconciler.io/recipe-parts"
BASE = "reconciler.io/base"


def owned_images(ctx: Context) -> list[dict[str, Any]]:
    """Every image of the stack's MachineImages: one DescribeImages (Owners=self, by tags)."""

    def read() -> list[dict[str, Any]]:
        reply = ctx.aws.client("ec2").describe_images(
            Owners=["self"],
            Filters=[
                {"Name": f"tag:{MANAGED_BY}", "Values": [TOOL]},
                {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
                {"Name": f"tag:{identity.KIND}", "Values": [MachineImage.KIND]},
            ],
        )
        return list(reply.get("Images") or [])

    return list(ctx.resolver.once(("machine-images", ctx.stack), read))


def _newest(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    ready = [i for i in images if i.get("State") == "available"]
    return max(ready, key=lambda i: i.get("CreationDate") or "") if ready else None


def resolve_base(ctx: Context, base: Any) -> tuple[str, str]:
    """(image id, architecture) of the base: an id, an SSM parameter, or the newest match."""

    def find() -> tuple[str, str]:
        ec2 = ctx.aws.client("ec2")
        if isinstance(base, SsmParameter):
            name = base.ssmParameter.removeprefix("resolve:ssm:")
            try:
                value = ctx.aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
            except NotFoundError as exc:
                raise PlanError(f"spec.base: no SSM parameter {name}") from exc
            image_id = str(value)
        elif isinstance(base, ImageLookup):
            image_id = ec2_launch.resolve_image(ctx, base)
        else:
            image_id = str(base)
        try:
            found = ec2.describe_images(ImageIds=[image_id]).get("Images") or []
        except ProviderError as exc:
            raise PlanError(f"spec.base: image {image_id}: {exc}") from exc
        if not found:
            raise PlanError(f"spec.base: image {image_id} does not exist")
        return image_id, str(found[0].get("Architecture") or "x86_64")

    key = ("mi-base", repr(base))
    return tuple(ctx.resolver.once(key, find))  # type: ignore[return-value]


class MachineImageKind(Kind):
    model = MachineImage
    spec_model = ImageState  # the recipe hash, not the spec: see the module docstring
    busy_statuses = ("pending",)
    ready_statuses = ("available",)
    conflicts_by_name = False  # images are named by the template: no name to take
    collected_when_undeclared = True  # snapshots bill monthly: `gc -f` ends what is undeclared
    columns = (
        Column("Image", "imageId", description="The current image."),
        Column("Status", "awsStatus", description="What EC2 reports of it."),
        Column("Images", "images", "integer", "Owned images kept."),
    )
    permissions = (
        # The builder (runs/image_build.py): launched tagged, stopped, imaged, terminated; its
        # group made and deleted; images and their snapshots made, tagged and deleted. Amazon's
        # base images have no account in their ARN; ours do.
        Permission(
            "ImageBuilds",
            "ec2",
            (
                "RunInstances",
                "CreateTags",
                "DeleteTags",  # the image's unfinished-build mark, once the build has ended
                "StopInstances",
                "TerminateInstances",
                "CreateImage",
                "DeregisterImage",
                "DeleteSnapshot",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
            ),
            # The builder's group is made in a VPC; its images and their snapshots are ours.
            (*ec2_launch.LAUNCH_RESOURCES, "vpc/*", "image/*", "snapshot/*"),
        ),
        # A base given as an SSM parameter (AWS's public ones have no account in their ARN).
        Permission(
            "ImageBaseParameters",
            "ssm",
            ("GetParameter",),
            ("parameter/*", "arn:{partition}:ssm:{region}::parameter/aws/service/*"),
        ),
        # Build files are read by ETag (HeadObject is authorised as GetObject).
        Permission("ImageBuildFiles", "s3", ("GetObject",), ("arn:{partition}:s3:::*/*",)),
    )

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        if not declared and not everything:
            return []  # a stack without machine images reads no image
        by_name: dict[str, list[dict[str, Any]]] = {}
        for image in owned_images(ctx):
            by_name.setdefault(tags_of(image).get(NAME, ""), []).append(image)
        wanted = {r.name for r in declared}
        out = []
        for name, images in sorted(by_name.items()):
            if not everything and name not in wanted:
                continue
            images.sort(key=lambda i: i.get("CreationDate") or "", reverse=True)
            current = _newest(images) or images[0]
            tags = tags_of(current)
            out.append(
                Observed(
                    kind=self.name,
                    aws_name=name,
                    arn=current["ImageId"],
                    spec={
                        "recipe": tags.get(RECIPE),
                        "tags": {k: v for k, v in user_tags(tags).items() if k != UNFINISHED},
                    },
                    owner=owner_of(tags),
                    status=current.get("State"),
                    extra={"images": images},
                )
            )
        return out

    def _recipe(self, ctx: Context, res: MachineImage) -> tuple[str, dict[str, str], str]:
        """(hash, parts, base id) of the recipe as it is now; without rebuildOnNewBase the base
        of the newest owned image stays pinned."""

        def make() -> tuple[str, dict[str, str], str]:
            base, arch = resolve_base(ctx, res.spec.base)
            if not res.spec.rebuildOnNewBase:
                mine = [i for i in owned_images(ctx) if tags_of(i).get(NAME) == res.name]
                newest = _newest(mine)
                if newest is not None and tags_of(newest).get(BASE):
                    base = tags_of(newest)[BASE]
            r = recipe(res.spec, base, arch, file_etags(ctx, res.spec))
            return r.hash, r.parts(), base

        return tuple(ctx.resolver.once(("mi-recipe", res.name, res.spec.model_dump_json()), make))  # type: ignore[return-value]

    def desired(self, ctx: Context, res: MachineImage, refs: Refs) -> dict[str, Any]:
        recipe_hash, parts, base = self._recipe(ctx, res)
        tags = desired_tags(res, ctx.stack, res.spec.image.tags)
        tags.update(
            {identity.KIND: res.KIND, RECIPE: recipe_hash, BASE: base, PARTS: parts_tag(parts)}
        )
        return {"recipe": recipe_hash, "tags": tags}

    def _build(
        self,
        ctx: Context,
        res: MachineImage,
        refs: Refs,
        desired: dict[str, Any],
        old: Observed | None,
    ) -> Work:
        recipe_hash = desired["recipe"]
        tags = dict(desired["tags"])
        parts = parse_parts(tags[PARTS])
        before = parse_parts(old.tags.get(PARTS)) if old is not None else None
        cost, how = cost_bound(res.spec.build)
        failed = failed_build(ctx, res, recipe_hash)
        if failed is not None:
            first = failed.splitlines()[0] if failed else failed
            return Work(
                refused=f"the last build of recipe {recipe_hash[:8]} failed ({first}); fix the "
                f"recipe, or raise spec.rebuild (now {res.spec.rebuild}) to build it again"
            )
        name = image_name(res.spec.image.nameTemplate, res.name, recipe_hash)
        profile = res.spec.build.instanceProfile
        if isinstance(profile, RoleReference):
            profile = refs.output(ctx, Role.KIND, profile.role, "instanceProfile")
        builder = Builder(res, recipe_hash, parts, tags[BASE], tags, name, profile)
        timeout = res.spec.build.timeoutSeconds

        def run(c: Context) -> Step:
            step = builder.step(c)
            if isinstance(step, Pending):
                step.patience = float(timeout + 2 * builder.boot_slack)
            return step

        return Work(
            run=run,
            summary=f"build image: {build_reason(before, parts)}; at most ${cost} ({how} x "
            f"{timeout}s)",
            notes=[f"recipe {recipe_hash[:8]}"],
        )

    def create(
        self, ctx: Context, res: MachineImage, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        return self._build(ctx, res, refs, desired, None)

    def update(
        self,
        ctx: Context,
        res: MachineImage,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        if spec_changes(changes):
            return self._build(ctx, res, refs, desired, current)
        images = [i["ImageId"] for i in current.extra.get("images") or []]
        want = {k: v for k, v in desired["tags"].items() if k not in (RECIPE, BASE, PARTS)}

        def retag(c: Context) -> str:
            c.aws.client("ec2").create_tags(Resources=[current.arn], Tags=pairs(want))
            return f"{current.arn} tagged"

        return Work(run=retag, summary=f"tags only (of {len(images)} images, the current one)")

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        images = list(live.extra.get("images") or [])

        def run(c: Context) -> str:
            used = images_in_use(c, [i["ImageId"] for i in images])
            if used:
                raise RunFailed(f"images still in use: {', '.join(sorted(used))}")
            for image in images:
                deregister(c, image)
            return f"{len(images)} images deregistered with their snapshots"

        return Work(run=run, summary=f"{why}: deregister {len(images)} images and their snapshots")

    def housekeeping(
        self, ctx: Context, res: MachineImage, current: Observed, main: Verb
    ) -> list[Work]:
        return self._unfinished(res, current, main) + self._keep(ctx, res, current, main)

    def _unfinished(self, res: MachineImage, current: Observed, main: Verb) -> list[Work]:
        """The cleanup of a build whose image is available but whose builder, group or queue
        may still be there: the apply that built it was killed, or (the operator) the build's
        last steps were left to a re-plan, which finds the image in sync."""
        image = next(
            (i for i in current.extra.get("images") or [] if i["ImageId"] == current.arn), {}
        )
        tags = tags_of(image)
        if main.writes or current.status != "available" or not tags.get(UNFINISHED):
            return []
        parts = parse_parts(tags.get(PARTS))
        builder = Builder(res, tags.get(RECIPE, ""), parts, tags.get(BASE, ""), {}, "")
        return [
            Work(
                run=lambda c: builder.finish(c, image),
                summary=f"finish the build of {current.arn}: end its builder, group and queue",
                suffix="#build-cleanup",
            )
        ]

    def _keep(self, ctx: Context, res: MachineImage, current: Observed, main: Verb) -> list[Work]:
        images = [i for i in current.extra.get("images") or [] if i.get("State") == "available"]
        images.sort(key=lambda i: i.get("CreationDate") or "", reverse=True)
        building = main.writes and current.spec.get("recipe") != self._recipe(ctx, res)[0]
        old = images[res.spec.keep - (1 if building else 0) :]  # a build adds one
        if not old:
            return []
        ids = [i["ImageId"] for i in old]

        def run(c: Context) -> str:
            used = images_in_use(c, ids)
            for image in old:
                if image["ImageId"] not in used:
                    deregister(c, image)
            spared = f"; kept in use: {', '.join(sorted(used))}" if used else ""
            return f"{len(old) - len(used)} old images deregistered{spared}"

        return [
            Work(
                run=run,
                summary=f"keep {res.spec.keep}: deregister {', '.join(ids)} and their snapshots "
                "unless in use",
                suffix="#keep",
            )
        ]

    def output(self, ctx: Context, refs: Refs, name: str, what: str) -> str:
        """`imageId`: the image of the current recipe if it exists, else a placeholder the
        plan shows (a build of this plan makes it); `builtImageId`: that image, read again
        when the resource using it is carried out, after the build."""
        res = refs.resource(self.name, name)
        if res is None:
            raise PlanError(f"{self.name}/{name} is not declared")
        recipe_hash = self._recipe(ctx, res)[0]
        if what == "imageId":
            for image in owned_images(ctx):
                tags = tags_of(image)
                mine = tags.get(NAME) == name and tags.get(RECIPE) == recipe_hash
                if mine and image.get("State") == "available":
                    return str(image["ImageId"])
            return new_image(name)
        if what != "builtImageId":
            raise NotImplementedError(f"{self.name} gives no {what!r}")
        found = (
            ctx.aws.client("ec2")
            .describe_images(
                Owners=["self"],
                Filters=[
                    {"Name": f"tag:{STACK}", "Values": [ctx.stack]},
                    {"Name": f"tag:{NAME}", "Values": [name]},
                    {"Name": f"tag:{RECIPE}", "Values": [recipe_hash]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )
            .get("Images")
        )
        if not found:
            raise PlanError(f"{self.name}/{name}: no available image of recipe {recipe_hash[:8]}")
        return str(found[0]["ImageId"])

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        out["imageId"] = live.arn if live else None
        out["images"] = len(live.extra.get("images") or []) if live else None
        return out


KINDS = (MachineImageKind(),)
