"""Relationship lifecycle flags: computed, with their reasons and evidence, as of a date.

Each flag is a small rule over what the projection knows about one partnership, judged
against the partnership's own segment cell (``domain/operating_model.py``): silence, effort
and the way it is led mean different things for a '++' and a '--' partner. Rules read no
clock: ``as_of`` says when "now" is, so a flag can be asked about any past date. The
evidence of a flag is the ids of the events that raised it (``<aggregate id>:<version>``).
docs/operating-model.md explains every rule and threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from domain.operating_model import UNSEGMENTED, CellPolicy, Mode, OperatingModel
from domain.values import Importance, Stage, geometric_mean, quality_jumps


@dataclass(frozen=True)
class LifecycleThresholds:
    window_days: int = 365  # "the last 12 months": effort, outcomes, fairness
    min_effort_hours: float = 20.0  # below this, efficiency and fairness are not judged
    # Outcome per share of the cell's budget spent: an adequate outcome (1) for twice the
    # budget, or a poor one (0.1) for a fifth of it, is low efficiency.
    min_efficiency: float = 0.5
    unfair_ratio: float = 3.0  # one side puts in three times the other's hours...
    mismatch_factor: float = 100.0  # consecutive evaluations 0.1 ↔ 10 are a jump in quality
    trusted: float = 0.5  # trust this high, once, makes a quiet partner worth waking
    dormant_floor: float = 0.2  # ...until decayed trust falls below this (about four years)
    trend_days: int = 180  # rising compares the last 180 days with the 180 before
    interest_rise: int = 2  # inbound interest signals in the last trend window, at least
    activity_rise: float = 2.0  # joint hours grew at least this many times...
    activity_share: float = 0.25  # ...to at least this share of the cell's yearly budget
    rising_signals: int = 2  # of the three kinds of evidence, a rise needs this many
    max_very_high_per_steward: int = 5


THRESHOLDS = LifecycleThresholds()

# ...unless the partner's roles make lopsided effort normal: a funder gives money, not
# hours; a customer or an authority is served by us. The most lenient role counts.
ROLE_UNFAIR_RATIOS: Mapping[str, float] = {
    "funder": 10.0,
    "customer": 10.0,
    "one_off_customer": 10.0,
    "authority": 10.0,
    "supplier": 5.0,
}


@dataclass(frozen=True)
class Activity:
    at: datetime
    our_hours: float
    their_hours: float
    version: int = 0


@dataclass(frozen=True)
class Evaluation:
    at: datetime
    outcome: float
    version: int = 0


@dataclass(frozen=True)
class Interest:
    at: datetime
    inbound: bool
    version: int = 0


@dataclass(frozen=True)
class Segmentation:
    now: Importance
    future: Importance
    version: int = 0


@dataclass(frozen=True)
class PartnershipFacts:
    partnership_id: str
    partner_name: str
    owner_unit: str
    steward: str
    stage: Stage
    stage_since: datetime
    opened_at: datetime
    last_contact_at: datetime | None = None
    segment_now: Importance | None = None
    segment_future: Importance | None = None
    activities: tuple[Activity, ...] = ()  # at least the last window_days
    evaluations: tuple[Evaluation, ...] = ()  # at least the last window_days, in time order
    steward_left_at: datetime | None = None  # the last handover because a steward left
    roles: tuple[str, ...] = ()
    interests: tuple[Interest, ...] = ()  # at least the last 2 × trend_days
    segment_version: int = 0
    previous_segment: Segmentation | None = None  # the segmentation before the one in force
    stage_version: int = 0  # the stage move in force (0: opened in analyse)
    last_contact_version: int = 0
    segment_at: datetime | None = None  # when the segmentation in force took effect
    steward_left_version: int = 0  # the transfer because a steward left
    tenure_version: int = 0  # the opening or transfer that made the steward theirs


# The flags a rule can raise (each rule below names one): what a board can be filtered by.
FlagName = Literal[
    "under_served",
    "over_served",
    "mode_mismatch",
    "rising",
    "dormant_but_trusted",
    "wind_down_candidate",
    "needs_handover",
    "steward_overloaded",
]


@dataclass(frozen=True)
class Flag:
    name: FlagName
    reasons: tuple[str, ...] = field(default_factory=tuple)
    evidence: tuple[str, ...] = field(default_factory=tuple)  # event ids


def cell_of(facts: PartnershipFacts, model: OperatingModel) -> CellPolicy:
    if facts.segment_now is None or facts.segment_future is None:
        return UNSEGMENTED
    return model.cell(facts.segment_now, facts.segment_future)


def _in_window(moment: datetime, as_of: datetime, days: int) -> bool:
    return as_of - timedelta(days=days) < moment <= as_of


def _ids(facts: PartnershipFacts, versions: list[int]) -> tuple[str, ...]:
    return tuple(f"{facts.partnership_id}:{v}" for v in versions if v)


def days_quiet(facts: PartnershipFacts, as_of: datetime) -> float:
    since = facts.last_contact_at or facts.opened_at
    return (as_of - since).total_seconds() / 86400


def _quiet_evidence(facts: PartnershipFacts) -> tuple[str, ...]:
    # The last contact, or the opening (version 1) if there was none.
    return _ids(facts, [facts.last_contact_version if facts.last_contact_at else 1])


def unfair_ratio_for(roles: tuple[str, ...], t: LifecycleThresholds) -> float:
    return max([t.unfair_ratio, *(ROLE_UNFAIR_RATIOS.get(role, t.unfair_ratio) for role in roles)])


def year_of_work(facts: PartnershipFacts, as_of: datetime, t: LifecycleThresholds) -> tuple[list[Activity], float]:
    """The joint activities of the last window and our hours in them."""
    recent = [a for a in facts.activities if _in_window(a.at, as_of, t.window_days)]
    return recent, sum(a.our_hours for a in recent)


def wind_down_flag(facts: PartnershipFacts, cell: CellPolicy, as_of: datetime, t: LifecycleThresholds) -> Flag | None:
    recent, ours = year_of_work(facts, as_of, t)
    theirs = sum(a.their_hours for a in recent)
    in_window = (e for e in facts.evaluations if _in_window(e.at, as_of, t.window_days))
    judged = sorted(in_window, key=lambda e: (e.at, e.version))  # one moment: the later recorded last
    outcomes = [e.outcome for e in judged]
    reasons, evidence = [], []
    if ours >= t.min_effort_hours and outcomes and cell.yearly_effort_hours > 0:
        mean = geometric_mean(outcomes)
        efficiency = mean / (ours / cell.yearly_effort_hours)
        if efficiency < t.min_efficiency:
            reasons.append(
                f"low_efficiency: outcome {mean:.3g} for {ours:.0f} h in {t.window_days} days, "
                f"against a budget of {cell.yearly_effort_hours:.0f} h a year"
            )
            evidence += [a.version for a in recent] + [e.version for e in judged]
    ratio = unfair_ratio_for(facts.roles, t)
    # Multiplied, not divided: no zero to guard, and "exactly three times" stays exact.
    if ours + theirs >= t.min_effort_hours and (ours >= ratio * theirs or theirs >= ratio * ours):
        roles = ", ".join(facts.roles) or "no role"
        reasons.append(f"unfair: we put in {ours:.0f} h, they {theirs:.0f} h (over ×{ratio:g} for {roles})")
        evidence += [a.version for a in recent]
    jumps = quality_jumps(outcomes, t.mismatch_factor)
    if jumps:
        reasons.append(f"ambition_mismatch: evaluations jumped {jumps} time(s) by ×{t.mismatch_factor:g} or more")
        evidence += [e.version for e in judged]
    if not reasons:
        return None
    return Flag("wind_down_candidate", tuple(reasons), _ids(facts, sorted(set(evidence))))


def rising_flag(facts: PartnershipFacts, cell: CellPolicy, as_of: datetime, t: LifecycleThresholds) -> Flag | None:
    """Evidence that the partner will matter more than it does now; trust merely maturing
    is not such evidence, nor is a steward's guess alone."""
    if facts.segment_now == Importance.VERY_HIGH:
        return None  # it cannot matter more than '++'
    reasons, evidence = [], []
    before, now_ = facts.previous_segment, facts.segment_now
    moved_lately = facts.segment_at is not None and _in_window(facts.segment_at, as_of, t.window_days)
    if before is not None and now_ is not None and facts.segment_future is not None and moved_lately:
        up_now, up_future = now_.rank - before.now.rank, facts.segment_future.rank - before.future.rank
        if min(up_now, up_future) >= 0 and max(up_now, up_future) > 0:
            reasons.append(
                f"segmentation moved up from {before.now.value}/{before.future.value} "
                f"to {now_.value}/{facts.segment_future.value}"
            )
            evidence += [before.version, facts.segment_version]
    recent_from = as_of - timedelta(days=t.trend_days)
    earlier = [i for i in facts.interests if i.inbound and _in_window(i.at, recent_from, t.trend_days)]
    recent = [i for i in facts.interests if i.inbound and _in_window(i.at, as_of, t.trend_days)]
    if len(recent) >= t.interest_rise and len(recent) > len(earlier):
        reasons.append(f"inbound interest grew: {len(recent)} signals in {t.trend_days} days, {len(earlier)} before")
        evidence += [i.version for i in recent]
    hours_recent = [a for a in facts.activities if _in_window(a.at, as_of, t.trend_days)]
    hours_now = sum(a.our_hours + a.their_hours for a in hours_recent)
    hours_before = sum(
        a.our_hours + a.their_hours for a in facts.activities if _in_window(a.at, recent_from, t.trend_days)
    )
    if hours_now >= t.activity_rise * hours_before and hours_now >= t.activity_share * cell.yearly_effort_hours > 0:
        reasons.append(
            f"joint work grew to {hours_now:.0f} h in {t.trend_days} days from {hours_before:.0f} h, "
            f"against a cell budget of {cell.yearly_effort_hours:.0f} h a year"
        )
        evidence += [a.version for a in hours_recent]
    if len(reasons) < t.rising_signals:
        return None
    return Flag("rising", tuple(reasons), _ids(facts, sorted(set(evidence))))


def handover_flags(
    facts: PartnershipFacts, very_high_by_steward: Mapping[str, int], t: LifecycleThresholds
) -> list[Flag]:
    flags = []
    left = facts.steward_left_at
    if left is not None and (facts.last_contact_at is None or facts.last_contact_at < left):
        # A partnership cannot be bequeathed: the successor must build it up again.
        reason = f"steward left on {left.date().isoformat()}; no contact since"
        flags.append(Flag("needs_handover", (reason,), _ids(facts, [facts.steward_left_version])))
    held = very_high_by_steward.get(facts.steward, 0)
    very_high = facts.segment_now == Importance.VERY_HIGH
    if held > t.max_very_high_per_steward:
        flags.append(
            Flag(
                "steward_overloaded",
                (f"{facts.steward} looks after {held} '++' partnerships (more than {t.max_very_high_per_steward})",),
                # Theirs since this event; and '++' since that one, if it is one of them.
                _ids(facts, [facts.tenure_version, facts.segment_version if very_high else 0]),
            )
        )
    return flags


def service_flags(
    facts: PartnershipFacts, cell: CellPolicy, quiet: float, as_of: datetime, t: LifecycleThresholds
) -> list[Flag]:
    """Is the partnership served as its cell says: contact often enough, effort within the
    budget, led in the cell's mode?"""
    flags = []
    if quiet > cell.cadence_days:
        reason = f"no contact for {quiet:.0f} days; its cell expects contact every {cell.cadence_days} days"
        flags.append(Flag("under_served", (reason,), _quiet_evidence(facts)))
    recent, ours = year_of_work(facts, as_of, t)
    if ours >= t.min_effort_hours and ours > cell.yearly_effort_hours:
        budget = cell.yearly_effort_hours
        reason = f"we put in {ours:.0f} h in {t.window_days} days; its cell's budget is {budget:.0f} h a year"
        flags.append(Flag("over_served", (reason,), _ids(facts, sorted({a.version for a in recent}))))
    led = {Stage.MAINTAIN: Mode.MAINTAIN, Stage.MANAGE: Mode.MANAGE}.get(facts.stage)
    if led is not None and facts.segment_now is not None and led != cell.mode:
        where = f"{cell.now.value}/{cell.future.value}"
        reason = f"at stage {facts.stage.value}, but its cell ({where}) calls for {cell.mode.value}"
        flags.append(Flag("mode_mismatch", (reason,), _ids(facts, [facts.stage_version, facts.segment_version])))
    return flags


def lifecycle_flags(
    facts: PartnershipFacts,
    as_of: datetime,
    model: OperatingModel,
    trust_now: float | None = None,
    trust_peak: float | None = None,
    very_high_by_steward: Mapping[str, int] | None = None,
    t: LifecycleThresholds = THRESHOLDS,
) -> list[Flag]:
    """The flags of one partnership as of a moment, in a fixed order. ``model`` is the
    operating model in force then; ``trust_peak`` the highest trust recorded by then."""
    if facts.stage == Stage.ENDED:
        return []
    cell = cell_of(facts, model)
    flags: list[Flag] = []
    if facts.stage != Stage.WIND_DOWN:  # a wind-down is decided: judge only its handover
        quiet = days_quiet(facts, as_of)
        flags += service_flags(facts, cell, quiet, as_of, t)
        if flag := rising_flag(facts, cell, as_of, t):
            flags.append(flag)
        if (
            trust_peak is not None
            and trust_peak >= t.trusted
            and (trust_now or 0.0) >= t.dormant_floor
            and quiet > cell.cadence_days
        ):
            reason = f"trust reached {trust_peak:.2f} and is {trust_now or 0:.2f} now; no contact for {quiet:.0f} days"
            flags.append(Flag("dormant_but_trusted", (reason,), _quiet_evidence(facts)))
        if flag := wind_down_flag(facts, cell, as_of, t):
            flags.append(flag)
    flags += handover_flags(facts, very_high_by_steward or {}, t)
    return flags
