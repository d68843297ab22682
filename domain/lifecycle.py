"""Relationship lifecycle flags: computed, with their reasons, as of an explicit date.

Each flag is a small rule over what the projection knows about one partnership. Rules
read no clock: ``as_of`` says when "now" is, so a flag can be asked about any past date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from domain.values import Importance, Stage, geometric_mean, quality_jumps


@dataclass(frozen=True)
class LifecycleThresholds:
    window_days: int = 365  # "the last 12 months"
    min_effort_hours: float = 20.0  # below this, efficiency and fairness are not judged
    min_outcome_per_hour: float = 0.02  # outcome 1 needs at most 50 h of our effort a year
    unfair_ratio: float = 3.0  # one side puts in three times the other's hours
    mismatch_factor: float = 100.0  # consecutive evaluations 0.1 ↔ 10 are a jump in quality
    stale_after_days: int = 180
    dormant_quiet_days: int = 180
    trusted: float = 0.5
    trend_days: int = 180
    trend_rise: float = 0.05
    max_very_high_per_steward: int = 5


THRESHOLDS = LifecycleThresholds()


@dataclass(frozen=True)
class Activity:
    at: datetime
    our_hours: float
    their_hours: float


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
    activities: tuple[Activity, ...] = ()
    evaluations: tuple[tuple[datetime, float], ...] = ()
    steward_left_at: datetime | None = None  # the last handover because a steward left


# The flags a rule can raise (each rule below names one): what a board can be filtered by.
FlagName = Literal["wind_down_candidate", "rising", "dormant_but_trusted", "stale", "needs_handover"]


@dataclass(frozen=True)
class Flag:
    name: FlagName
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _in_window(moment: datetime, as_of: datetime, days: int) -> bool:
    return as_of - timedelta(days=days) < moment <= as_of


def wind_down_reasons(facts: PartnershipFacts, as_of: datetime, t: LifecycleThresholds) -> list[str]:
    recent = [a for a in facts.activities if _in_window(a.at, as_of, t.window_days)]
    ours = sum(a.our_hours for a in recent)
    theirs = sum(a.their_hours for a in recent)
    outcomes = [o for at, o in sorted(facts.evaluations) if _in_window(at, as_of, t.window_days)]
    reasons = []
    if ours >= t.min_effort_hours and outcomes:
        per_hour = geometric_mean(outcomes) / ours
        if per_hour < t.min_outcome_per_hour:
            reasons.append(
                f"low_efficiency: outcome {geometric_mean(outcomes):.3g} for {ours:.0f} h "
                f"in {t.window_days} days ({per_hour:.3g}/h)"
            )
    # Multiplied, not divided: no zero to guard, and "exactly three times" stays exact.
    if ours + theirs >= t.min_effort_hours:
        if ours >= t.unfair_ratio * theirs or theirs >= t.unfair_ratio * ours:
            reasons.append(f"unfair: we put in {ours:.0f} h, they {theirs:.0f} h")
    jumps = quality_jumps(outcomes, t.mismatch_factor)
    if jumps:
        reasons.append(f"ambition_mismatch: evaluations jumped {jumps} time(s) by ×{t.mismatch_factor:g} or more")
    return reasons


def rising_reasons(
    facts: PartnershipFacts, trust_now: float | None, trust_before: float | None, t: LifecycleThresholds
) -> list[str]:
    reasons = []
    if facts.segment_now and facts.segment_future and facts.segment_future.rank > facts.segment_now.rank:
        reasons.append(f"future importance {facts.segment_future.value} above current {facts.segment_now.value}")
    # Trust is stored to six decimals; compare at that grain so 0.35 - 0.30 counts as 0.05.
    if trust_now is not None and trust_before is not None and round(trust_now - trust_before, 6) >= t.trend_rise:
        reasons.append(f"trust rose from {trust_before:.2f} to {trust_now:.2f} in {t.trend_days} days")
    return reasons


def days_quiet(facts: PartnershipFacts, as_of: datetime) -> float:
    since = facts.last_contact_at or facts.opened_at
    return (as_of - since).total_seconds() / 86400


def handover_reasons(
    facts: PartnershipFacts, very_high_by_steward: Mapping[str, int], t: LifecycleThresholds
) -> list[str]:
    reasons = []
    left = facts.steward_left_at
    if left is not None and (facts.last_contact_at is None or facts.last_contact_at < left):
        # A partnership cannot be bequeathed: the successor must build it up again.
        reasons.append(f"steward left on {left.date().isoformat()}; no contact since")
    held = very_high_by_steward.get(facts.steward, 0)
    if held > t.max_very_high_per_steward:
        reasons.append(
            f"{facts.steward} looks after {held} '++' partnerships (more than {t.max_very_high_per_steward})"
        )
    return reasons


def lifecycle_flags(
    facts: PartnershipFacts,
    as_of: datetime,
    trust_now: float | None = None,
    trust_before: float | None = None,
    very_high_by_steward: Mapping[str, int] | None = None,
    t: LifecycleThresholds = THRESHOLDS,
) -> list[Flag]:
    if facts.stage == Stage.ENDED:
        return []
    flags = []
    if reasons := wind_down_reasons(facts, as_of, t):
        flags.append(Flag("wind_down_candidate", tuple(reasons)))
    if reasons := rising_reasons(facts, trust_now, trust_before, t):
        flags.append(Flag("rising", tuple(reasons)))
    quiet = days_quiet(facts, as_of)
    if quiet >= t.dormant_quiet_days and (trust_now or 0) >= t.trusted:
        flags.append(Flag("dormant_but_trusted", (f"no contact for {quiet:.0f} days, trust {trust_now:.2f}",)))
    if quiet >= t.stale_after_days:
        flags.append(Flag("stale", (f"no contact for {quiet:.0f} days",)))
    if reasons := handover_reasons(facts, very_high_by_steward or {}, t):
        flags.append(Flag("needs_handover", tuple(reasons)))
    return flags
