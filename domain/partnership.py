"""The partnership: our relationship with one partner, the main aggregate.

Each event is declared once, here, as a class nested on the aggregate: its contract name
(``type``), its stored fields (``Personal`` marks what is sealed per data subject) and
``apply``, the state change. ``apply`` also runs when the aggregate is rebuilt from
history, where yesterday's events must load even if today's rules differ, so it never
checks anything. Public methods are the commands: they check the rules, then trigger an
event; ``@records`` names the event each one records, which is all the contract, the
handlers, publication and sealing need to know (see ``contract/``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from domain.base import Aggregate, DomainEvent, check_not_in_future, records
from domain.corrections import (
    Changes,
    EventId,
    check_changes,
    check_correctable,
    parse_event_id,
    target_version,
)
from domain.criteria import CatalogueInForce, SkippedCriterion, Skips, check_scores
from domain.errors import (
    AlreadyRetracted,
    InvalidOutcomeFactor,
    MergeError,
    NothingChanged,
    StageOutOfOrder,
    UnknownEvent,
)
from domain.ownership import Owned, with_tenure
from domain.stages import IMPORTED, check_transition
from domain.values import (
    OUTCOME_FACTOR_VALUES,
    ActivityKind,
    Channel,
    Direction,
    EventMeta,
    Factors,
    FreeText,
    Hours,
    Importance,
    Minutes,
    Name,
    Participants,
    Partner,
    PersonName,
    ReasonCode,
    Role,
    Roles,
    Segment,
    Stage,
    Strength,
    Tenure,
    Text,
    TransferReason,
    later,
    outcome_of,
)


class Partnership(Owned, Aggregate):
    kind: ClassVar[str] = "partnership"

    # Events ---------------------------------------------------------------------------

    class Opened(Aggregate.Created):
        type: ClassVar[str] = "partnership_opened"
        partner: Partner
        owner_unit: str
        steward: PersonName

        def apply(self, p: Partnership) -> None:
            p.partner = self.partner
            p.tenures = [Tenure(owner_unit=self.owner_unit, steward=self.steward, since=self.meta.occurred_at)]
            p.started_at = self.meta.occurred_at
            p.stage = Stage.ANALYSE
            p.stage_since = self.meta.occurred_at
            p.segment = None
            p.contacts = 0
            p.last_contact_at = None
            p.interest_signals = 0
            p.joint_activities = 0
            p.last_outcome = None
            p.ended = False
            p.retracted = []
            p.corrected = []
            p.outcomes = []
            p.merged_into = None

    class ContactLogged(Aggregate.Event):
        type: ClassVar[str] = "contact_logged"
        keeps_personal: ClassVar[frozenset[str] | None] = frozenset()
        channel: Channel
        direction: Direction
        participants: tuple[PersonName, ...]
        effort_minutes: int | None = None
        summary: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.contacts += 1
            p.last_contact_at = later(p.last_contact_at, self.meta.occurred_at)

    class InterestSignalled(Aggregate.Event):
        type: ClassVar[str] = "interest_signalled"
        keeps_personal: ClassVar[frozenset[str] | None] = frozenset()
        direction: Direction
        strength: int
        evidence: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.interest_signals += 1

    class JointActivityRecorded(Aggregate.Event):
        type: ClassVar[str] = "joint_activity_recorded"
        keeps_personal: ClassVar[frozenset[str] | None] = frozenset()
        kind: ActivityKind
        title: FreeText
        our_effort_hours: float
        their_effort_hours: float
        outcome: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.joint_activities += 1

    class Evaluated(Aggregate.Event):
        type: ClassVar[str] = "evaluated"
        keeps_personal: ClassVar[frozenset[str] | None] = frozenset()
        factors: dict[str, float]
        outcome: float  # derived: the product of the factors
        note: FreeText | None = None
        # The organisation's version of the criteria catalogue it was scored under; None:
        # recorded before any catalogue existed ("pre_catalogue"), with free factors.
        catalogue_version: int | None = None
        skipped: tuple[SkippedCriterion, ...] = ()  # the catalogue's criteria not scored, and why

        def apply(self, p: Partnership) -> None:
            p.last_outcome = self.outcome
            # Evaluations are few (a handful a year): kept so a retraction can fall back.
            p.outcomes = [*p.outcomes, (self.originator_version, self.outcome)]

    class Segmented(Aggregate.Event):
        type: ClassVar[str] = "segmented"
        segment: Segment
        rationale: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.segment = self.segment

    class RolesChanged(Aggregate.Event):
        """The roles the partner plays for us changed (a user became a funder, say)."""

        type: ClassVar[str] = "roles_changed"
        roles: tuple[Role, ...]

        def apply(self, p: Partnership) -> None:
            p.partner = p.partner.model_copy(update={"roles": tuple(Role(r) for r in self.roles)})

    class OwnershipTransferred(Aggregate.Event):
        type: ClassVar[str] = "ownership_transferred"
        owner_unit: str
        steward: PersonName
        reason: TransferReason

        def apply(self, p: Partnership) -> None:
            p.tenures = with_tenure(p.tenures, self.owner_unit, self.steward, self.meta.occurred_at)

    class StageChanged(Aggregate.Event):
        type: ClassVar[str] = "stage_changed"
        previous: Stage  # derived: the stage it left
        stage: Stage
        reason: str
        note: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.stage = self.stage
            p.stage_since = self.meta.occurred_at
            p.ended = self.stage == Stage.ENDED

    class EventRetracted(Aggregate.Event):
        """An earlier event of this partnership should not have been recorded; it stays in
        history, and nothing counts it any more."""

        type: ClassVar[str] = "event_retracted"
        event_id: str
        retracted_type: str  # derived: the retracted event's type
        reason: FreeText

        def apply(self, p: Partnership) -> None:
            version = target_version(self.event_id)
            p.retracted = [*p.retracted, version]
            _uncount(p, self.retracted_type)
            if self.retracted_type == "evaluated":
                p.outcomes = [o for o in p.outcomes if o[0] != version]
                p.last_outcome = p.outcomes[-1][1] if p.outcomes else None

    class EventCorrected(Aggregate.Event):
        """An earlier event of this partnership said something wrong: ``changes`` gives
        what it should have said; the rest of it stands."""

        type: ClassVar[str] = "event_corrected"
        event_id: str
        corrected_type: str  # derived: the corrected event's type
        changes: Changes
        reason: FreeText

        def apply(self, p: Partnership) -> None:
            version = target_version(self.event_id)
            p.corrected = sorted({*p.corrected, version})
            if self.changes.evaluated_outcome is not None:
                p.outcomes = [(v, self.changes.evaluated_outcome if v == version else o) for v, o in p.outcomes]
                p.last_outcome = p.outcomes[-1][1] if p.outcomes else None

    class MergedInto(Aggregate.Event):
        """This partnership was a duplicate of ``survivor_id``: it ends here, and its
        history stays answerable under its own id."""

        type: ClassVar[str] = "partnership_merged"
        survivor_id: UUID
        previous: Stage  # derived: the stage it left for ended
        reason: FreeText | None = None

        def apply(self, p: Partnership) -> None:
            p.merged_into = self.survivor_id
            p.stage = Stage.ENDED
            p.stage_since = self.meta.occurred_at
            p.ended = True

    class Absorbed(Aggregate.Event):
        """The other half of a merge: ``absorbed_id`` was a duplicate of this one."""

        type: ClassVar[str] = "partnership_absorbed"
        absorbed_id: UUID

        def apply(self, p: Partnership) -> None:
            pass  # the absorbed history stays its own; readers follow the pointer

    if TYPE_CHECKING:  # the state, set by the events' apply (declared for the type checker only:
        # eventsourcing would turn class annotations into constructor fields)
        partner: Partner
        tenures: list[Tenure]
        stage: Stage
        stage_since: datetime
        segment: Segment | None
        contacts: int
        last_contact_at: datetime | None
        interest_signals: int
        joint_activities: int
        last_outcome: float | None
        retracted: list[int]  # versions retracted (few: mistakes are rare)
        corrected: list[int]  # versions corrected at least once
        outcomes: list[tuple[int, float]]  # (version, outcome) of every evaluation in force
        merged_into: UUID | None

    def __init__(self) -> None:
        """Nothing to do: ``Opened.apply`` sets the state, when opened and on replay."""

    # Commands -------------------------------------------------------------------------

    @classmethod
    @records(Opened, command="OpenPartnership")
    def open(
        cls,
        partner: Partner,
        owner_unit: Name,
        steward: Name,
        meta: EventMeta,
        id: UUID | None = None,  # noqa: A002  (integrators may choose the id up front)
    ) -> Partnership:
        check_not_in_future(meta)
        return cls._create(  # type: ignore[no-any-return]
            cls.Opened, id=id, partner=partner, owner_unit=owner_unit, steward=steward, meta=meta
        )

    @records(ContactLogged)
    def log_contact(
        self,
        channel: Channel,
        direction: Direction,
        participants: Participants,
        meta: EventMeta,
        effort_minutes: Minutes | None = None,
        summary: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(
            self.ContactLogged,
            channel=channel,
            direction=direction,
            participants=participants,
            effort_minutes=effort_minutes,
            summary=summary,
            meta=meta,
        )

    @records(InterestSignalled)
    def signal_interest(
        self,
        direction: Direction,
        strength: Strength,
        meta: EventMeta,
        evidence: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(self.InterestSignalled, direction=direction, strength=strength, evidence=evidence, meta=meta)

    @records(JointActivityRecorded)
    def record_joint_activity(
        self,
        kind: ActivityKind,
        title: Name,
        our_effort_hours: Hours,
        their_effort_hours: Hours,
        meta: EventMeta,
        outcome: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.trigger_event(
            self.JointActivityRecorded,
            kind=kind,
            title=title,
            our_effort_hours=our_effort_hours,
            their_effort_hours=their_effort_hours,
            outcome=outcome,
            meta=meta,
        )

    @records(Evaluated)
    def evaluate(
        self,
        factors: Factors,
        meta: EventMeta,
        note: Text | None = None,
        skipped: Skips | None = None,
        expected_version: int | None = None,
        *,
        catalogue: CatalogueInForce | None = None,  # supplied by the service (domain.base.SUPPLIED)
    ) -> None:
        self.check_can_record(meta, expected_version)
        reasons = dict(skipped or {})
        check_scores(catalogue.catalogue if catalogue else None, factors, reasons)
        check_outcome_factors(factors)
        self.trigger_event(
            self.Evaluated,
            factors=dict(factors),
            outcome=outcome_of(factors),
            note=note,
            catalogue_version=catalogue.version if catalogue else None,
            skipped=tuple(SkippedCriterion(criterion=name, reason=why) for name, why in reasons.items()),
            meta=meta,
        )

    @records(Segmented, command="Segment")
    def segment_as(
        self,
        now: Importance,
        future: Importance,
        meta: EventMeta,
        rationale: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        # Segmenting is a guess that must stay revisable, so re-segmenting is always allowed.
        self.check_can_record(meta, expected_version)
        self.trigger_event(self.Segmented, segment=Segment(now=now, future=future), rationale=rationale, meta=meta)

    @records(RolesChanged)
    def change_roles(self, roles: Roles, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_record(meta, expected_version)
        if set(roles) == set(self.partner.roles):
            raise NothingChanged("the partner already plays exactly these roles", roles=[Role(r).value for r in roles])
        self.trigger_event(self.RolesChanged, roles=tuple(roles), meta=meta)

    @records(OwnershipTransferred)
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

    @records(StageChanged)
    def change_stage(
        self,
        stage: Stage,
        reason: ReasonCode,
        meta: EventMeta,
        note: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.check_not_before_current_stage(meta)
        # Imported: placed once, from the opening, where it already was before Verkosto.
        first_move = self.stage == Stage.ANALYSE and self.stage_since == self.started_at
        check_transition(self.stage, stage, importing=reason == IMPORTED and first_move)
        self.trigger_event(self.StageChanged, previous=self.stage, stage=stage, reason=reason, note=note, meta=meta)

    @records(EventRetracted)
    def retract_event(
        self,
        event_id: EventId,
        reason: Text,
        meta: EventMeta,
        expected_version: int | None = None,
        *,
        target: DomainEvent | None = None,  # supplied by the service: the event named
    ) -> None:
        self.check_can_record(meta, expected_version)
        recorded = self.check_target(event_id, target)
        self.trigger_event(
            self.EventRetracted, event_id=event_id, retracted_type=recorded.type, reason=reason, meta=meta
        )

    @records(EventCorrected)
    def correct_event(
        self,
        event_id: EventId,
        changes: Changes,
        reason: Text,
        meta: EventMeta,
        expected_version: int | None = None,
        *,
        target: DomainEvent | None = None,  # supplied by the service: the event named
    ) -> None:
        self.check_can_record(meta, expected_version)
        recorded = self.check_target(event_id, target)
        # "Nothing changed" is judged against the original; once corrected, the event says
        # what its corrections made it say, and any correction of it is taken as given.
        original = (
            None
            if target_version(event_id) in self.corrected
            else {**vars(recorded), "occurred_at": recorded.meta.occurred_at}
        )
        stored = check_changes(recorded.type, event_id, changes, original)
        if stored.occurred_at is not None:
            self.check_not_before_start(meta.model_copy(update={"occurred_at": stored.occurred_at}))
            check_not_in_future(meta.model_copy(update={"occurred_at": stored.occurred_at}))
        self.trigger_event(
            self.EventCorrected,
            event_id=event_id,
            corrected_type=recorded.type,
            changes=stored,
            reason=reason,
            meta=meta,
        )

    @records(MergedInto, command="MergePartnerships")
    def merge_into(
        self,
        survivor_id: UUID,
        meta: EventMeta,
        reason: Text | None = None,
        expected_version: int | None = None,
        *,
        survivor: Aggregate | None = None,  # supplied by the service: the one kept
    ) -> None:
        self.check_can_record(meta, expected_version)
        if survivor_id == self.id:
            raise MergeError("a partnership cannot be merged into itself", survivor_id=str(survivor_id))
        if not isinstance(survivor, Partnership):
            raise MergeError(f"no partnership {survivor_id} to merge into", survivor_id=str(survivor_id))
        if survivor.ended:
            raise MergeError(
                f"partnership {survivor_id} has ended; merge into an open one", survivor_id=str(survivor_id)
            )
        survivor.check_not_before_start(meta)
        self.trigger_event(self.MergedInto, survivor_id=survivor_id, previous=self.stage, reason=reason, meta=meta)
        survivor.trigger_event(survivor.Absorbed, absorbed_id=self.id, meta=meta)

    # Rules ----------------------------------------------------------------------------

    def check_target(self, event_id: str, target: DomainEvent | None) -> DomainEvent:
        aggregate_id, version = parse_event_id(event_id)
        if (
            target is None
            or aggregate_id != self.id
            or (target.originator_id, target.originator_version) != (self.id, version)
            or version > self.version
        ):
            raise UnknownEvent(f"partnership {self.id} has no event {event_id}", event_id=event_id)
        check_correctable(target.type, event_id)
        if version in self.retracted:
            raise AlreadyRetracted(f"{event_id} was retracted; nothing more can change it", event_id=event_id)
        return target

    def check_not_before_current_stage(self, meta: EventMeta) -> None:
        # Stage history is a sequence in valid time: a move cannot take effect before the
        # stage it leaves began, or "since when" would run backwards.
        if meta.occurred_at < self.stage_since:
            raise StageOutOfOrder(
                f"the stage {self.stage.value} began {self.stage_since.isoformat()}; "
                f"a move at {meta.occurred_at.isoformat()} would precede it",
                stage=self.stage.value,
            )


def _uncount(p: Partnership, event_type: str) -> None:
    if event_type == "contact_logged":
        p.contacts -= 1
    elif event_type == "interest_signalled":
        p.interest_signals -= 1
    elif event_type == "joint_activity_recorded":
        p.joint_activities -= 1


def check_outcome_factors(factors: dict[str, float]) -> None:
    if not factors:
        raise InvalidOutcomeFactor("an evaluation needs at least one factor")
    bad = {name: value for name, value in factors.items() if value not in OUTCOME_FACTOR_VALUES}
    if bad:
        raise InvalidOutcomeFactor(
            "outcome factors must each be 0.1, 1 or 10 (poor, adequate, excellent)",
            invalid=bad,
        )
