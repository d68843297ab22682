"""A multi-party network we belong to: why we are in it, our role and how active we are."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Aggregate, check_not_in_future
from domain.errors import MembershipError, NothingChanged
from domain.partnership import check_outcome_factors
from domain.values import (
    EventMeta,
    LeaveReason,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    outcome_of,
)


class Network(Aggregate):
    @event("Joined")
    def __init__(
        self,
        name: str,
        purposes: tuple[NetworkPurpose, ...],
        role: NetworkRole,
        activity: NetworkActivity,
        best_before: date | None,
        meta: EventMeta,
    ) -> None:
        self.name = name
        self.purposes = purposes
        self.role = role
        self.activity = activity
        self.best_before = best_before
        self.started_at = meta.occurred_at
        self.members: set[UUID] = set()
        self.effort_hours = 0.0
        self.last_outcome: float | None = None
        self.left_reason: LeaveReason | None = None
        self.ended = False

    @classmethod
    def join(
        cls,
        name: str,
        purposes: tuple[NetworkPurpose, ...],
        role: NetworkRole,
        activity: NetworkActivity,
        best_before: date | None,
        meta: EventMeta,
        id: UUID | None = None,  # noqa: A002  (integrators may choose the id up front)
    ) -> Network:
        check_not_in_future(meta)
        return cls._create(
            cls.Joined, id=id, name=name, purposes=purposes, role=role, activity=activity,
            best_before=best_before, meta=meta,
        )

    # Commands -------------------------------------------------------------------------

    def add_member(
        self, partnership_id: UUID, meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_record(meta, expected_version)
        if partnership_id in self.members:
            raise MembershipError(
                f"partnership {partnership_id} is already a member", partnership_id=str(partnership_id)
            )
        self._member_added(partnership_id, meta)

    def remove_member(
        self, partnership_id: UUID, meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_record(meta, expected_version)
        if partnership_id not in self.members:
            raise MembershipError(
                f"partnership {partnership_id} is not a member", partnership_id=str(partnership_id)
            )
        self._member_removed(partnership_id, meta)

    def activate(self, need: str, meta: EventMeta, expected_version: int | None = None) -> None:
        # A dormant network is activated by one member for one specific need.
        self.check_can_record(meta, expected_version)
        if self.activity == NetworkActivity.ACTIVE:
            raise NothingChanged("the network is already active")
        self._activated(need, meta)

    def park(self, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        if self.activity == NetworkActivity.PASSIVE:
            raise NothingChanged("the network is already passive")
        self._parked(meta)

    def log_contribution(
        self,
        our_effort_hours: float,
        meta: EventMeta,
        outcome: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self._contribution_logged(our_effort_hours, outcome, meta)

    def evaluate(
        self, factors: dict[str, float], meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_record(meta, expected_version)
        check_outcome_factors(factors)
        self._evaluated(factors, outcome_of(factors), meta)

    def leave(
        self, reason: LeaveReason, meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_record(meta, expected_version)
        self._left(reason, meta)

    # Events ---------------------------------------------------------------------------

    @event("MemberAdded")
    def _member_added(self, partnership_id: UUID, meta: EventMeta) -> None:
        self.members.add(partnership_id)

    @event("MemberRemoved")
    def _member_removed(self, partnership_id: UUID, meta: EventMeta) -> None:
        self.members.discard(partnership_id)

    @event("Activated")
    def _activated(self, need: str, meta: EventMeta) -> None:
        self.activity = NetworkActivity.ACTIVE

    @event("Parked")
    def _parked(self, meta: EventMeta) -> None:
        self.activity = NetworkActivity.PASSIVE

    @event("ContributionLogged")
    def _contribution_logged(self, our_effort_hours: float, outcome: str | None, meta: EventMeta) -> None:
        self.effort_hours += our_effort_hours

    @event("Evaluated")
    def _evaluated(self, factors: dict[str, float], outcome: float, meta: EventMeta) -> None:
        self.last_outcome = outcome

    @event("Left")
    def _left(self, reason: LeaveReason, meta: EventMeta) -> None:
        self.left_reason = reason
        self.ended = True
