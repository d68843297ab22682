"""The trust model's promises, each checked over every history hypothesis can find.

Each property names the rule it guards; breaking the rule in domain/trust.py (or its
parameters) makes the property fail.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.trust import (
    PARAMETERS,
    TRUST_MODEL_VERSION,
    Happening,
    TrustParameters,
    TrustState,
    age_cap,
    decay,
    initial,
    point,
    step,
    trajectory,
)

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
P = PARAMETERS
ROUNDING = 2e-6  # three components, each rounded to 6 decimals
EVERYTHING = ("contact", "interest", "joint_activity", "evaluation", "steward_changed")
ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
NUMBERS = (
    "inbound_interest",
    "outbound_interest",
    "org_trust",
    "personal_trust",
    "familiarity",
    "attention",
)


def at(days: float, zone: timezone = UTC) -> datetime:
    return (T0 + timedelta(days=days)).astimezone(zone)


def h(event_id: str, days: float, kind: str, **details: object) -> Happening:
    return Happening(event_id, at(days), kind, **details)  # type: ignore[arg-type]


# Strategies ----------------------------------------------------------------------------

outcomes = st.floats(min_value=0.001, max_value=1000.0)
grid_outcomes = st.integers(-3, 3).map(lambda k: float(f"{10.0**k:.10g}"))  # products of 0.1/1/10
hours = st.floats(min_value=0.0, max_value=300.0)


@st.composite
def happenings(
    draw: st.DrawFn,
    kinds: tuple[str, ...] = EVERYTHING,
    span_days: float = 1500.0,
    directions: tuple[str, ...] = ("inbound", "outbound"),
    start_days: float = 0.0,
) -> Happening:
    kind = draw(st.sampled_from(kinds))
    moment = at(draw(st.floats(start_days, start_days + span_days)), draw(st.sampled_from(ZONES)))
    details: dict[str, object] = {}
    if kind in ("contact", "interest"):
        details["direction"] = draw(st.sampled_from(directions))
    if kind == "interest":
        details["strength"] = draw(st.integers(1, 3))
    if kind == "joint_activity":
        details.update(our_hours=draw(hours), their_hours=draw(hours))
    if kind == "evaluation":
        details["outcome"] = draw(st.one_of(grid_outcomes, outcomes))
    return Happening("tbd", moment, kind, **details)  # type: ignore[arg-type]


def histories(max_size: int = 25, **shape: object) -> st.SearchStrategy[list[Happening]]:
    """An opening at T0, then happenings in any order (ids keep the opening first)."""
    return st.lists(happenings(**shape), max_size=max_size).map(  # type: ignore[arg-type]
        lambda hs: (
            [Happening("e000", T0, "opened")] + [replace(x, event_id=f"e{i:03d}") for i, x in enumerate(hs, start=1)]
        )
    )


def fold(history: list[Happening]) -> TrustState:
    ordered = sorted(history, key=lambda x: (x.at, x.event_id))
    state = initial(ordered[0])
    for happening in ordered[1:]:
        state = step(state, happening)
    return state


def states_after(history: list[Happening]) -> list[TrustState]:
    ordered = sorted(history, key=lambda x: (x.at, x.event_id))
    found = [initial(ordered[0])]
    for happening in ordered[1:]:
        found.append(step(found[-1], happening))
    return found


on_grid = st.floats(0.0, 1.0).map(lambda x: round(x, 6))  # the fold only stores rounded numbers


@st.composite
def crafted_states(draw: st.DrawFn, low: float = 0.0) -> TrustState:
    """Any state, not only reachable ones, on the same 6-decimal grid the fold keeps."""
    part = st.floats(low, 1 / 3).map(lambda x: round(x, 6))
    as_of_days = draw(st.floats(0.0, 2000.0))
    last_joint = draw(st.none() | st.floats(0.0, as_of_days).map(at))
    return TrustState(
        opened_at=T0,
        as_of=at(as_of_days, draw(st.sampled_from(ZONES))),
        inbound_interest=draw(st.floats(low, 1.0).map(lambda x: round(x, 6))),
        outbound_interest=draw(st.floats(low, 1.0).map(lambda x: round(x, 6))),
        org_trust=draw(part),
        personal_trust=draw(part),
        familiarity=draw(st.floats(low, P.familiarity_ceiling).map(lambda x: round(x, 6))),
        attention=draw(st.floats(low, 1.0).map(lambda x: round(x, 6))),
        last_contact_at=draw(st.none() | st.floats(0.0, as_of_days).map(at)),
        last_joint_activity_at=last_joint,
    )


def working_together(months: int, directions: tuple[str, ...] = ("inbound", "outbound")) -> list[Happening]:
    """A partnership that works together monthly and says so every quarter."""
    history = [h("e000", 0, "opened")]
    for month in range(1, months + 1):
        day = 30.0 * month
        history.append(h(f"m{month:03d}a", day, "joint_activity", our_hours=20.0, their_hours=20.0))
        history.append(h(f"m{month:03d}b", day + 1, "contact", direction=directions[0]))
        for side in directions if month % 3 == 0 else ():
            signal = h(f"m{month:03d}i{side}", day + 2, "interest", direction=side, strength=3)
            history.append(signal)
        if month % 6 == 0:
            history.append(h(f"m{month:03d}e", day + 3, "evaluation", outcome=10.0))
    return history


# Rule 1: contacts and interest alone stay below a low ceiling ------------------------------


@given(histories(max_size=60, kinds=("contact", "interest")))
def test_contacts_and_interest_alone_never_lift_trust_above_the_familiarity_ceiling(
    history: list[Happening],
) -> None:
    for p in trajectory(history, as_of=at(3000)):
        assert p.trust <= P.familiarity_ceiling
        assert p.phase == "interest"


def test_years_of_contact_come_close_to_the_ceiling_but_never_pass_it() -> None:
    history = [h("e000", 0, "opened")] + [
        h(f"c{i:03d}", 7.0 * i, "contact", direction="inbound" if i % 2 else "outbound") for i in range(1, 300)
    ]
    trusts = [p.trust for p in trajectory(history)]
    assert 0.1 < max(trusts) <= P.familiarity_ceiling


@given(histories(max_size=20), st.sampled_from(("inbound", "outbound")), st.floats(0.0, 500.0))
def test_interest_rises_with_strength_and_a_contact_is_weaker_evidence_than_a_signal(
    history: list[Happening], side: str, later_days: float
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    other = "outbound_interest" if side == "inbound" else "inbound_interest"
    baseline = decay(state, moment)
    contact = step(state, Happening("z", moment, "contact", direction=side))  # type: ignore
    signals = [
        step(state, Happening("z", moment, "interest", direction=side, strength=s))  # type: ignore
        for s in (1, 2, 3)
    ]
    levels = [getattr(x, f"{side}_interest") for x in (baseline, contact, *signals)]
    assert levels == sorted(levels) and levels[-1] <= 1.0
    if levels[0] < 0.99:
        assert levels[0] < levels[1] < levels[2]  # a contact counts, but less than a signal
    for x in (contact, *signals):
        # One side's interest never moves the other side's.
        assert getattr(x, other) == getattr(baseline, other)


# Rule 2: trust grows only together, saturates, and is capped by age ---------------------------


@given(histories(max_size=40))
def test_trust_never_exceeds_one_nor_what_the_relationships_age_allows(
    history: list[Happening],
) -> None:
    for p in trajectory(history, as_of=at(4000)):
        assert 0.0 <= p.trust <= min(1.0, age_cap(T0, p.at) + ROUNDING)


FIRST_DAY_KINDS = ("contact", "interest", "joint_activity", "evaluation")


@given(histories(max_size=30, span_days=0.5, kinds=FIRST_DAY_KINDS))
def test_there_is_no_trust_at_a_first_meeting(history: list[Happening]) -> None:
    for p in trajectory(history):
        assert p.trust < 0.01


@given(histories(max_size=20), happenings(span_days=2000.0))
def test_only_joint_activities_and_good_evaluations_build_trust(history: list[Happening], happening: Happening) -> None:
    before = fold(history)
    baseline = decay(before, happening.at)  # what quiet time alone would leave
    after = step(before, happening)
    builds = happening.kind == "joint_activity" or (happening.kind == "evaluation" and (happening.outcome or 1.0) > 1.0)
    if not builds:
        assert after.org_trust <= baseline.org_trust
        assert after.personal_trust <= baseline.personal_trust
    if happening.kind in ("contact", "interest"):
        # Familiarity alone may grow, and only up to its ceiling.
        room = max(0.0, P.familiarity_ceiling - baseline.familiarity)
        assert after.trust - baseline.trust <= room + ROUNDING
    elif not builds:
        assert after.trust <= baseline.trust


@given(
    histories(max_size=15),
    st.floats(0.0, 2000.0),
    hours,
    hours,
    st.integers(2, 12),
)
def test_joint_activities_saturate_with_diminishing_increments(
    history: list[Happening], later_days: float, ours: float, theirs: float, repeats: int
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    state = decay(state, moment)
    trusts = [state.trust]
    for i in range(repeats):
        effort = {"our_hours": ours, "their_hours": theirs}
        state = step(state, Happening(f"z{i}", moment, "joint_activity", **effort))  # type: ignore
        trusts.append(state.trust)
    increments = [b - a for a, b in zip(trusts, trusts[1:], strict=False)]
    pairs = zip(increments, increments[1:], strict=False)
    assert all(later <= earlier + ROUNDING for earlier, later in pairs)
    assert trusts[-1] <= 1.0
    headroom = age_cap(T0, moment) - trusts[0]
    if headroom > 0.01:
        assert increments[0] > 0  # doing things together does build trust


@given(st.floats(0.0, 3000.0), st.floats(0.0, 3000.0), hours)
def test_the_age_cap_rises_with_age_so_the_same_work_counts_more_later(
    first_days: float, second_days: float, effort: float
) -> None:
    earlier, later = sorted((first_days, second_days))
    assert age_cap(T0, at(earlier)) <= age_cap(T0, at(later)) < 1.0

    def trust_after_one_activity(days: float) -> float:
        activity = h("e001", days, "joint_activity", our_hours=effort, their_hours=effort)
        return step(initial(h("e000", 0, "opened")), activity).trust

    assert trust_after_one_activity(earlier) <= trust_after_one_activity(later)


# Rule 3: poor outcomes lower trust, and better outcomes raise it more -----------------------


@given(histories(max_size=20), outcomes, outcomes, st.floats(0.0, 500.0))
def test_trust_after_an_evaluation_is_monotone_in_its_outcome(
    history: list[Happening], first: float, second: float, later_days: float
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    worse, better = sorted((first, second))
    after_worse = step(state, Happening("z", moment, "evaluation", outcome=worse))
    after_better = step(state, Happening("z", moment, "evaluation", outcome=better))
    assert after_worse.trust <= after_better.trust


@given(histories(max_size=20), st.integers(1, 3), st.integers(1, 3), st.floats(0.0, 500.0))
def test_a_more_excellent_outcome_raises_trust_more(
    history: list[Happening], decades: int, more: int, later_days: float
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    good = step(state, Happening("z", moment, "evaluation", outcome=10.0**decades))
    better = step(state, Happening("z", moment, "evaluation", outcome=10.0 ** (decades + more)))
    if age_cap(T0, moment) - decay(state, moment).trust > 0.01:
        assert better.trust > good.trust


@given(histories(max_size=25), grid_outcomes, st.floats(0.0, 500.0))
def test_good_outcomes_raise_trust_poor_ones_lower_it_and_adequate_ones_leave_it(
    history: list[Happening], outcome: float, later_days: float
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    baseline = decay(state, moment)
    after = step(state, Happening("z", moment, "evaluation", outcome=outcome))
    if outcome > 1:
        assert after.trust >= baseline.trust
        if age_cap(T0, moment) - baseline.trust > 0.01:
            assert after.trust > baseline.trust
    elif outcome < 1:
        assert after.trust <= baseline.trust
        if baseline.trust > 0.01:
            assert after.trust < baseline.trust
    else:
        assert abs(after.trust - baseline.trust) <= 1e-6


# Rule 4: quiet time fades attention and interest fast, trust slowly -------------------------


@given(crafted_states(), st.floats(-100.0, 3000.0))
def test_quiet_time_never_increases_anything(state: TrustState, days: float) -> None:
    quiet = decay(state, state.as_of + timedelta(days=days))
    for name in NUMBERS:
        assert getattr(quiet, name) <= getattr(state, name)
    assert quiet.trust <= state.trust
    assert quiet.as_of >= state.as_of


@given(crafted_states(low=0.01), st.floats(1.0, 2000.0))
def test_trust_fades_far_more_slowly_than_attention_and_interest(state: TrustState, days: float) -> None:
    quiet = decay(state, state.as_of + timedelta(days=days))

    def loss(name: str) -> float:
        return 1 - getattr(quiet, name) / getattr(state, name)

    trust_loss = 1 - quiet.trust / state.trust
    assert trust_loss < loss("attention")
    assert trust_loss < loss("inbound_interest")
    assert trust_loss < loss("outbound_interest")


def test_a_dormant_but_trusted_partner_stays_visible_after_a_quiet_year() -> None:
    state = fold(working_together(months=18))
    year_later = decay(state, state.as_of + timedelta(days=365))
    assert state.trust > 0.6
    assert year_later.attention < 0.001
    assert year_later.mutual_interest < 0.1 * state.mutual_interest
    assert year_later.trust > 0.75 * state.trust


@given(histories(max_size=20), happenings(span_days=3000.0))
def test_a_late_happening_is_applied_without_turning_time_back(history: list[Happening], happening: Happening) -> None:
    state = fold(history)
    after = step(state, happening)
    assert after.as_of == max(state.as_of, happening.at)
    if happening.at <= state.as_of:  # back-dated: nothing decays
        for name in ("attention", "inbound_interest", "outbound_interest"):
            assert getattr(after, name) >= getattr(state, name)
        if happening.kind == "contact":
            late_days = (state.as_of - happening.at) / timedelta(days=1)
            left = 0.5 ** (late_days / P.attention_half_life_days)  # as if it had decayed since
            assert after.attention == pytest.approx(max(state.attention, left), abs=1e-6)
            assert after.last_contact_at is not None and after.last_contact_at >= happening.at


# Rule 5: a steward change keeps the organisation's part and restarts the personal part --------


@given(histories(max_size=30), st.floats(-500.0, 500.0))
def test_a_steward_change_keeps_the_organisations_trust_and_restarts_the_personal_part(
    history: list[Happening], offset_days: float
) -> None:
    state = fold(history)
    change = Happening("z", max(T0, state.as_of + timedelta(days=offset_days)), "steward_changed")
    baseline = decay(state, change.at)
    after = step(state, change)
    assert after.org_trust == baseline.org_trust
    assert after.familiarity == baseline.familiarity
    assert after.personal_trust == 0.0
    assert math.isclose(baseline.trust - after.trust, baseline.personal_trust, abs_tol=ROUNDING)


@given(histories(max_size=30))
def test_trust_is_the_organisations_part_plus_the_personal_part(history: list[Happening]) -> None:
    for state in states_after(history):
        parts = state.familiarity + state.org_trust + state.personal_trust
        assert math.isclose(state.trust, min(1.0, parts), abs_tol=1e-9)


@given(histories(max_size=20), st.floats(30.0, 2000.0), hours, hours)
def test_working_together_feeds_both_parts_by_the_split(
    history: list[Happening], later_days: float, ours: float, theirs: float
) -> None:
    state = fold(history)
    moment = state.as_of + timedelta(days=later_days)
    baseline = decay(state, moment)
    activity = Happening("z", moment, "joint_activity", our_hours=ours, their_hours=theirs)
    after = step(state, activity)
    org_gain = after.org_trust - baseline.org_trust
    personal_gain = after.personal_trust - baseline.personal_trust
    if org_gain + personal_gain > 0.001:
        share = org_gain / (org_gain + personal_gain)
        assert math.isclose(share, P.org_share, abs_tol=0.01)


# Rule 6: commitment needs high trust, mutual interest and recent joint activity ---------------


def commitment_holds(p_trust: float, mutual: float, last_joint: datetime | None, moment: datetime) -> bool:
    return (
        p_trust >= P.commitment_trust_threshold
        and mutual >= P.commitment_interest_threshold
        and last_joint is not None
        and moment - last_joint <= timedelta(days=P.commitment_recent_activity_days)
    )


@given(crafted_states())
def test_the_phase_follows_the_rules_for_any_state(state: TrustState) -> None:
    p = point(state, ())
    committed = commitment_holds(p.trust, p.mutual_interest, state.last_joint_activity_at, p.at)
    assert (p.phase == "commitment") == committed
    if not committed:
        assert p.phase == ("trust" if p.trust >= P.trust_threshold else "interest")
    assert p.mutual_interest == min(p.inbound_interest, p.outbound_interest)


@given(histories(max_size=40, span_days=900.0))
def test_commitment_along_any_history_has_all_three_conditions(history: list[Happening]) -> None:
    states = states_after(history)
    points = trajectory(history)
    for state, p in zip(states, points, strict=True):
        if p.phase == "commitment":
            assert commitment_holds(p.trust, p.mutual_interest, state.last_joint_activity_at, p.at)


@given(
    st.sampled_from(("inbound", "outbound")),
    histories(max_size=40, span_days=900.0, kinds=EVERYTHING),
)
def test_one_sided_interest_is_never_commitment(side: str, extra: list[Happening]) -> None:
    one_sided = [replace(x, direction=side) if x.direction else x for x in extra]
    history = working_together(months=24, directions=(side,)) + one_sided[1:]
    points = trajectory(history)
    assert all(p.phase != "commitment" for p in points)


def test_working_together_with_mutual_interest_reaches_commitment_and_one_sided_does_not() -> None:
    mutual = trajectory(working_together(months=18))
    one_sided = trajectory(working_together(months=18, directions=("outbound",)))
    assert any(p.phase == "commitment" for p in mutual)
    assert max(p.trust for p in one_sided) > P.commitment_trust_threshold
    assert all(p.phase != "commitment" for p in one_sided)


def test_commitment_lapses_without_recent_joint_activity() -> None:
    def committed_state(days_since_joint: float) -> TrustState:
        return TrustState(
            opened_at=T0,
            as_of=at(1000),
            inbound_interest=0.9,
            outbound_interest=0.9,
            org_trust=0.5,
            personal_trust=0.3,
            familiarity=0.1,
            attention=1.0,
            last_contact_at=at(1000),
            last_joint_activity_at=at(1000 - days_since_joint),
        )

    assert point(committed_state(179), ()).phase == "commitment"
    assert point(committed_state(181), ()).phase == "trust"


# Replays: offline equals incremental, deterministic, round-trips -----------------------------


@given(histories(max_size=30), st.randoms(use_true_random=False))
def test_the_offline_fold_equals_the_incremental_one(history: list[Happening], rnd: object) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    ordered = sorted(history, key=lambda x: (x.at, x.event_id))
    # The projector's way: one event at a time, the state stored as JSON in between.
    state = initial(ordered[0])
    incremental = [point(state, (ordered[0].event_id,))]
    for happening in ordered[1:]:
        stored = json.loads(json.dumps(state.to_dict()))
        state = step(TrustState.from_dict(stored), happening)
        incremental.append(point(state, (happening.event_id,)))
    assert trajectory(shuffled) == incremental


@given(histories(max_size=30), st.floats(0.0, 4000.0))
def test_replays_are_byte_identical_and_rounded(history: list[Happening], as_of_days: float) -> None:
    def replay(events: list[Happening]) -> str:
        return json.dumps([p.to_dict() for p in trajectory(events, as_of=at(as_of_days))])

    first = replay(history)
    second = replay(list(reversed(history)))
    assert first == second
    stored = fold(history).to_dict()  # the projector stores the fold state too
    for name in NUMBERS:
        assert round(stored[name], P.decimals) == stored[name]
    for row in json.loads(first):
        assert row["model_version"] == TRUST_MODEL_VERSION
        for name in (*NUMBERS[:2], "mutual_interest", "trust", "attention"):
            assert round(row[name], P.decimals) == row[name]


@given(st.one_of(crafted_states(), histories(max_size=20).map(fold)))
def test_state_round_trips_through_json(state: TrustState) -> None:
    data = json.loads(json.dumps(state.to_dict()))
    assert TrustState.from_dict(data) == state
    assert TrustState.from_dict(data).to_dict() == state.to_dict()


def test_the_trajectory_ends_with_an_as_of_point_only_when_as_of_is_later() -> None:
    history = [h("e000", 0, "opened"), h("e001", 10, "contact", direction="inbound")]
    points = trajectory(history, as_of=at(40))
    assert [p.moved_by for p in points] == [("e000",), ("e001",), ()]
    assert points[-1].at == at(40)
    assert points[-1].attention == pytest.approx(0.5 ** (30 / P.attention_half_life_days), abs=1e-6)
    assert len(trajectory(history, as_of=at(5))) == 2


def test_a_trajectory_must_start_with_the_opening() -> None:
    with pytest.raises(ValueError):
        trajectory([])
    with pytest.raises(ValueError):
        trajectory([h("e000", 0, "opened"), h("e001", -1, "contact", direction="inbound")])
    with pytest.raises(ValueError):
        initial(h("e001", 0, "contact", direction="inbound"))


def test_every_constant_lives_in_one_versioned_place_that_guards_the_promises() -> None:
    assert TRUST_MODEL_VERSION == PARAMETERS.version
    assert trajectory([h("e000", 0, "opened")])[0].model_version == PARAMETERS.version
    with pytest.raises(ValueError):
        TrustParameters(version="trust-x", trust_half_life_days=PARAMETERS.interest_half_life_days)
    with pytest.raises(ValueError):
        TrustParameters(version="trust-x", familiarity_ceiling=0.5)


@pytest.mark.parametrize(
    "details",
    [
        {"kind": "contact"},
        {"kind": "interest", "direction": "inbound"},
        {"kind": "interest", "direction": "inbound", "strength": 4},
        {"kind": "joint_activity", "our_hours": -1.0},
        {"kind": "evaluation"},
        {"kind": "evaluation", "outcome": 0.0},
        {"kind": "meeting"},
    ],
)
def test_a_happening_the_model_cannot_read_is_refused(details: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Happening("e001", T0, **details)  # type: ignore[arg-type]


def test_a_happening_needs_a_timezone() -> None:
    with pytest.raises(ValueError):
        Happening("e001", datetime(2024, 1, 1), "opened")  # noqa: DTZ001
