"""What we know about one network as of a date: the facts, the thresholds, the measures.

The network plan (``domain.network_plan``) turns these measures into a recommendation.
Everything here is pure and deterministic: time comes only from the facts and an explicit
``as_of``, and a plan as of a past date sees only what had happened by then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from domain.timeline import check_aware
from domain.values import (
    OUTCOME_FACTOR_VALUES,
    LeaveReason,
    NetworkActivity,
    NetworkPurpose,
    geometric_mean,
    quality_jumps,
)

Activity = Literal["active", "passive", "dormant", "left"]
Recommendation = Literal["keep", "activate", "park", "leave", "left"]
BestBeforeStatus = Literal["none", "ok", "near", "passed"]

# Reported floats are rounded so that equal inputs print and compare equally everywhere.
DECIMALS = 6


@dataclass(frozen=True)
class PlanThresholds:
    # "The last 12 months": effort and evaluations older than this no longer describe us.
    window_days: int = 365
    # A passive network in which nothing happened for a year is dormant: kept only in case.
    dormant_after_days: int = 365
    # A quarter is about the time it takes to wind our part down in an orderly way.
    best_before_warning_days: int = 90
    # The outcome formula is a log scale, so the effort an outcome is worth scales with it:
    # an adequate outcome (1) is worth at most 100 h a year (about two hours a week), an
    # excellent one (10) up to 1000 h (half a person-year), a poor one (0.1) only 10 h.
    min_efficiency: float = 0.01
    # Under three working days a year the network costs too little for efficiency to matter,
    # and a single evaluation would swing the ratio wildly.
    min_effort_for_efficiency_hours: float = 20.0
    # Worse than "adequate" never justifies non-trivial effort, whatever the hours.
    min_adequate_outcome: float = 1.0
    # Poor (0.1) to excellent (10) or back is a factor of 100: two steps on the scale.
    ambition_jump_factor: float = 100.0
    # One jump may be a real change for better or worse; recurring jumps mean the members
    # aim at different levels ("recurring jumps in quality").
    ambition_jumps_to_leave: int = 2
    # A passive network is worth activating when it can bring in something we cannot get
    # alone, and its last evaluation showed it delivers (excellent).
    activation_purposes: frozenset[str] = frozenset({NetworkPurpose.FUNDING.value, NetworkPurpose.SHARED_GOAL.value})
    activate_min_last_outcome: float = 10.0
    # Unfair: over the window we put in more than this many times the average member's
    # hours. A leader's coordination alone is about twice a member's share, so three
    # times is more than leading explains: the others ride on us.
    unfair_effort_ratio: float = 3.0
    # As for efficiency: under three working days a year nobody is exploited, and one
    # logged meeting would swing the ratio.
    min_effort_for_fairness_hours: float = 20.0
    # Stalled: active, yet nobody (we or a member) contributed for this long. Networks
    # meet about quarterly; one missed round is a holiday, two are a stall.
    stall_after_days: int = 180


THRESHOLDS = PlanThresholds()


@dataclass(frozen=True)
class NetworkFacts:
    """Everything the projection knows about one network, built by the caller from events.

    ``activity`` and ``members`` are as last recorded. ``parkings`` (when the network was
    parked) lets a plan as of a past date tell what the activity was then; leave it empty
    if the network was never parked.
    """

    network_id: str
    name: str
    purposes: tuple[str, ...]
    role: str
    activity: str
    joined_at: datetime
    best_before: date | None
    left_at: datetime | None
    left_reason: str | None
    members: int
    contributions: tuple[tuple[datetime, float], ...]
    evaluations: tuple[tuple[datetime, float], ...]
    activations: tuple[tuple[datetime, str], ...]
    last_event_at: datetime
    parkings: tuple[datetime, ...] = field(default=())
    # Other members' contributions: (when, partnership id, hours, outcome factor 0.1/1/10).
    # Empty when none were logged: fairness and stalling are then not judged at all,
    # since our own hours alone say nothing about what the others do.
    member_contributions: tuple[tuple[datetime, str, float, float], ...] = field(default=())
    # How the needs the network was activated for were met: (when, met/partly/not_met).
    needs: tuple[tuple[datetime, str], ...] = field(default=())
    # Best-before revisions in valid time: (when, the date before, the date after), so a
    # plan as of a past date sees the date in force then; ``best_before`` is the latest.
    best_before_revisions: tuple[tuple[datetime, date | None, date | None], ...] = field(default=())

    def __post_init__(self) -> None:
        # Only facts that events can produce are accepted, so assess() never meets nonsense.
        if self.activity not in {a.value for a in NetworkActivity}:
            raise ValueError(f"activity must be active or passive, got {self.activity!r}")
        for label, moment in self._moments():
            check_aware(moment, label)
        if any(hours < 0 or not math.isfinite(hours) for _, hours in self.contributions):
            raise ValueError("effort hours must be finite and not negative")
        if any(outcome <= 0 or not math.isfinite(outcome) for _, outcome in self.evaluations):
            raise ValueError("outcomes are products of 0.1, 1 and 10, so always positive")
        for _, _, hours, factor in self.member_contributions:
            if hours < 0 or not math.isfinite(hours) or factor not in OUTCOME_FACTOR_VALUES:
                raise ValueError("a member's contribution is hours (finite, not negative) and 0.1, 1 or 10")

    def _moments(self) -> list[tuple[str, datetime]]:
        moments = [("joined_at", self.joined_at), ("last_event_at", self.last_event_at)]
        if self.left_at is not None:
            moments.append(("left_at", self.left_at))
        moments += [("contribution", at) for at, _ in self.contributions]
        moments += [("evaluation", at) for at, _ in self.evaluations]
        moments += [("activation", at) for at, _ in self.activations]
        moments += [("parking", at) for at in self.parkings]
        moments += [("member contribution", c[0]) for c in self.member_contributions]
        moments += [("need", at) for at, _ in self.needs]
        moments += [("best-before revision", r[0]) for r in self.best_before_revisions]
        return moments


@dataclass(frozen=True)
class NetworkHealth:
    network_id: str
    name: str
    purposes: tuple[str, ...]
    role: str
    activity: Activity
    effort_hours: float
    # Geometric, not arithmetic: outcomes live on a log scale (0.1, 1, 10), so the mean of
    # their logarithms is the fair middle. 0.1 and 10 average to 1 (adequate), whereas an
    # arithmetic mean (5.05) would let one excellent review hide a poor one.
    outcome: float | None
    efficiency: float | None
    best_before: date | None
    best_before_status: BestBeforeStatus
    recommendation: Recommendation
    reason: str | None
    explanation: str
    # Judgements beside the recommendation (``judgements``); defaults keep older callers.
    members_effort_hours: float = 0.0  # other members' logged hours in the window
    effort_ratio: float | None = None  # our hours over the average member's
    unfair: bool = False
    stalled: bool = False
    last_need_outcome: str | None = None  # of the latest activation closed by as_of
    # A mandated network is not ours to leave: the reasons we would otherwise leave it
    # for (LeaveReason values) go to the mandate owner instead, with a note saying so.
    for_mandate_owner: tuple[str, ...] = ()
    mandate_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["purposes"] = list(self.purposes)
        data["best_before"] = self.best_before.isoformat() if self.best_before else None
        data["for_mandate_owner"] = list(self.for_mandate_owner)
        return data


@dataclass(frozen=True)
class Measures:
    """The facts seen as of one moment: only what had happened by then counts."""

    as_of: datetime
    left: bool
    activity: Activity
    effort_hours: float
    outcome: float | None
    efficiency: float | None
    window_outcomes: tuple[float, ...]  # in time order
    last_outcome: float | None  # the latest evaluation at any time up to as_of
    best_before_status: BestBeforeStatus
    days_to_best_before: int | None
    best_before: date | None = None  # the date in force at as_of
    mandated: bool = False
    ambition_jumps: int = 0  # jumps of the outcome scale between window evaluations
    members_effort_hours: float = 0.0
    effort_ratio: float | None = None
    unfair: bool = False
    quiet_days: int | None = None  # days since anyone contributed, while active
    stalled: bool = False
    last_need_outcome: str | None = None
    for_mandate_owner: tuple[str, ...] = ()


def measure(facts: NetworkFacts, as_of: datetime, thresholds: PlanThresholds) -> Measures:
    check_aware(as_of, "as_of")
    if facts.joined_at > as_of:
        raise ValueError(f"{facts.name!r} was joined after {as_of.isoformat()}")
    window_start = as_of - timedelta(days=thresholds.window_days)

    def in_window(at: datetime) -> bool:
        return window_start < at <= as_of

    efforts = [hours for at, hours in facts.contributions if in_window(at)]
    effort = round(math.fsum(efforts), DECIMALS)
    # Sorting by (time, outcome) keeps the order deterministic when two share a moment.
    evaluated = sorted((at, outcome) for at, outcome in facts.evaluations if at <= as_of)
    window_outcomes = tuple(outcome for at, outcome in evaluated if in_window(at))
    outcome = window_outcome(window_outcomes)
    efficiency = None
    if outcome is not None and effort > 0:
        efficiency = round(outcome / effort, DECIMALS)
    left = facts.left_at is not None and facts.left_at <= as_of
    best_before = best_before_as_of(facts, as_of)
    status, days = best_before_status(best_before, as_of, thresholds)
    activity = "left" if left else activity_as_of(facts, as_of, thresholds)
    members_effort = round(math.fsum(c[2] for c in facts.member_contributions if in_window(c[0])), DECIMALS)
    ratio = effort_ratio(facts, effort, members_effort, in_window)
    quiet = quiet_days(facts, as_of) if activity == "active" else None
    needs = sorted(need for need in facts.needs if need[0] <= as_of)
    measured = Measures(
        as_of=as_of,
        left=left,
        activity=activity,
        effort_hours=effort,
        outcome=outcome,
        efficiency=efficiency,
        window_outcomes=window_outcomes,
        last_outcome=evaluated[-1][1] if evaluated else None,
        best_before_status=status,
        days_to_best_before=days,
        best_before=best_before,
        mandated=NetworkPurpose.MANDATED.value in facts.purposes,
        ambition_jumps=quality_jumps(window_outcomes, thresholds.ambition_jump_factor),
        members_effort_hours=members_effort,
        effort_ratio=ratio,
        unfair=is_unfair(effort, ratio, thresholds),
        quiet_days=quiet,
        stalled=quiet is not None and quiet >= thresholds.stall_after_days,
        last_need_outcome=needs[-1][1] if needs else None,
    )
    return replace(measured, for_mandate_owner=mandate_concerns(measured, thresholds))


def effort_ratio(
    facts: NetworkFacts, ours: float, members_effort: float, in_window: Callable[[datetime], bool]
) -> float | None:
    """Our window hours over the average member's, or None when members' contributions
    are not logged (nothing to compare with) or we spent nothing. Members who logged
    nothing count as zero: free riders are what unfairness means. The members counted
    are the network's as last recorded, or the contributors if more."""
    if not facts.member_contributions or ours <= 0:
        return None
    contributors = {c[1] for c in facts.member_contributions if in_window(c[0])}
    average = members_effort / max(facts.members, len(contributors), 1)
    return math.inf if average == 0 else round(ours / average, DECIMALS)


def is_unfair(ours: float, ratio: float | None, t: PlanThresholds) -> bool:
    return ratio is not None and ours >= t.min_effort_for_fairness_hours and ratio > t.unfair_effort_ratio


def quiet_days(facts: NetworkFacts, as_of: datetime) -> int | None:
    """Whole days since anyone last contributed, counted from when the network became
    active if later (joined, or last activated); None when members' contributions are
    not logged, since silence from them then says nothing."""
    if not any(c[0] <= as_of for c in facts.member_contributions):
        return None
    moments = [facts.joined_at, *(at for at, _ in facts.activations), *(at for at, _ in facts.contributions)]
    moments += [c[0] for c in facts.member_contributions]
    return (as_of - max(at for at in moments if at <= as_of)).days


def best_before_as_of(facts: NetworkFacts, as_of: datetime) -> date | None:
    # As for activity: the first revision after as_of says what the date was before it.
    later = sorted((r for r in facts.best_before_revisions if r[0] > as_of), key=lambda r: r[0])
    return later[0][1] if later else facts.best_before


def mandate_concerns(m: Measures, t: PlanThresholds) -> tuple[str, ...]:
    """For a mandated network, the leave reasons that apply but are not ours to act on."""
    if not m.mandated or m.left:
        return ()
    concerns = [
        (LeaveReason.BEST_BEFORE_PASSED, m.best_before_status == "passed"),
        (LeaveReason.AMBITION_MISMATCH, m.ambition_jumps >= t.ambition_jumps_to_leave),
        (LeaveReason.UNFAIR, m.unfair),
        (LeaveReason.STALLED, m.stalled),
    ]
    return tuple(reason.value for reason, applies in concerns if applies)


def judgements(m: Measures) -> dict[str, Any]:
    """What a network's health carries beside its recommendation."""
    note = None
    if m.for_mandate_owner:
        note = f"Mandated, so not ours to leave: for the mandate owner to decide ({', '.join(m.for_mandate_owner)})."
    return {
        "members_effort_hours": m.members_effort_hours,
        "effort_ratio": None if m.effort_ratio is None or math.isinf(m.effort_ratio) else m.effort_ratio,
        "unfair": m.unfair,
        "stalled": m.stalled,
        "last_need_outcome": m.last_need_outcome,
        "for_mandate_owner": m.for_mandate_owner,
        "mandate_note": note,
    }


def window_outcome(outcomes: Sequence[float]) -> float | None:
    """The network's outcome over a window: the geometric mean of its evaluations there,
    to ``DECIMALS`` places, or None when it was not evaluated."""
    if not outcomes:
        return None
    return round(geometric_mean(outcomes), DECIMALS)


def best_before_status(
    best_before: date | None, as_of: datetime, thresholds: PlanThresholds
) -> tuple[BestBeforeStatus, int | None]:
    if best_before is None:
        return "none", None
    days = (best_before - as_of.date()).days
    if days < 0:
        return "passed", days
    if days <= thresholds.best_before_warning_days:
        return "near", days
    return "ok", days


def recorded_activity_as_of(facts: NetworkFacts, as_of: datetime) -> str:
    # Only a passive network can be activated and only an active one parked, so the first
    # change after as_of reveals the activity at as_of; without one, the record stands.
    later = [(at, "passive") for at, _ in facts.activations if at > as_of]
    later += [(at, "active") for at in facts.parkings if at > as_of]
    return min(later)[1] if later else facts.activity


def activity_as_of(facts: NetworkFacts, as_of: datetime, thresholds: PlanThresholds) -> Activity:
    if recorded_activity_as_of(facts, as_of) == "active":
        return "active"
    # Joining, contributing, activating or evaluating are signs of life; parking is not.
    signs_of_life = [facts.joined_at]
    signs_of_life += [at for at, _ in facts.contributions + facts.evaluations]
    signs_of_life += [at for at, _ in facts.activations]
    last_sign = max(at for at in signs_of_life if at <= as_of)
    if as_of - last_sign >= timedelta(days=thresholds.dormant_after_days):
        return "dormant"
    return "passive"
