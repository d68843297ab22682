"""Lifecycle flags: each rule, its boundary, and the promises that hold for any history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.lifecycle import Activity, Flag, PartnershipFacts, lifecycle_flags
from domain.values import Importance, Stage, outcome_of

AS_OF = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
KNOWN_FLAGS = {"wind_down_candidate", "rising", "dormant_but_trusted", "stale", "needs_handover"}


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def facts(**changes: object) -> PartnershipFacts:
    # A healthy partnership: recently contacted, no effort, no evaluations, no segment.
    base = PartnershipFacts(
        partnership_id="p1",
        partner_name="Acme Oy",
        owner_unit="research",
        steward="alice",
        stage=Stage.MANAGE,
        stage_since=ago(300),
        opened_at=ago(400),
        last_contact_at=ago(1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def work(our_hours: float, their_hours: float, days_ago: float = 10) -> tuple[Activity, ...]:
    return (Activity(ago(days_ago), our_hours, their_hours),)


def flag(flags: list[Flag], name: str) -> Flag | None:
    return next((f for f in flags if f.name == name), None)


def causes(flags: list[Flag], name: str) -> list[str]:
    found = flag(flags, name)
    return [reason.split(":")[0] for reason in found.reasons] if found else []


# wind_down_candidate: low_efficiency ------------------------------------------------------


def test_much_effort_for_an_adequate_outcome_is_a_wind_down_candidate_for_low_efficiency() -> None:
    flags = lifecycle_flags(facts(activities=work(60, 60), evaluations=((ago(5), 1.0),)), AS_OF)
    assert causes(flags, "wind_down_candidate") == ["low_efficiency"]


@pytest.mark.parametrize(("our_hours", "flagged"), [(50, False), (51, True)])
def test_an_outcome_of_one_is_worth_at_most_fifty_hours_a_year(our_hours: float, flagged: bool) -> None:
    flags = lifecycle_flags(facts(activities=work(our_hours, our_hours), evaluations=((ago(5), 1.0),)), AS_OF)
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


@pytest.mark.parametrize(("our_hours", "flagged"), [(19.9, False), (20, True)])
def test_efficiency_is_judged_only_from_twenty_hours_of_our_effort(our_hours: float, flagged: bool) -> None:
    flags = lifecycle_flags(facts(activities=work(our_hours, our_hours), evaluations=((ago(5), 0.1),)), AS_OF)
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


def test_efficiency_uses_the_geometric_mean_of_the_outcomes() -> None:
    # 0.1, 1, 10: geometric mean 1 (1/60 h is too little), arithmetic mean 3.7 (would pass).
    evaluations = ((ago(30), 0.1), (ago(20), 1.0), (ago(10), 10.0))
    flags = lifecycle_flags(facts(activities=work(60, 60), evaluations=evaluations), AS_OF)
    assert causes(flags, "wind_down_candidate") == ["low_efficiency"]


def test_efficiency_is_not_judged_without_an_evaluation() -> None:
    assert lifecycle_flags(facts(activities=work(500, 500)), AS_OF) == []


@pytest.mark.parametrize(("days_ago", "flagged"), [(364, True), (365, False)])
def test_effort_outside_the_last_365_days_is_ignored(days_ago: float, flagged: bool) -> None:
    activities = work(60, 60, days_ago=days_ago)
    flags = lifecycle_flags(facts(activities=activities, evaluations=((ago(5), 1.0),)), AS_OF)
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


@pytest.mark.parametrize(("days_ago", "flagged"), [(364, True), (365, False)])
def test_evaluations_outside_the_last_365_days_are_ignored(days_ago: float, flagged: bool) -> None:
    evaluations = ((ago(days_ago), 0.1),)
    flags = lifecycle_flags(facts(activities=work(60, 60), evaluations=evaluations), AS_OF)
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


def test_a_poor_old_evaluation_does_not_drag_down_a_good_recent_one() -> None:
    evaluations = ((ago(500), 0.1), (ago(10), 10.0))  # 10/60 h is efficient; with 0.1 it would not be
    flags = lifecycle_flags(facts(activities=work(60, 60), evaluations=evaluations), AS_OF)
    assert flags == []


def test_effort_after_the_as_of_date_is_not_counted_yet() -> None:
    activities = work(60, 60, days_ago=-10)
    assert lifecycle_flags(facts(activities=activities, evaluations=((ago(5), 1.0),)), AS_OF) == []


# wind_down_candidate: unfair --------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [(40, 10), (10, 40), (25, 0), (0, 25), (16, 4)])
def test_one_side_putting_in_three_times_the_hours_or_more_is_unfair(ours: float, theirs: float) -> None:
    assert causes(lifecycle_flags(facts(activities=work(ours, theirs)), AS_OF), "wind_down_candidate") == ["unfair"]


@pytest.mark.parametrize(("ours", "theirs"), [(30, 10), (10, 30), (15, 5)])
def test_exactly_three_times_the_hours_is_already_unfair(ours: float, theirs: float) -> None:
    assert causes(lifecycle_flags(facts(activities=work(ours, theirs)), AS_OF), "wind_down_candidate") == ["unfair"]


@pytest.mark.parametrize(("ours", "theirs"), [(29, 10), (10, 29), (20, 20)])
def test_less_than_three_times_the_hours_either_way_is_fair(ours: float, theirs: float) -> None:
    assert lifecycle_flags(facts(activities=work(ours, theirs)), AS_OF) == []


@pytest.mark.parametrize(("ours", "theirs"), [(15, 4), (4, 15), (19.9, 0)])
def test_fairness_is_not_judged_below_twenty_hours_in_total(ours: float, theirs: float) -> None:
    assert lifecycle_flags(facts(activities=work(ours, theirs)), AS_OF) == []


def test_fairness_adds_up_all_activities_in_the_window() -> None:
    activities = (Activity(ago(100), 10, 10), Activity(ago(50), 30, 0), Activity(ago(400), 0, 200))
    assert causes(lifecycle_flags(facts(activities=activities), AS_OF), "wind_down_candidate") == ["unfair"]


# wind_down_candidate: ambition_mismatch ---------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(0.1, 10.0), (10.0, 0.1), (0.01, 1.0), (1.0, 100.0)])
def test_consecutive_evaluations_a_hundredfold_apart_are_an_ambition_mismatch(first: float, second: float) -> None:
    flags = lifecycle_flags(facts(evaluations=((ago(100), first), (ago(50), second))), AS_OF)
    assert causes(flags, "wind_down_candidate") == ["ambition_mismatch"]


@pytest.mark.parametrize(("first", "second"), [(1.0, 10.0), (10.0, 1.0), (0.1, 1.0), (10.0, 10.0)])
def test_evaluations_less_than_a_hundredfold_apart_are_no_mismatch(first: float, second: float) -> None:
    assert lifecycle_flags(facts(evaluations=((ago(100), first), (ago(50), second))), AS_OF) == []


def test_mismatch_compares_neighbours_in_time_not_in_recording_order() -> None:
    # In time: 0.1, 1, 10 (steps of ten). In the order given: 10 then 0.1 would be a jump.
    evaluations = ((ago(50), 10.0), (ago(100), 0.1), (ago(75), 1.0))
    assert lifecycle_flags(facts(evaluations=evaluations), AS_OF) == []


def test_a_jump_from_an_evaluation_outside_the_window_is_no_mismatch() -> None:
    evaluations = ((ago(400), 0.1), (ago(50), 10.0))
    assert lifecycle_flags(facts(evaluations=evaluations), AS_OF) == []


def test_every_jump_is_counted_in_the_mismatch_reason() -> None:
    evaluations = ((ago(90), 0.1), (ago(60), 10.0), (ago(30), 0.1))
    (reason,) = flag(lifecycle_flags(facts(evaluations=evaluations), AS_OF), "wind_down_candidate").reasons  # type: ignore[union-attr]
    assert reason.startswith("ambition_mismatch") and "2 time(s)" in reason


# rising -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "future"), [("--", "-"), ("-", "+"), ("+", "++"), ("--", "++")])
def test_a_future_importance_above_the_current_one_is_rising(now: str, future: str) -> None:
    flags = lifecycle_flags(facts(segment_now=Importance(now), segment_future=Importance(future)), AS_OF)
    found = flag(flags, "rising")
    assert found is not None and found.reasons[0].startswith("future importance")


@pytest.mark.parametrize(("now", "future"), [("+", "+"), ("++", "+"), ("-", "--"), ("++", "--")])
def test_a_future_importance_at_or_below_the_current_one_is_not_rising(now: str, future: str) -> None:
    flags = lifecycle_flags(
        facts(segment_now=Importance(now), segment_future=Importance(future)),
        AS_OF,
        trust_now=0.4,
        trust_before=0.4,
    )
    assert flag(flags, "rising") is None


def test_trust_rising_by_a_tenth_is_rising() -> None:
    found = flag(lifecycle_flags(facts(), AS_OF, trust_now=0.5, trust_before=0.4), "rising")
    assert found is not None and found.reasons[0].startswith("trust rose")


@pytest.mark.parametrize(("before", "now"), [(0.50, 0.55), (0.30, 0.35), (0.40, 0.45), (0.65, 0.70)])
def test_trust_rising_by_exactly_five_hundredths_is_rising(before: float, now: float) -> None:
    assert flag(lifecycle_flags(facts(), AS_OF, trust_now=now, trust_before=before), "rising") is not None


@pytest.mark.parametrize(("before", "now"), [(0.5, 0.5), (0.5, 0.54), (0.6, 0.3), (None, 0.9), (0.1, None)])
def test_flat_falling_slightly_rising_or_unknown_trust_is_not_rising(before: float | None, now: float | None) -> None:
    assert lifecycle_flags(facts(), AS_OF, trust_now=now, trust_before=before) == []


# dormant_but_trusted and stale ------------------------------------------------------------


def test_a_trusted_partner_quiet_for_half_a_year_is_dormant_but_trusted_and_stale() -> None:
    flags = lifecycle_flags(facts(last_contact_at=ago(180)), AS_OF, trust_now=0.5)
    assert [f.name for f in flags] == ["dormant_but_trusted", "stale"]
    assert flags[0].reasons[0].startswith("no contact for 180 days")


def test_a_trusted_partner_contacted_within_half_a_year_is_neither_dormant_nor_stale() -> None:
    assert lifecycle_flags(facts(last_contact_at=ago(179.9)), AS_OF, trust_now=0.9) == []


@pytest.mark.parametrize("trust", [0.49, 0.0, None])
def test_a_quiet_partner_with_low_trust_is_stale_but_not_dormant_but_trusted(trust: float | None) -> None:
    flags = lifecycle_flags(facts(last_contact_at=ago(400)), AS_OF, trust_now=trust)
    assert [f.name for f in flags] == ["stale"]


@pytest.mark.parametrize(("days_quiet", "stale"), [(179.9, False), (180, True), (1000, True)])
def test_no_contact_for_180_days_is_stale(days_quiet: float, stale: bool) -> None:
    flags = lifecycle_flags(facts(last_contact_at=ago(days_quiet)), AS_OF)
    assert (flag(flags, "stale") is not None) is stale


@pytest.mark.parametrize(("opened_days_ago", "stale"), [(179.9, False), (180, True)])
def test_a_never_contacted_partnership_is_quiet_since_it_was_opened(opened_days_ago: float, stale: bool) -> None:
    flags = lifecycle_flags(facts(last_contact_at=None, opened_at=ago(opened_days_ago)), AS_OF)
    assert (flag(flags, "stale") is not None) is stale


# needs_handover ---------------------------------------------------------------------------


@pytest.mark.parametrize("last_contact", [ago(60), None])
def test_no_contact_since_the_steward_left_needs_a_handover(last_contact: datetime | None) -> None:
    flags = lifecycle_flags(facts(steward_left_at=ago(30), last_contact_at=last_contact, opened_at=ago(100)), AS_OF)
    (reason,) = flag(flags, "needs_handover").reasons  # type: ignore[union-attr]
    assert reason.startswith("steward left on")


def test_a_contact_after_the_steward_left_clears_the_handover() -> None:
    assert lifecycle_flags(facts(steward_left_at=ago(30), last_contact_at=ago(10)), AS_OF) == []


@pytest.mark.parametrize(("held", "flagged"), [(5, False), (6, True), (20, True)])
def test_a_steward_with_more_than_five_very_high_partnerships_needs_a_handover(held: int, flagged: bool) -> None:
    flags = lifecycle_flags(facts(), AS_OF, very_high_by_steward={"alice": held})
    assert (flag(flags, "needs_handover") is not None) is flagged


def test_only_the_partnerships_own_stewards_load_counts() -> None:
    assert lifecycle_flags(facts(), AS_OF, very_high_by_steward={"bob": 50}) == []


def test_both_handover_reasons_are_given_together() -> None:
    flags = lifecycle_flags(
        facts(steward_left_at=ago(30), last_contact_at=ago(60)), AS_OF, very_high_by_steward={"alice": 7}
    )
    reasons = flag(flags, "needs_handover").reasons  # type: ignore[union-attr]
    assert reasons[0].startswith("steward left on") and reasons[1].startswith("alice looks after 7 '++'")


# ended, reasons ---------------------------------------------------------------------------

TROUBLED = facts(
    activities=work(60, 10),
    evaluations=((ago(90), 0.1), (ago(30), 10.0)),
    segment_now=Importance.LOW,
    segment_future=Importance.VERY_HIGH,
    last_contact_at=ago(300),
    steward_left_at=ago(200),
)


def test_an_ended_partnership_has_no_flags() -> None:
    everything = dict(trust_now=0.9, trust_before=0.1, very_high_by_steward={"alice": 9})
    assert len(lifecycle_flags(TROUBLED, AS_OF, **everything)) == 5  # type: ignore[arg-type]
    assert lifecycle_flags(replace(TROUBLED, stage=Stage.ENDED), AS_OF, **everything) == []  # type: ignore[arg-type]


def test_wind_down_reasons_name_each_cause_first() -> None:
    reasons = flag(lifecycle_flags(TROUBLED, AS_OF), "wind_down_candidate").reasons  # type: ignore[union-attr]
    assert [r.split(":")[0] for r in reasons] == ["low_efficiency", "unfair", "ambition_mismatch"]
    assert all(isinstance(r, str) and len(r.split(":")[1].strip()) > 0 for r in reasons)


# Property ---------------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2022, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
hours = st.floats(min_value=0.0, max_value=500.0)
grid_outcomes = st.lists(st.sampled_from((0.1, 1.0, 10.0)), min_size=1, max_size=4).map(
    lambda factors: outcome_of({str(i): f for i, f in enumerate(factors)})
)
trusts = st.none() | st.floats(min_value=0.0, max_value=1.0)
importances = st.none() | st.sampled_from(list(Importance))


@st.composite
def any_facts(draw: st.DrawFn) -> PartnershipFacts:
    return PartnershipFacts(
        partnership_id="p",
        partner_name="P",
        owner_unit="u",
        steward=draw(st.sampled_from(("alice", "bob"))),
        stage=draw(st.sampled_from(list(Stage))),
        stage_since=draw(moments),
        opened_at=draw(moments),
        last_contact_at=draw(st.none() | moments),
        segment_now=draw(importances),
        segment_future=draw(importances),
        activities=tuple(draw(st.lists(st.builds(Activity, moments, hours, hours), max_size=8))),
        evaluations=tuple(draw(st.lists(st.tuples(moments, grid_outcomes), max_size=8))),
        steward_left_at=draw(st.none() | moments),
    )


@given(
    any_facts(),
    moments,
    trusts,
    trusts,
    st.dictionaries(st.sampled_from(("alice", "bob", "carol")), st.integers(0, 10)),
)
def test_flags_never_fail_are_unique_known_and_staleness_only_grows_with_silence(
    f: PartnershipFacts,
    as_of: datetime,
    now: float | None,
    before: float | None,
    load: dict[str, int],
) -> None:
    flags = lifecycle_flags(f, as_of, now, before, load)
    names = [x.name for x in flags]
    assert len(names) == len(set(names)) and set(names) <= KNOWN_FLAGS
    assert all(x.reasons and all(isinstance(r, str) and r for r in x.reasons) for x in flags)
    a_year_later = lifecycle_flags(f, as_of + timedelta(days=365), now, before, load)
    if "stale" in names:
        assert "stale" in [x.name for x in a_year_later]
