"""A multi-party network we belong to: why we are in it, our role and how active we are.

Declared like the partnership (see ``domain/partnership.py``): each event once, nested
here with its contract name, stored fields and state change; each command marked with
the event it records.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from domain.base import Aggregate, check_not_in_future, records
from domain.errors import MembershipError, NothingChanged
from domain.partnership import check_outcome_factors
from domain.values import (
    EventMeta,
    Factors,
    FreeText,
    Hours,
    LeaveReason,
    Name,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    Purposes,
    Text,
    outcome_of,
)


class Network(Aggregate):
    kind: ClassVar[str] = "network"

    # Events ---------------------------------------------------------------------------

    class Joined(Aggregate.Created):
        type: ClassVar[str] = "network_joined"
        name: str
        purposes: tuple[NetworkPurpose, ...]
        role: NetworkRole
        activity: NetworkActivity
        best_before: date | None = None

        def apply(self, n: Network) -> None:
            n.name = self.name
            n.purposes = self.purposes
            n.role = self.role
            n.activity = self.activity
            n.best_before = self.best_before
            n.started_at = self.meta.occurred_at
            n.members = set()
            n.effort_hours = 0.0
            n.last_outcome = None
            n.left_reason = None
            n.ended = False

    class MemberAdded(Aggregate.Event):
        type: ClassVar[str] = "member_added"
        partnership_id: UUID

        def apply(self, n: Network) -> None:
            n.members.add(self.partnership_id)

    class MemberRemoved(Aggregate.Event):
        type: ClassVar[str] = "member_removed"
        partnership_id: UUID

        def apply(self, n: Network) -> None:
            n.members.discard(self.partnership_id)

    class Activated(Aggregate.Event):
        type: ClassVar[str] = "network_activated"
        need: FreeText

        def apply(self, n: Network) -> None:
            n.activity = NetworkActivity.ACTIVE

    class Parked(Aggregate.Event):
        type: ClassVar[str] = "network_parked"

        def apply(self, n: Network) -> None:
            n.activity = NetworkActivity.PASSIVE

    class ContributionLogged(Aggregate.Event):
        type: ClassVar[str] = "network_contribution_logged"
        our_effort_hours: float
        outcome: FreeText | None = None

        def apply(self, n: Network) -> None:
            n.effort_hours += self.our_effort_hours

    class Evaluated(Aggregate.Event):
        type: ClassVar[str] = "network_evaluated"
        factors: dict[str, float]
        outcome: float  # derived: the product of the factors

        def apply(self, n: Network) -> None:
            n.last_outcome = self.outcome

    class Left(Aggregate.Event):
        type: ClassVar[str] = "network_left"
        reason: LeaveReason

        def apply(self, n: Network) -> None:
            n.left_reason = self.reason
            n.ended = True

    if TYPE_CHECKING:  # the state, set by the events' apply (declared for the type checker only:
        # eventsourcing would turn class annotations into constructor fields)
        name: str
        purposes: tuple[NetworkPurpose, ...]
        role: NetworkRole
        activity: NetworkActivity
        best_before: date | None
        members: set[UUID]
        effort_hours: float
        last_outcome: float | None
        left_reason: LeaveReason | None

    def __init__(self) -> None:
        """Nothing to do: ``Joined.apply`` sets the state, when joined and on replay."""

    # Commands -------------------------------------------------------------------------

    @classmethod
    @records(Joined, command="JoinNetwork")
    def join(
        cls,
        name: Name,
        purposes: Purposes,
        role: NetworkRole,
        activity: NetworkActivity,
        best_before: date | None,
        meta: EventMeta,
        id: UUID | None = None,  # noqa: A002  (integrators may choose the id up front)
    ) -> Network:
        check_not_in_future(meta)
        return cls._create(  # type: ignore[no-any-return]
            cls.Joined,
            id=id,
            name=name,
            purposes=purposes,
            role=role,
            activity=activity,
            best_before=best_before,
            meta=meta,
        )

    @records(MemberAdded)
    def add_member(self, partnership_id: UUID, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        if partnership_id in self.members:
            raise MembershipError(
                f"partnership {partnership_id} is already a member", partnership_id=str(partnership_id)
            )
        self.trigger_event(self.MemberAdded, partnership_id=partnership_id, meta=meta)

    @records(MemberRemoved)
    def remove_member(self, partnership_id: UUID, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        if partnership_id not in self.members:
            raise MembershipError(f"partnership {partnership_id} is not a member", partnership_id=str(partnership_id))
        self.trigger_event(self.MemberRemoved, partnership_id=partnership_id, meta=meta)

    @records(Activated, command="ActivateNetwork")
    def activate(self, need: Name, meta: EventMeta, expected_version: int | None = None) -> None:
        # A dormant network is activated by one member for one specific need.
        self.check_can_record(meta, expected_version)
        if self.activity == NetworkActivity.ACTIVE:
            raise NothingChanged("the network is already active")
        self.trigger_event(self.Activated, need=need, meta=meta)

    @records(Parked, command="ParkNetwork")
    def park(self, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        if self.activity == NetworkActivity.PASSIVE:
            raise NothingChanged("the network is already passive")
        self.trigger_event(self.Parked, meta=meta)

    @records(ContributionLogged, command="LogNetworkContribution")
    def log_contribution(
        self,
        our_effort_hours: Hours,
        meta: EventMeta,
        outcome: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(self.ContributionLogged, our_effort_hours=our_effort_hours, outcome=outcome, meta=meta)

    @records(Evaluated, command="EvaluateNetwork")
    def evaluate(self, factors: Factors, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        check_outcome_factors(factors)
        self.trigger_event(self.Evaluated, factors=dict(factors), outcome=outcome_of(factors), meta=meta)

    @records(Left, command="LeaveNetwork")
    def leave(self, reason: LeaveReason, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(self.Left, reason=reason, meta=meta)
