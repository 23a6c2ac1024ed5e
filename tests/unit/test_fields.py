"""Field semantics: markers found at nested paths, and inherited from ancestors."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel

from reconciler.engine.diff import semantics_at
from reconciler.models.compute_environment import (
    ComputeEnvironmentSpec,
    Infrastructure,
    is_infrastructure,
)
from reconciler.models.fields import (
    IMMUTABLE,
    LATE_INIT,
    Semantics,
    local_fields,
    paths_marked,
    semantics_of,
    set_by,
)
from reconciler.models.job_definition import JobDefinitionSpec
from reconciler.models.job_queue import JobQueueSpec

CE = semantics_of(ComputeEnvironmentSpec)
JD = semantics_of(JobDefinitionSpec)


@pytest.mark.parametrize(
    ("table", "path", "expected", "reason"),
    [
        (CE, "type", Semantics(immutable=True), "top-level marker"),
        (CE, "computeResources.type", Semantics(immutable=True), "nested in an Optional model"),
        (
            CE,
            "computeResources.allocationStrategy",
            Semantics(late_init=True),
            "a marker beside a kind's own marker (INFRA)",
        ),
        (
            CE,
            "computeResources.desiredvCpus",
            Semantics(service_managed=True),
            "service-managed nested field",
        ),
        (
            CE,
            "computeResources.instanceTypes",
            Semantics(set_of_values=True),
            "value_set beside a kind's own marker",
        ),
        (
            CE,
            "computeResources.ec2Configuration",
            Semantics(late_init=True, set_key="imageType"),
            "set_by with extra flags",
        ),
        (CE, "serviceRole", Semantics(late_init=True), "marker beside a Field()"),
        (CE, "trackDesiredvCpus", Semantics(local=True), "local field"),
        (
            JD,
            "containerProperties.environment",
            Semantics(set_key="name"),
            "keyed list nested in a model",
        ),
        (
            JD,
            "containerProperties.resourceRequirements",
            Semantics(set_key="type"),
            "keyed by type",
        ),
        (
            JD,
            "containerProperties.logConfiguration.secretOptions",
            Semantics(set_key="name"),
            "two levels deep",
        ),
        (
            JD,
            "platformCapabilities",
            Semantics(set_of_values=True, late_init=True),
            "late-init value set",
        ),
        (JD, "revisionHistoryLimit", Semantics(local=True), "ours, never sent to AWS"),
        (
            semantics_of(JobQueueSpec),
            "computeEnvironmentOrder",
            Semantics(set_key="order"),
            "keyed by an int field",
        ),
    ],
)
def test_semantics_of_finds_markers(
    table: dict[str, Semantics], path: str, expected: Semantics, reason: str
) -> None:
    assert table.get(path) == expected, reason


@pytest.mark.parametrize(
    "path",
    [
        "computeResources.maxvCpus",  # no marker
        "computeResources.launchTemplate.version",  # only inherited, not its own
        "containerProperties.image",
        "tags",
        "state",
    ],
)
def test_unmarked_paths_are_absent(path: str) -> None:
    assert path not in CE and path not in JD


class _Item(BaseModel):
    key: str
    secret: Annotated[str | None, IMMUTABLE] = None


class _Inner(BaseModel):
    items: Annotated[list[_Item] | None, set_by("key")] = None
    late: Annotated[int | None, LATE_INIT] = None


class _Outer(BaseModel):
    inner: _Inner | None = None
    inners: list[_Inner] = []
    both: Annotated[int | None, IMMUTABLE, LATE_INIT] = None


def test_nested_paths_through_optional_and_list_wrappers() -> None:
    table = semantics_of(_Outer)
    assert table["inner.items"] == Semantics(set_key="key")
    assert table["inner.items.secret"] == Semantics(immutable=True)  # list items: no index
    assert table["inner.late"] == Semantics(late_init=True)
    assert table["inners.items.secret"] == Semantics(immutable=True)
    assert table["both"] == Semantics(immutable=True, late_init=True)  # markers merged
    assert "inner" not in table and "inner.items.key" not in table


def test_local_fields() -> None:
    assert local_fields(ComputeEnvironmentSpec) == {"trackDesiredvCpus", "deletionPolicy"}
    # An environment entry's `sensitive` flag is local too: nested, in a keyed list's items.
    assert local_fields(JobDefinitionSpec) == {
        "revisionHistoryLimit",
        "containerProperties.environment.sensitive",
        "deletionPolicy",
    }


@pytest.mark.parametrize(
    ("table", "path", "immutable", "infrastructure", "reason"),
    [
        (CE, "computeResources.launchTemplate.version", False, True, "parent is INFRA"),
        (
            CE,
            "computeResources.launchTemplate.launchTemplateName",
            False,
            True,
            "parent is INFRA",
        ),
        (CE, "computeResources.tags.Name", False, True, "instance tags are INFRA"),
        (
            CE,
            "computeResources.ec2Configuration.ECS_AL2.imageIdOverride",
            False,
            True,
            "inside a keyed list item of an INFRA list",
        ),
        (CE, "computeResources.instanceTypes", False, True, "own marker"),
        (CE, "computeResources.type", True, False, "own marker"),
        (CE, "computeResources.maxvCpus", False, False, "nothing to inherit"),
        (CE, "computeResources", False, False, "the parent itself has no marker"),
        (CE, "tags.team", False, False, "resource tags are not infrastructure"),
        (JD, "containerProperties.environment.FOO.value", False, False, "nothing to inherit"),
    ],
)
def test_semantics_at_inherits_immutable_and_infrastructure(
    table: dict[str, Semantics], path: str, immutable: bool, infrastructure: bool, reason: str
) -> None:
    # Infrastructure is the compute environment's own marker, read by its own hook.
    infra = is_infrastructure(path) if table is CE else False
    assert (semantics_at(table, path).immutable, infra) == (immutable, infrastructure), reason


def test_kind_markers_are_found_at_nested_paths() -> None:
    marked = paths_marked(ComputeEnvironmentSpec, Infrastructure)
    assert "computeResources.launchTemplate" in marked
    assert "computeResources.instanceTypes" in marked
    assert "computeResources.maxvCpus" not in marked
    assert "computeResources.type" not in marked


def test_semantics_at_inherits_immutable() -> None:
    table = {"a": Semantics(immutable=True), "a.b": Semantics(late_init=True)}
    assert semantics_at(table, "a.b.c") == Semantics(immutable=True)
    assert semantics_at(table, "a.b") == Semantics(immutable=True, late_init=True)


def test_semantics_at_does_not_inherit_other_flags() -> None:
    # late_init, set keys and the rest describe the field itself, not what lies inside it.
    s = semantics_at(CE, "computeResources.ec2Configuration.ECS_AL2")
    assert is_infrastructure("computeResources.ec2Configuration.ECS_AL2")
    assert not s.late_init
    assert s.set_key is None
    assert semantics_at(CE, "computeResources.ec2Configuration").late_init
