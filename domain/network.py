"""A multi-party network we belong to: why we are in it, our role and how active we are.

Declared like the partnership (see ``domain/partnership.py``): each event once, nested
here with its contract name, stored fields and state change; each command marked with
the event it records.

Ownership in valid time is ``domain.ownership``'s, as for partnerships. Networks joined
before joins named an owner have none until their first ``network_ownership_transferred``
(their stored ``owner_unit`` and ``steward`` are None: nobody was recorded, and inventing
"unassigned" would look like an answer).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from domain.base import Aggregate, check_not_in_future, records
from domain.errors import (
    ActivationError,
    MemberEnded,
    MembershipError,
    NoOpenActivation,
    NotAMember,
    NothingChanged,
    UnknownMember,
)
from domain.ownership import Owned, with_tenure
from domain.partnership import Partnership, check_outcome_factors
from domain.values import (
    Activator,
    ContributionOutcome,
    EventMeta,
    Factors,
    FreeText,
    Hours,
    LeaveReason,
    Name,
    NeedOutcome,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    PersonName,
    Purposes,
    Tenure,
    Text,
    TransferReason,
    outcome_of,
)


class Network(Owned, Aggregate):
    kind: ClassVar[str] = "network"

    # Events ---------------------------------------------------------------------------

    class Joined(Aggregate.Created):
        type: ClassVar[str] = "network_joined"
        name: str
        purposes: tuple[NetworkPurpose, ...]
        role: NetworkRole
        activity: NetworkActivity
        best_before: date | None = None
        # None only in joins recorded before a join named its owner (see the module doc).
        owner_unit: str | None = None
        steward: PersonName | None = None

        def apply(self, n: Network) -> None:
            n.name = self.name
            n.purposes = self.purposes
            n.role = self.role
            n.activity = self.activity
            n.best_before = self.best_before
            n.started_at = self.meta.occurred_at
            n.tenures = []
            if self.owner_unit is not None and self.steward is not None:
                n.tenures = with_tenure([], self.owner_unit, self.steward, self.meta.occurred_at)
            n.members = set()
            n.effort_hours = 0.0
            n.last_outcome = None
            n.left_reason = None
            n.activation_open = False
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
        # Activations recorded before this was asked were ours: only we recorded them.
        activated_by: Activator = Activator.US
        by_partnership_id: UUID | None = None  # the member who activated it

        def apply(self, n: Network) -> None:
            n.activity = NetworkActivity.ACTIVE
            n.activation_open = True

    class NeedMet(Aggregate.Event):
        """Closes the open activation: how well the need it was activated for was met."""

        type: ClassVar[str] = "need_met"
        outcome: NeedOutcome
        note: FreeText | None = None

        def apply(self, n: Network) -> None:
            n.activation_open = False

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

    class MemberContributionLogged(Aggregate.Event):
        """Another member's effort and its outcome: what fairness is judged against."""

        type: ClassVar[str] = "member_contribution_logged"
        partnership_id: UUID
        effort_hours: float
        outcome: ContributionOutcome

        def apply(self, n: Network) -> None:
            pass  # judged by the plan from the read model; no rule here depends on it

    class Evaluated(Aggregate.Event):
        type: ClassVar[str] = "network_evaluated"
        factors: dict[str, float]
        outcome: float  # derived: the product of the factors

        def apply(self, n: Network) -> None:
            n.last_outcome = self.outcome

    class BestBeforeRevised(Aggregate.Event):
        type: ClassVar[str] = "best_before_revised"
        best_before: date | None  # None: it no longer has one
        reason: FreeText

        def apply(self, n: Network) -> None:
            n.best_before = self.best_before

    class OwnershipTransferred(Aggregate.Event):
        type: ClassVar[str] = "network_ownership_transferred"
        owner_unit: str
        steward: PersonName
        reason: TransferReason

        def apply(self, n: Network) -> None:
            n.tenures = with_tenure(n.tenures, self.owner_unit, self.steward, self.meta.occurred_at)

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
        tenures: list[Tenure]  # empty for a network joined before joins named an owner
        members: set[UUID]
        effort_hours: float
        last_outcome: float | None
        left_reason: LeaveReason | None
        activation_open: bool  # activated, and how well the need was met not yet recorded

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
        *,
        owner_unit: Name,
        steward: Name,
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
            owner_unit=owner_unit,
            steward=steward,
            meta=meta,
        )

    @records(MemberAdded)
    def add_member(
        self,
        partnership_id: UUID,
        meta: EventMeta,
        expected_version: int | None = None,
        *,
        member: Aggregate | None = None,  # supplied by the service: the partnership named
    ) -> None:
        self.check_can_record(meta, expected_version)
        check_can_be_member(partnership_id, member, meta)
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
    def activate(
        self,
        need: Name,
        meta: EventMeta,
        activated_by: Activator = Activator.US,
        by_partnership_id: UUID | None = None,
        expected_version: int | None = None,
    ) -> None:
        # A dormant network is activated by one member for one specific need.
        self.check_can_record(meta, expected_version)
        if self.activity == NetworkActivity.ACTIVE:
            raise NothingChanged("the network is already active")
        if (activated_by == Activator.MEMBER) != (by_partnership_id is not None):
            raise ActivationError(
                "a member's activation names the member (by_partnership_id), and only a member's does",
                activated_by=Activator(activated_by).value,
            )
        if by_partnership_id is not None:
            self.check_member(by_partnership_id)
        self.trigger_event(
            self.Activated, need=need, activated_by=activated_by, by_partnership_id=by_partnership_id, meta=meta
        )

    @records(NeedMet, command="CloseActivation")
    def close_activation(
        self, outcome: NeedOutcome, meta: EventMeta, note: Text | None = None, expected_version: int | None = None
    ) -> None:
        # Parking does not close an activation: whether the need was met is often known
        # only once the network is quiet again.
        self.check_can_record(meta, expected_version)
        if not self.activation_open:
            raise NoOpenActivation("no activation is open: activate the network for a need first")
        self.trigger_event(self.NeedMet, outcome=outcome, note=note, meta=meta)

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

    @records(MemberContributionLogged, command="LogMemberContribution")
    def log_member_contribution(
        self,
        partnership_id: UUID,
        effort_hours: Hours,
        outcome: ContributionOutcome,
        meta: EventMeta,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.check_member(partnership_id)
        self.trigger_event(
            self.MemberContributionLogged,
            partnership_id=partnership_id,
            effort_hours=effort_hours,
            outcome=outcome,
            meta=meta,
        )

    @records(Evaluated, command="EvaluateNetwork")
    def evaluate(self, factors: Factors, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        check_outcome_factors(factors)
        self.trigger_event(self.Evaluated, factors=dict(factors), outcome=outcome_of(factors), meta=meta)

    @records(BestBeforeRevised, command="ReviseBestBefore")
    def revise_best_before(
        self, best_before: date | None, reason: Text, meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_record(meta, expected_version)
        if best_before == self.best_before:
            shown = best_before.isoformat() if best_before else None
            raise NothingChanged(f"the best-before date is already {shown}", best_before=shown)
        self.trigger_event(self.BestBeforeRevised, best_before=best_before, reason=reason, meta=meta)

    @records(OwnershipTransferred, command="TransferNetworkOwnership")
    def transfer_ownership(
        self,
        owner_unit: Name,
        steward: Name,
        reason: TransferReason,
        meta: EventMeta,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.check_changes_owner(owner_unit, steward, meta)
        self.trigger_event(self.OwnershipTransferred, owner_unit=owner_unit, steward=steward, reason=reason, meta=meta)

    @records(Left, command="LeaveNetwork")
    def leave(self, reason: LeaveReason, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(self.Left, reason=reason, meta=meta)

    # Rules ----------------------------------------------------------------------------

    def check_member(self, partnership_id: UUID) -> None:
        if partnership_id not in self.members:
            raise NotAMember(
                f"partnership {partnership_id} is not a member of this network", partnership_id=str(partnership_id)
            )


def check_can_be_member(partnership_id: UUID, member: Aggregate | None, meta: EventMeta) -> None:
    """A member is one of our partnerships that had not ended when it was added (valid
    time: a back-dated addition of a partnership that ended later is history, and true)."""
    if not isinstance(member, Partnership) or member.id != partnership_id:
        raise UnknownMember(f"no partnership {partnership_id} to add", partnership_id=str(partnership_id))
    if member.ended and member.stage_since <= meta.occurred_at:
        raise MemberEnded(
            f"partnership {partnership_id} ended on {member.stage_since.date().isoformat()}; "
            "an ended partnership cannot join a network",
            partnership_id=str(partnership_id),
        )
