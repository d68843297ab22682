"""The partnership: our relationship with one partner, the main aggregate.

Public methods are commands: they check the rules, then trigger a past-tense event.
The ``@event`` methods only change state, because they also run when the aggregate is
rebuilt from history, where yesterday's events must load even if today's rules differ.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Aggregate, check_not_in_future
from domain.errors import InvalidOutcomeFactor, NothingChanged, StageOutOfOrder
from domain.stages import check_transition
from domain.values import (
    OUTCOME_FACTOR_VALUES,
    ActivityKind,
    Channel,
    Direction,
    EventMeta,
    Importance,
    Partner,
    Segment,
    Stage,
    Tenure,
    TransferReason,
    later,
    outcome_of,
)


class Partnership(Aggregate):
    @event("Opened")
    def __init__(self, partner: Partner, owner_unit: str, steward: str, meta: EventMeta) -> None:
        self.partner = partner
        self.tenures = [Tenure(owner_unit=owner_unit, steward=steward, since=meta.occurred_at)]
        self.started_at = meta.occurred_at
        self.stage = Stage.ANALYSE
        self.stage_since = meta.occurred_at
        self.segment: Segment | None = None
        self.contacts = 0
        self.last_contact_at: datetime | None = None
        self.interest_signals = 0
        self.joint_activities = 0
        self.last_outcome: float | None = None
        self.ended = False

    @classmethod
    def open(
        cls,
        partner: Partner,
        owner_unit: str,
        steward: str,
        meta: EventMeta,
        id: UUID | None = None,  # noqa: A002  (integrators may choose the id up front)
    ) -> Partnership:
        check_not_in_future(meta)
        return cls._create(
            cls.Opened, id=id, partner=partner, owner_unit=owner_unit, steward=steward, meta=meta
        )

    @property
    def owner_unit(self) -> str:
        return self.tenures[-1].owner_unit

    @property
    def steward(self) -> str:
        return self.tenures[-1].steward

    def owner_at(self, moment: datetime) -> Tenure | None:
        """Who owned the partnership at ``moment`` (valid time), as far as we know now."""
        current = None
        for tenure in self.tenures:
            if tenure.since > moment:
                break
            current = tenure
        return current

    # Commands -------------------------------------------------------------------------

    def log_contact(
        self,
        channel: Channel,
        direction: Direction,
        participants: tuple[str, ...],
        meta: EventMeta,
        effort_minutes: int | None = None,
        summary: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self._contact_logged(channel, direction, participants, effort_minutes, summary, meta)

    def signal_interest(
        self,
        direction: Direction,
        strength: int,
        meta: EventMeta,
        evidence: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self._interest_signalled(direction, strength, evidence, meta)

    def record_joint_activity(
        self,
        kind: ActivityKind,
        title: str,
        our_effort_hours: float,
        their_effort_hours: float,
        meta: EventMeta,
        outcome: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self._joint_activity_recorded(
            kind, title, our_effort_hours, their_effort_hours, outcome, meta
        )

    def evaluate(
        self,
        factors: dict[str, float],
        meta: EventMeta,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        check_outcome_factors(factors)
        self._evaluated(factors, outcome_of(factors), note, meta)

    def segment_as(
        self,
        now: Importance,
        future: Importance,
        meta: EventMeta,
        rationale: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        # Segmenting is a guess that must stay revisable, so re-segmenting is always allowed.
        self.check_can_record(meta, expected_version)
        self._segmented(Segment(now=now, future=future), rationale, meta)

    def transfer_ownership(
        self,
        owner_unit: str,
        steward: str,
        reason: TransferReason,
        meta: EventMeta,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        # A transfer may be back-dated: compare with whoever owned it at that moment.
        then = self.owner_at(meta.occurred_at)
        if then is not None and (owner_unit, steward) == (then.owner_unit, then.steward):
            raise NothingChanged(
                f"{steward} of {owner_unit} already owned this partnership then",
                owner_unit=owner_unit,
                steward=steward,
            )
        self._ownership_transferred(owner_unit, steward, reason, meta)

    def change_stage(
        self,
        stage: Stage,
        reason: str,
        meta: EventMeta,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_record(meta, expected_version)
        self.check_not_before_current_stage(meta)
        check_transition(self.stage, stage)
        self._stage_changed(self.stage, stage, reason, note, meta)

    def check_not_before_current_stage(self, meta: EventMeta) -> None:
        # Stage history is a sequence in valid time: a move cannot take effect before the
        # stage it leaves began, or "since when" would run backwards.
        if meta.occurred_at < self.stage_since:
            raise StageOutOfOrder(
                f"the stage {self.stage.value} began {self.stage_since.isoformat()}; "
                f"a move at {meta.occurred_at.isoformat()} would precede it",
                stage=self.stage.value,
            )

    # Events ---------------------------------------------------------------------------

    @event("ContactLogged")
    def _contact_logged(
        self,
        channel: Channel,
        direction: Direction,
        participants: tuple[str, ...],
        effort_minutes: int | None,
        summary: str | None,
        meta: EventMeta,
    ) -> None:
        self.contacts += 1
        self.last_contact_at = later(self.last_contact_at, meta.occurred_at)

    @event("InterestSignalled")
    def _interest_signalled(
        self, direction: Direction, strength: int, evidence: str | None, meta: EventMeta
    ) -> None:
        self.interest_signals += 1

    @event("JointActivityRecorded")
    def _joint_activity_recorded(
        self,
        kind: ActivityKind,
        title: str,
        our_effort_hours: float,
        their_effort_hours: float,
        outcome: str | None,
        meta: EventMeta,
    ) -> None:
        self.joint_activities += 1

    @event("Evaluated")
    def _evaluated(
        self, factors: dict[str, float], outcome: float, note: str | None, meta: EventMeta
    ) -> None:
        self.last_outcome = outcome

    @event("Segmented")
    def _segmented(self, segment: Segment, rationale: str | None, meta: EventMeta) -> None:
        self.segment = segment

    @event("OwnershipTransferred")
    def _ownership_transferred(
        self, owner_unit: str, steward: str, reason: TransferReason, meta: EventMeta
    ) -> None:
        tenure = Tenure(owner_unit=owner_unit, steward=steward, since=meta.occurred_at)
        # Stable sort: of two transfers taking effect at the same moment, the later wins.
        self.tenures = sorted([*self.tenures, tenure], key=lambda t: t.since)

    @event("StageChanged")
    def _stage_changed(
        self, previous: Stage, stage: Stage, reason: str, note: str | None, meta: EventMeta
    ) -> None:
        self.stage = stage
        self.stage_since = meta.occurred_at
        self.ended = stage == Stage.ENDED


def check_outcome_factors(factors: dict[str, float]) -> None:
    if not factors:
        raise InvalidOutcomeFactor("an evaluation needs at least one factor")
    bad = {name: value for name, value in factors.items() if value not in OUTCOME_FACTOR_VALUES}
    if bad:
        raise InvalidOutcomeFactor(
            "outcome factors must each be 0.1, 1 or 10 (poor, adequate, excellent)",
            invalid=bad,
        )
