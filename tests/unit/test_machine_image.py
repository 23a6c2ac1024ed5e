"""MachineImage's pure parts (issue #12): validation, the recipe hash, why a build is needed,
what it costs at most, and the image name."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.models.machine_image import (
    MachineImage,
    build_reason,
    cost_bound,
    image_name,
    parse_parts,
    parts_tag,
    recipe,
)


def manifest(**spec: Any) -> MachineImage:
    body: dict[str, Any] = {
        "base": "ami-0123456789abcdef0",
        "build": {"instanceTypes": ["c5.large", "c5a.large"], "script": "echo hi"},
        **spec,
    }
    return MachineImage.model_validate(
        {"kind": "MachineImage", "metadata": {"name": "octave"}, "spec": body}
    )


def test_the_three_ways_to_name_a_base() -> None:
    assert manifest().spec.base == "ami-0123456789abcdef0"
    ssm = manifest(base={"ssmParameter": "/aws/service/ecs/optimized-ami/amazon-linux-2/x"})
    assert ssm.spec.base.ssmParameter.startswith("/aws/service/")  # type: ignore[union-attr]
    lookup = manifest(base={"owners": ["amazon"], "name": "amzn2-*", "architecture": "x86_64"})
    assert lookup.spec.base.owners == ["amazon"]  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        manifest(base="not-an-ami")


def test_a_name_template_must_make_each_build_a_name_of_its_own() -> None:
    with pytest.raises(ValidationError, match=r"needs \{hash8\} or \{date\}"):
        manifest(image={"nameTemplate": "octave"})
    with pytest.raises(ValidationError, match=r"unknown field \{when\}"):
        manifest(image={"nameTemplate": "octave-{when}"})
    with pytest.raises(ValidationError, match="image names take"):
        manifest(image={"nameTemplate": "octave!-{hash8}"})
    with pytest.raises(ValidationError, match="appears twice"):
        manifest(build={"instanceTypes": ["c5.large", "c5.large"], "script": "x"})


def test_the_recipe_hash_follows_what_changes_the_image_only() -> None:
    res = manifest(build={"instanceTypes": ["c5.large"], "script": "echo hi"})
    base = recipe(res.spec, "ami-a", "x86_64", {})
    assert base.hash == recipe(res.spec, "ami-a", "x86_64", {}).hash
    other_types = manifest(build={"instanceTypes": ["c5a.large", "m5.large"], "script": "echo hi"})
    assert recipe(other_types.spec, "ami-a", "x86_64", {}).hash == base.hash, (
        "the instance type is where the build runs, not what the image is"
    )
    assert recipe(res.spec, "ami-b", "x86_64", {}).hash != base.hash
    assert recipe(res.spec, "ami-a", "arm64", {}).hash != base.hash
    script = manifest(build={"instanceTypes": ["c5.large"], "script": "echo bye"})
    assert recipe(script.spec, "ami-a", "x86_64", {}).hash != base.hash
    files = manifest(
        build={
            "instanceTypes": ["c5.large"],
            "script": "echo hi",
            "files": [{"source": "s3://bucket/data.tar.xz", "path": "/usr/local/data/"}],
        }
    )
    one = recipe(files.spec, "ami-a", "x86_64", {"s3://bucket/data.tar.xz": "etag1"})
    two = recipe(files.spec, "ami-a", "x86_64", {"s3://bucket/data.tar.xz": "etag2"})
    assert one.hash != two.hash, "a new object under the same key is a new recipe"


def test_the_reason_names_what_changed() -> None:
    res = manifest()
    old = recipe(res.spec, "ami-a", "x86_64", {}).parts()
    assert build_reason(None, old) == "no image yet"
    assert build_reason(old, recipe(res.spec, "ami-b", "x86_64", {}).parts()) == (
        "base ami-a -> ami-b"
    )
    changed = manifest(build={"instanceTypes": ["c5.large"], "script": "echo bye"})
    new = recipe(changed.spec, "ami-a", "x86_64", {}).parts()
    assert build_reason(old, new) == "build.script changed"
    assert parse_parts(parts_tag(new)) == new
    assert len(parts_tag(new)) <= 256, "it is kept in a tag"


def test_the_cost_bound_is_the_dearest_type_times_the_timeout_capped_by_spot() -> None:
    res = manifest(build={"instanceTypes": ["c5.large", "c5a.large"], "script": "x"})
    assert cost_bound(res.spec.build) == (Decimal("0.085"), "on-demand price")  # one hour
    spot = manifest(
        build={
            "instanceTypes": ["c5.large"],
            "script": "x",
            "spot": {"maxPrice": "0.05"},
            "timeoutSeconds": 7200,
        }
    )
    assert cost_bound(spot.spec.build) == (Decimal("0.100"), "spot maxPrice")
    odd = manifest(build={"instanceTypes": ["x9z.huge"], "script": "x"})
    assert "unknown type" in cost_bound(odd.spec.build)[1]


def test_image_name() -> None:
    when = datetime(2026, 12, 1, 13, 5, 9, tzinfo=UTC)
    assert image_name("{name}-{date}-{hash8}", "octave", "abcdef0123", when) == (
        "octave-20261201-130509-abcdef01"
    )


def test_rebuild_is_part_of_the_recipe_only_once_raised() -> None:
    """`rebuild: 0` keeps the hash an image built before the field existed carries."""
    plain = recipe(manifest().spec, "ami-a", "x86_64", {})
    assert "rebuild" not in plain.parts()
    again = recipe(manifest(rebuild=1).spec, "ami-a", "x86_64", {})
    assert again.hash != plain.hash
    assert build_reason(plain.parts(), again.parts()) == "spec.rebuild changed"
    assert build_reason(again.parts(), plain.parts()) == "spec.rebuild changed"
    with pytest.raises(ValidationError):
        manifest(rebuild=-1)


def test_a_builder_profile_must_be_an_instance_profile() -> None:
    with pytest.raises(ValidationError, match="instance profile"):
        manifest(
            build={"instanceTypes": ["c5.large"], "script": "x", "instanceProfile": {"role": "r"}}
        )
    res = manifest(
        build={
            "instanceTypes": ["c5.large"],
            "script": "x",
            "instanceProfile": {"role": "agent", "instanceProfile": True},
        }
    )
    assert res.references() == [("Role", "agent", "spec.build.instanceProfile")]


def test_a_task_runs_again_when_the_recipe_of_its_image_changes() -> None:
    from reconciler.models.pipeline import Task
    from reconciler.runs import identity

    def task(image: Any) -> Task:
        spec = {"ec2": {"instanceType": "t3.micro", "image": image}, "script": "echo hi"}
        return Task.model_validate({"kind": "Task", "metadata": {"name": "t"}, "spec": spec})

    uses = task({"machineImage": "octave"})
    assert ("MachineImage", "octave", "spec.ec2.image") in uses.references()
    one = identity.run_id(uses, {}, {"octave": {"build": {"script": "a"}}})
    assert one == identity.run_id(uses, {}, {"octave": {"build": {"script": "a"}}})
    assert one != identity.run_id(uses, {}, {"octave": {"build": {"script": "b"}}})
    # No machine image: the run ID is what it was before images were part of it.
    plain = task("ami-0123456789abcdef0")
    assert identity.run_id(plain, {}, {}) == identity.run_id(plain, {})
