"""Contract v1: the command JSON integrators send, over HTTP and on Kafka.

Types are named in the past tense because integrators report what happened; inside,
each model is a command in the imperative. Extend this file; never break it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict, TypeAdapter

from domain.values import (
    ActivityKind,
    Channel,
    Direction,
    Importance,
    LeaveReason,
    Name,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    Partner,
    Stage,
    Storable,
    TransferReason,
)

# Numbers are strict: "10" or true is a client's mistake to report, not to guess at.
Text = Annotated[str, Field(max_length=4000), Storable]
Factor = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Hours = Annotated[float, Strict(), Field(ge=0, le=100_000, allow_inf_nan=False)]
Count = Annotated[int, Strict()]


def _plausible(moment: datetime) -> datetime:
    # Year 1 or 9999 is a typo, and at the edges of the calendar time arithmetic overflows.
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return moment


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
When = Annotated[AwareDatetime, AfterValidator(_plausible)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    occurred_at: When | None = Field(
        None, description="When it happened in the world (ISO 8601 with offset); default now."
    )
    command_id: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = Field(
        None, description="Idempotency key: the same id twice records once."
    )
    on_behalf_of: Name | None = None
    expected_version: Count | None = Field(
        None, ge=1, description="Reject with 409 unless the aggregate is at this version."
    )


class PartnershipCommand(Command):
    partnership_id: UUID | None = Field(
        None, description="Required on Kafka; over HTTP the path names it."
    )


class NetworkCommand(Command):
    network_id: UUID | None = None


# Partnerships ---------------------------------------------------------------------------


class OpenPartnership(PartnershipCommand):
    type: Literal["partnership_opened"] = "partnership_opened"
    partner: Partner
    owner_unit: Name
    steward: Name


class LogContact(PartnershipCommand):
    type: Literal["contact_logged"]
    channel: Channel
    direction: Direction
    participants: tuple[Name, ...] = Field(min_length=1, max_length=50)
    effort_minutes: Count | None = Field(None, ge=0, le=100_000)
    summary: Text | None = None


class SignalInterest(PartnershipCommand):
    type: Literal["interest_signalled"]
    direction: Direction
    strength: Count = Field(ge=1, le=3)
    evidence: Text | None = None


class RecordJointActivity(PartnershipCommand):
    type: Literal["joint_activity_recorded"]
    kind: ActivityKind
    title: Name
    our_effort_hours: Hours
    their_effort_hours: Hours
    outcome: Text | None = None


class Evaluate(PartnershipCommand):
    type: Literal["evaluated"]
    factors: dict[Name, Factor] = Field(min_length=1, max_length=20)
    note: Text | None = None


class Segment(PartnershipCommand):
    type: Literal["segmented"]
    now: Importance
    future: Importance
    rationale: Text | None = None


class TransferOwnership(PartnershipCommand):
    type: Literal["ownership_transferred"]
    owner_unit: Name
    steward: Name
    reason: TransferReason


class ChangeStage(PartnershipCommand):
    type: Literal["stage_changed"]
    stage: Stage
    reason: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")]
    note: Text | None = None


# Networks -------------------------------------------------------------------------------


class JoinNetwork(NetworkCommand):
    type: Literal["network_joined"] = "network_joined"
    name: Name
    purposes: tuple[NetworkPurpose, ...] = Field(min_length=1)
    role: NetworkRole
    activity: NetworkActivity
    best_before: date | None = None


class AddMember(NetworkCommand):
    type: Literal["member_added"]
    partnership_id: UUID


class RemoveMember(NetworkCommand):
    type: Literal["member_removed"]
    partnership_id: UUID


class ActivateNetwork(NetworkCommand):
    type: Literal["network_activated"]
    need: Name


class ParkNetwork(NetworkCommand):
    type: Literal["network_parked"]


class LogNetworkContribution(NetworkCommand):
    type: Literal["network_contribution_logged"]
    our_effort_hours: Hours
    outcome: Text | None = None


class EvaluateNetwork(NetworkCommand):
    type: Literal["network_evaluated"]
    factors: dict[Name, Factor] = Field(min_length=1, max_length=20)


class LeaveNetwork(NetworkCommand):
    type: Literal["network_left"]
    reason: LeaveReason


PartnershipEventBody = Annotated[
    Union[LogContact, SignalInterest, RecordJointActivity, Evaluate, Segment, TransferOwnership, ChangeStage],
    Field(discriminator="type"),
]
NetworkEventBody = Annotated[
    Union[AddMember, RemoveMember, ActivateNetwork, ParkNetwork, LogNetworkContribution, EvaluateNetwork, LeaveNetwork],
    Field(discriminator="type"),
]
AnyCommand = Annotated[
    Union[
        OpenPartnership, LogContact, SignalInterest, RecordJointActivity, Evaluate, Segment,
        TransferOwnership, ChangeStage, JoinNetwork, AddMember, RemoveMember, ActivateNetwork,
        ParkNetwork, LogNetworkContribution, EvaluateNetwork, LeaveNetwork,
    ],
    Field(discriminator="type"),
]
any_command = TypeAdapter(AnyCommand)
