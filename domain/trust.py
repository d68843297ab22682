"""The trust trajectory of one partnership: interest, then trust, then commitment.

A pure fold over what happened. Interest must be mutual, so the weaker side counts.
Trust needs time and doing things together: it grows only through joint activities and
good evaluations, never past what the relationship's age allows, and contacts alone only
make the partner familiar. A steward change keeps the organisation's part of trust and
restarts the personal part, because a partnership cannot be bequeathed.

Time comes only from the happenings and an explicit ``as_of``; every stored number is
rounded, so replaying the same history gives byte-identical rows. The formulas and the
reasons for each parameter are in docs/trust-model.md.

Inside one step the rules change a private mutable copy (DraftState) and a single frozen
TrustState is built at the end: a projection catch-up folds every event through here,
and copying the frozen state once per change was most of its cost. From the outside the
fold stays pure; every number is computed by the same expressions in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime

from domain.timeline import check_aware
from domain.trust_params import PARAMETERS, TRUST_MODEL_VERSION, TrustParameters
from domain.trust_types import (
    DraftState,
    Happening,
    Phase,
    TrustPoint,
    TrustState,
    assembled,
    days_between,
    later,
    remaining,
    saturate,
    utc,
)

__all__ = [
    "PARAMETERS",
    "TRUST_MODEL_VERSION",
    "Happening",
    "TrustParameters",
    "TrustPoint",
    "TrustState",
    "age_cap",
    "decay",
    "initial",
    "phase_of",
    "point",
    "step",
    "trajectory",
]

# The fold ------------------------------------------------------------------------------


def initial(opened: Happening, params: TrustParameters = PARAMETERS) -> TrustState:
    if opened.kind != "opened":
        raise ValueError(f"a trust trajectory starts with 'opened', not {opened.kind!r}")
    at = utc(opened.at)
    return assembled(
        TrustState,
        {
            "opened_at": at,
            "as_of": at,
            "inbound_interest": 0.0,
            "outbound_interest": 0.0,
            "org_trust": 0.0,
            "personal_trust": 0.0,
            "familiarity": 0.0,
            "attention": 0.0,
            "last_contact_at": None,
            "last_joint_activity_at": None,
        },
    )


def decay(state: TrustState, until: datetime, params: TrustParameters = PARAMETERS) -> TrustState:
    """Quiet time passes. Time never runs backwards: an earlier ``until`` changes nothing."""
    draft = _decayed(state, until, params)
    return state if draft is None else draft.frozen()


def step(state: TrustState, happening: Happening, params: TrustParameters = PARAMETERS) -> TrustState:
    draft = _decayed(state, happening.at, params)
    if draft is None:  # no time has passed since the latest happening seen
        draft = DraftState.of(state)
    # A back-dated happening is applied now, weighed by how much of it would be left by
    # now; as_of stays the latest moment seen. (Rebuilding in time order is exact.)
    late_days = max(0.0, days_between(happening.at, draft.as_of))
    _APPLY[happening.kind](draft, happening, late_days, params)
    draft.round_numbers(params.decimals)
    return draft.frozen()


def point(state: TrustState, moved_by: tuple[str, ...], params: TrustParameters = PARAMETERS) -> TrustPoint:
    decimals = params.decimals
    inbound = round(state.inbound_interest, decimals)
    outbound = round(state.outbound_interest, decimals)
    mutual = min(inbound, outbound)
    trust = round(state.trust, decimals)
    return assembled(
        TrustPoint,
        {
            "at": state.as_of,
            "inbound_interest": inbound,
            "outbound_interest": outbound,
            "mutual_interest": mutual,
            "trust": trust,
            "attention": round(state.attention, decimals),
            "phase": phase_of(trust, mutual, state.last_joint_activity_at, state.as_of, params),
            "moved_by": tuple(moved_by),
            "model_version": params.version,
        },
    )


def trajectory(
    happenings: Iterable[Happening],
    as_of: datetime | None = None,
    params: TrustParameters = PARAMETERS,
) -> list[TrustPoint]:
    """The offline fold: in time order, one point per happening, then one at ``as_of``."""
    ordered = sorted(happenings, key=lambda h: (h.at, h.event_id))
    if not ordered or ordered[0].kind != "opened":
        raise ValueError("a trust trajectory needs the partnership's opening as its first event")
    state = initial(ordered[0], params)
    points = [point(state, (ordered[0].event_id,), params)]
    for happening in ordered[1:]:
        state = step(state, happening, params)
        points.append(point(state, (happening.event_id,), params))
    if as_of is not None:
        check_aware(as_of, "as_of")
        if as_of > state.as_of:
            points.append(point(decay(state, as_of, params), (), params))
    return points


# The rules -----------------------------------------------------------------------------


def age_cap(opened_at: datetime, at: datetime, params: TrustParameters = PARAMETERS) -> float:
    """The most trust a relationship of this age can hold: none at a first meeting."""
    age_days = max(0.0, days_between(opened_at, at))
    return 1.0 - math.exp(-age_days / params.maturity_days)


def phase_of(
    trust: float,
    mutual_interest: float,
    last_joint_activity_at: datetime | None,
    at: datetime,
    params: TrustParameters = PARAMETERS,
) -> Phase:
    recently_together = (
        last_joint_activity_at is not None
        and days_between(last_joint_activity_at, at) <= params.commitment_recent_activity_days
    )
    if (
        trust >= params.commitment_trust_threshold
        and mutual_interest >= params.commitment_interest_threshold
        and recently_together
    ):
        return "commitment"
    return "trust" if trust >= params.trust_threshold else "interest"


def _decayed(state: TrustState, until: datetime, params: TrustParameters) -> DraftState | None:
    """The state faded until ``until`` and rounded, or None if no time passes."""
    check_aware(until, "until")
    days = days_between(state.as_of, until)
    if days <= 0:
        return None
    trust_left = remaining(days, params.trust_half_life_days)
    interest_left = remaining(days, params.interest_half_life_days)
    draft = DraftState.of(state)
    draft.as_of = utc(until)
    draft.inbound_interest = state.inbound_interest * interest_left
    draft.outbound_interest = state.outbound_interest * interest_left
    draft.org_trust = state.org_trust * trust_left
    draft.personal_trust = state.personal_trust * trust_left
    draft.familiarity = state.familiarity * trust_left
    draft.attention = state.attention * remaining(days, params.attention_half_life_days)
    draft.round_numbers(params.decimals)
    return draft


# Each rule changes the draft in place, computing every field from the same values, in
# the same order, as when each rule returned a replaced copy of the state.


def _opened(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    pass  # a partnership opens once; initial() already began the trajectory


def _contact(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    weight = remaining(late, p.interest_half_life_days)
    _interested(state, h, p.contact_interest_gain * weight)
    state.attention = max(state.attention, remaining(late, p.attention_half_life_days))
    state.familiarity = _more_familiar(state, h, late, p)
    state.last_contact_at = later(state.last_contact_at, h.at)


def _interest(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    gain = 1.0 - (1.0 - p.interest_gain_per_strength) ** (h.strength or 0)
    _interested(state, h, gain * remaining(late, p.interest_half_life_days))
    state.familiarity = _more_familiar(state, h, late, p)


def _joint_activity(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    # Doing things together is mutual too: the weaker side's effort counts.
    shared_hours = min(h.our_hours, h.their_hours)
    effort = 1.0 - math.exp(-shared_hours / p.joint_effort_scale_hours)
    gain = p.joint_activity_gain + p.joint_effort_gain * effort
    weight = remaining(late, p.trust_half_life_days)
    _built_together(state, h, gain * weight, p)
    state.last_joint_activity_at = later(state.last_joint_activity_at, h.at)


def _evaluation(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    # The outcome formula multiplies factors of 0.1/1/10, so decades are its natural unit.
    decades = math.log10(h.outcome or 1.0)
    weight = remaining(late, p.trust_half_life_days)
    if decades > 0:
        gain = 1.0 - (1.0 - p.good_outcome_gain_per_decade) ** decades
        _built_together(state, h, gain * weight, p)
    elif decades < 0:
        kept = 1.0 - (1.0 - (1.0 - p.poor_outcome_loss_per_decade) ** -decades) * weight
        state.org_trust = state.org_trust * kept
        state.personal_trust = state.personal_trust * kept
        state.familiarity = state.familiarity * kept


def _steward_changed(state: DraftState, h: Happening, late: float, p: TrustParameters) -> None:
    state.personal_trust = 0.0  # the successor builds it again


_APPLY: dict[str, Callable[[DraftState, Happening, float, TrustParameters], None]] = {
    "opened": _opened,
    "contact": _contact,
    "interest": _interest,
    "joint_activity": _joint_activity,
    "evaluation": _evaluation,
    "steward_changed": _steward_changed,
}


def _interested(state: DraftState, h: Happening, gain: float) -> None:
    if h.direction == "inbound":
        state.inbound_interest = saturate(state.inbound_interest, gain)
    else:
        state.outbound_interest = saturate(state.outbound_interest, gain)


def _more_familiar(state: DraftState, h: Happening, late: float, p: TrustParameters) -> float:
    gain = p.familiarity_gain * remaining(late, p.trust_half_life_days)
    towards_ceiling = gain * max(0.0, p.familiarity_ceiling - state.familiarity)
    return state.familiarity + min(towards_ceiling, _headroom(state, h.at, p))


def _built_together(state: DraftState, h: Happening, gain: float, p: TrustParameters) -> None:
    # Saturating towards the age cap: the closer trust is to it, the less each step adds.
    added = gain * _headroom(state, h.at, p)
    state.org_trust = state.org_trust + p.org_share * added
    state.personal_trust = state.personal_trust + (1.0 - p.org_share) * added


def _headroom(state: DraftState, at: datetime, p: TrustParameters) -> float:
    total = state.familiarity + state.org_trust + state.personal_trust
    return max(0.0, age_cap(state.opened_at, at, p) - total)
