"""SchedulingPolicy: a fair-share scheduling policy, as CreateSchedulingPolicy takes it.

A queue with a scheduling policy runs jobs by share identifier, weighted, instead of first in,
first out. The spec mirrors the request minus the name.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.limits import SHARE_IDENTIFIER_MAX
from reconciler.models.common import Resource, Spec, Strict, Tags
from reconciler.models.fields import LATE_INIT, set_by


class ShareAttributes(Strict):
    shareIdentifier: str = Field(
        min_length=1,
        max_length=SHARE_IDENTIFIER_MAX,
        pattern=r"^[A-Za-z0-9]+\*?$",
        description="Letters and digits; a trailing * matches every identifier with the prefix.",
    )
    weightFactor: Annotated[float | None, LATE_INIT] = Field(
        default=None,
        ge=0.0001,
        lt=1000,
        description="0.0001 to 999.9999; lower gets more of the queue (default 1).",
    )


class FairsharePolicy(Strict):
    shareDecaySeconds: Annotated[int | None, LATE_INIT] = Field(default=None, ge=0, le=604800)
    computeReservation: Annotated[int | None, LATE_INIT] = Field(default=None, ge=0, le=99)
    shareDistribution: Annotated[
        list[ShareAttributes] | None, Field(max_length=500), set_by("shareIdentifier")
    ] = None

    @model_validator(mode="after")
    def _distinct(self) -> FairsharePolicy:
        ids = [s.shareIdentifier for s in self.shareDistribution or []]
        if len(set(ids)) != len(ids):
            raise ValueError("shareDistribution: a shareIdentifier appears twice")
        return self


class SchedulingPolicySpec(Spec):
    fairsharePolicy: FairsharePolicy | None = None
    tags: Tags | None = None


class SchedulingPolicy(Resource):
    """A fair-share scheduling policy for job queues."""

    KIND: ClassVar[str] = "SchedulingPolicy"
    PLURAL: ClassVar[str] = "schedulingpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sp",)

    kind: Literal["SchedulingPolicy"]
    spec: SchedulingPolicySpec
