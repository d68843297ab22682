"""Lifecycle flags, judged against the partnership's segment cell: each rule, its boundary on
both sides, its reasons and evidence, and the promises that hold for any history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations, product
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.lifecycle import (
    Activity,
    Evaluation,
    Flag,
    FlagName,
    Interest,
    PartnershipFacts,
    Segmentation,
    lifecycle_flags,
)
from domain.operating_model import DEFAULT_MODEL, Mode, OperatingModel
from domain.values import Importance, Role, Stage
from tests.unit.builders import maintained_facts

AS_OF = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LOW, HIGH, VERY_HIGH = Importance.LOW, Importance.HIGH, Importance.VERY_HIGH
# Versions of the base facts' events: opened 1, segmented 3, stage move 4, last contact 9.
OPENED, SEGMENTED, STAGE_MOVE, CONTACT = "p1:1", "p1:3", "p1:4", "p1:9"


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def facts(**changes: object) -> PartnershipFacts:
    return maintained_facts(AS_OF, **changes)


def cell(now: str, future: str) -> dict[str, Importance]:
    return {"segment_now": Importance(now), "segment_future": Importance(future)}


def work(our_hours: float, their_hours: float, days_ago: float = 10, version: int = 21) -> tuple[Activity, ...]:
    return (Activity(ago(days_ago), our_hours, their_hours, version),)


def judged(*outcomes: float, days_ago: float = 5) -> tuple[Evaluation, ...]:
    # Evaluations a day apart, in time order, versions 31, 32, ...
    return tuple(Evaluation(ago(days_ago + len(outcomes) - i), o, 31 + i) for i, o in enumerate(outcomes))


def flags_of(f: PartnershipFacts, model: OperatingModel = DEFAULT_MODEL, **kwargs: Any) -> list[Flag]:
    return lifecycle_flags(f, AS_OF, model, **kwargs)


def flag(flags: list[Flag], name: str) -> Flag | None:
    return next((f for f in flags if f.name == name), None)


def causes(flags: list[Flag], name: str) -> list[str]:
    found = flag(flags, name)
    return [reason.split(":")[0] for reason in found.reasons] if found else []


def has(f: PartnershipFacts, name: str, **kwargs: Any) -> bool:
    return flag(flags_of(f, **kwargs), name) is not None


def model_with(now: str, future: str, **changes: object) -> OperatingModel:
    """The default model with one cell changed: an organisation's own model."""
    key = (Importance(now), Importance(future))
    cells = tuple(c.model_copy(update=changes) if (c.now, c.future) == key else c for c in DEFAULT_MODEL.cells)
    return OperatingModel(cells=cells)


def test_a_healthy_partnership_has_no_flags() -> None:
    assert flags_of(facts(), trust_now=0.9, trust_peak=0.9, very_high_by_steward={"alice": 5}) == []


# under_served -----------------------------------------------------------------------------

CADENCES = [("++", "++", 45), ("+", "+", 90), ("-", "-", 180), ("--", "--", 365), ("--", "++", 45)]


@pytest.mark.parametrize(("now", "future", "cadence"), CADENCES)
@pytest.mark.parametrize("extra_days", [-1, 0, 1])
def test_quiet_longer_than_the_cells_cadence_is_under_served(
    now: str, future: str, cadence: int, extra_days: int
) -> None:
    f = facts(**cell(now, future), last_contact_at=ago(cadence + extra_days))
    assert has(f, "under_served") is (extra_days > 0)


def test_under_served_says_how_long_against_which_cadence_with_the_last_contact_as_evidence() -> None:
    found = flag(flags_of(facts(last_contact_at=ago(200))), "under_served")
    assert found == Flag(
        "under_served", ("no contact for 200 days; its cell expects contact every 180 days",), (CONTACT,)
    )


@pytest.mark.parametrize(("opened_days_ago", "flagged"), [(180, False), (181, True)])
def test_a_never_contacted_partnership_is_quiet_since_it_was_opened(opened_days_ago: int, flagged: bool) -> None:
    f = facts(last_contact_at=None, last_contact_version=0, opened_at=ago(opened_days_ago))
    found = flag(flags_of(f), "under_served")
    assert (found is not None) is flagged
    assert found is None or found.evidence == (OPENED,)


@pytest.mark.parametrize(("now", "future", "flagged"), [("++", "++", True), ("-", "-", False), ("+", "+", True)])
def test_the_same_silence_is_judged_by_the_cell(now: str, future: str, flagged: bool) -> None:
    assert has(facts(**cell(now, future), last_contact_at=ago(100)), "under_served") is flagged


@pytest.mark.parametrize(("quiet", "flagged"), [(180, False), (181, True)])
def test_an_unsegmented_partnership_is_expected_to_be_heard_from_twice_a_year(quiet: int, flagged: bool) -> None:
    f = facts(segment_now=None, segment_future=None, last_contact_at=ago(quiet))
    assert has(f, "under_served") is flagged


def test_an_organisations_own_cadence_replaces_the_default() -> None:
    f = facts(last_contact_at=ago(31))
    assert not has(f, "under_served")
    assert has(f, "under_served", model=model_with("-", "-", cadence_days=30))
    assert not has(f, "under_served", model=model_with("+", "+", cadence_days=30))  # another cell


# over_served ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "future", "our_hours", "flagged"),
    [
        ("-", "-", 40, False),
        ("-", "-", 41, True),
        ("++", "++", 200, False),
        ("++", "++", 201, True),
        ("--", "++", 105, False),
        ("--", "++", 106, True),
    ],
)
def test_more_of_our_hours_than_the_cells_budget_is_over_served(
    now: str, future: str, our_hours: int, flagged: bool
) -> None:
    assert has(facts(**cell(now, future), activities=work(our_hours, our_hours)), "over_served") is flagged


@pytest.mark.parametrize(("our_hours", "flagged"), [(19, False), (19.9, False), (20, True)])
def test_over_service_is_judged_only_from_twenty_hours_even_on_a_smaller_budget(
    our_hours: float, flagged: bool
) -> None:
    # '--'/'--' has a budget of 10 h: 19 h is beyond it, but too little to judge.
    assert has(facts(**cell("--", "--"), activities=work(our_hours, our_hours)), "over_served") is flagged


def test_over_service_adds_up_our_hours_in_the_last_year_and_names_those_activities() -> None:
    activities = work(30, 30, 10, 21) + work(11, 0, 364, 22) + work(500, 0, 365, 23)
    found = flag(flags_of(facts(activities=activities)), "over_served")
    assert found == Flag(
        "over_served", ("we put in 41 h in 365 days; its cell's budget is 40 h a year",), ("p1:21", "p1:22")
    )
    assert not has(facts(activities=activities[:1] + activities[2:]), "over_served")


def test_their_hours_and_future_hours_are_not_our_effort() -> None:
    assert not has(facts(activities=work(10, 500) + work(100, 0, days_ago=-1, version=22)), "over_served")


@pytest.mark.parametrize(("now", "future", "flagged"), [("-", "-", True), ("+", "++", False), ("++", "++", False)])
def test_the_same_effort_is_judged_by_the_cell(now: str, future: str, flagged: bool) -> None:
    assert has(facts(**cell(now, future), activities=work(150, 150)), "over_served") is flagged


def test_an_organisations_own_budget_replaces_the_default() -> None:
    f = facts(activities=work(30, 30))
    assert not has(f, "over_served")
    assert has(f, "over_served", model=model_with("-", "-", yearly_effort_hours=25.0))


# mode_mismatch ----------------------------------------------------------------------------

MANAGED = {("--", "++"), ("-", "++"), ("+", "++"), ("++", "++"), ("++", "+")}  # the default's


@pytest.mark.parametrize(("now", "future"), [(n.value, f.value) for n, f in product(Importance, Importance)])
@pytest.mark.parametrize("stage", [Stage.MAINTAIN, Stage.MANAGE])
def test_a_stage_other_than_the_cells_mode_is_a_mode_mismatch(now: str, future: str, stage: Stage) -> None:
    found = flag(flags_of(facts(**cell(now, future), stage=stage)), "mode_mismatch")
    assert (found is not None) is ((stage == Stage.MANAGE) != ((now, future) in MANAGED))
    if found is not None:
        expected = "manage" if stage == Stage.MAINTAIN else "maintain"
        assert found.reasons == (f"at stage {stage.value}, but its cell ({now}/{future}) calls for {expected}",)
        assert set(found.evidence) == {STAGE_MOVE, SEGMENTED}


@pytest.mark.parametrize("stage", [Stage.ANALYSE, Stage.PRIORITISE])
def test_before_a_mode_is_chosen_there_is_no_mismatch(stage: Stage) -> None:
    assert not has(facts(**cell("++", "++"), stage=stage), "mode_mismatch")


def test_an_unsegmented_partnership_has_no_mode_to_mismatch() -> None:
    assert not has(facts(segment_now=None, segment_future=None, stage=Stage.MANAGE), "mode_mismatch")


def test_an_organisations_own_mode_replaces_the_default() -> None:
    assert has(facts(), "mode_mismatch", model=model_with("-", "-", mode=Mode.MANAGE))


# rising -----------------------------------------------------------------------------------

# The three kinds of evidence, each built to count on its own: the steward moved the
# segmentation up ('-'/'-' to '-'/'+'), inbound interest grew (2 in the last 180 days,
# none before), joint hours grew (10 h before, 25 h now; at least a quarter of a budget).
MOVED_UP: dict[str, Any] = dict(previous_segment=Segmentation(LOW, LOW, 2), segment_future=HIGH)
INTEREST: dict[str, Any] = dict(interests=(Interest(ago(100), True, 41), Interest(ago(20), True, 42)))
JOINT: dict[str, Any] = dict(activities=work(5, 5, 200, 21) + work(10, 15, 30, 22))
SIGNALS = {
    "segmentation moved up": (MOVED_UP, {"p1:2", SEGMENTED}),
    "inbound interest grew": (INTEREST, {"p1:41", "p1:42"}),
    "joint work grew": (JOINT, {"p1:22"}),
}


@pytest.mark.parametrize("kind", list(SIGNALS))
def test_one_kind_of_evidence_alone_is_not_rising(kind: str) -> None:
    assert not has(facts(**SIGNALS[kind][0]), "rising")


@pytest.mark.parametrize("kinds", [*combinations(SIGNALS, 2), tuple(SIGNALS)])
def test_two_kinds_of_evidence_or_more_are_rising_each_with_its_reason_and_events(kinds: tuple[str, ...]) -> None:
    found = flag(flags_of(facts(**{k: v for kind in kinds for k, v in SIGNALS[kind][0].items()})), "rising")
    assert found is not None
    assert [next(k for k in SIGNALS if r.startswith(k)) for r in found.reasons] == list(kinds)
    assert set(found.evidence) == set().union(*(SIGNALS[kind][1] for kind in kinds))
    assert ("segmentation moved up from -/- to -/+" in found.reasons) is ("segmentation moved up" in kinds)


def test_a_very_high_partner_now_is_never_rising() -> None:
    everything = dict(INTEREST, **JOINT, previous_segment=Segmentation(HIGH, HIGH, 2), **cell("++", "++"))
    assert not has(facts(**everything), "rising")


@pytest.mark.parametrize(
    ("before", "after"),
    [(("+", "+"), ("-", "-")), (("-", "+"), ("+", "-")), (("-", "+"), ("-", "+")), (("+", "++"), ("+", "+"))],
)
def test_a_segmentation_moving_down_sideways_or_not_at_all_is_not_moving_up(
    before: tuple[str, str], after: tuple[str, str]
) -> None:
    previous = Segmentation(Importance(before[0]), Importance(before[1]), 2)
    assert not has(facts(**INTEREST, previous_segment=previous, **cell(*after)), "rising")


def test_the_stewards_guess_alone_is_not_rising_nor_is_trust_maturing() -> None:
    f = facts(**cell("-", "++"), activities=work(10, 10, 200, 21) + work(10, 10, 30, 22))
    assert not has(f, "rising", trust_now=0.9, trust_peak=0.9)


@pytest.mark.parametrize(("recent", "earlier", "flagged"), [(2, 1, True), (3, 2, True), (2, 2, False), (1, 0, False)])
def test_inbound_interest_grows_with_at_least_two_signals_and_more_than_before(
    recent: int, earlier: int, flagged: bool
) -> None:
    interests = [Interest(ago(10 + i), True, 41 + i) for i in range(recent)]
    interests += [Interest(ago(190 + i), True, 51 + i) for i in range(earlier)]
    assert has(facts(**MOVED_UP, interests=tuple(interests)), "rising") is flagged


def test_outbound_interest_and_interest_from_before_the_windows_do_not_count() -> None:
    outbound = (Interest(ago(20), False, 41), Interest(ago(10), False, 42))
    assert not has(facts(**MOVED_UP, interests=outbound), "rising")
    # 180 days ago is the earlier window (2 then, 2 now); just after it, the recent one (3, 1).
    both = (Interest(ago(10), True, 41), Interest(ago(20), True, 42), Interest(ago(300), True, 43))
    assert not has(facts(**MOVED_UP, interests=(*both, Interest(ago(180), True, 44))), "rising")
    assert has(facts(**MOVED_UP, interests=(*both, Interest(ago(179.9), True, 44))), "rising")


@pytest.mark.parametrize(
    ("before", "now", "flagged"), [(5, 10, True), (0, 10, True), (6, 11, False), (4, 9, False), (0, 9, False)]
)
def test_joint_work_doubles_to_at_least_a_quarter_of_the_cells_budget(before: int, now: int, flagged: bool) -> None:
    # '-'/'-': a quarter of 40 h is 10 h. Their hours are joint work too.
    activities = work(before, 0, 200, 21) + work(0, now, 30, 22)
    assert has(facts(**INTEREST, activities=activities), "rising") is flagged


@pytest.mark.parametrize(("now", "future", "flagged"), [("--", "--", True), ("-", "-", True), ("+", "+", False)])
def test_the_same_joint_work_is_judged_by_the_cell(now: str, future: str, flagged: bool) -> None:
    assert has(facts(**INTEREST, **cell(now, future), activities=work(6, 6)), "rising") is flagged


# dormant_but_trusted ----------------------------------------------------------------------


def test_a_once_trusted_partner_gone_quiet_is_dormant_but_trusted() -> None:
    found = flag(flags_of(facts(last_contact_at=ago(200)), trust_now=0.3, trust_peak=0.8), "dormant_but_trusted")
    assert found == Flag(
        "dormant_but_trusted", ("trust reached 0.80 and is 0.30 now; no contact for 200 days",), (CONTACT,)
    )


@pytest.mark.parametrize(("peak", "flagged"), [(0.5, True), (0.49, False), (None, False)])
def test_trust_must_once_have_reached_a_half(peak: float | None, flagged: bool) -> None:
    assert has(facts(last_contact_at=ago(900)), "dormant_but_trusted", trust_now=0.25, trust_peak=peak) is flagged


@pytest.mark.parametrize(("now", "flagged"), [(0.2, True), (0.19, False), (0.0, False), (None, False)])
def test_it_stays_dormant_but_trusted_until_trust_decays_below_the_floor(now: float | None, flagged: bool) -> None:
    assert has(facts(last_contact_at=ago(900)), "dormant_but_trusted", trust_now=now, trust_peak=0.7) is flagged


@pytest.mark.parametrize(
    ("now", "future", "quiet", "flagged"),
    [("-", "-", 180, False), ("-", "-", 181, True), ("++", "++", 100, True), ("-", "-", 100, False)],
)
def test_quiet_means_longer_than_the_cells_cadence(now: str, future: str, quiet: int, flagged: bool) -> None:
    f = facts(**cell(now, future), last_contact_at=ago(quiet))
    assert has(f, "dormant_but_trusted", trust_now=0.4, trust_peak=0.9) is flagged


# wind_down_candidate ----------------------------------------------------------------------


@pytest.mark.parametrize(("our_hours", "flagged"), [(80, False), (81, True)])
def test_an_adequate_outcome_for_more_than_twice_the_budget_is_low_efficiency(our_hours: int, flagged: bool) -> None:
    flags = flags_of(facts(activities=work(our_hours, our_hours), evaluations=judged(1.0)))
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


@pytest.mark.parametrize(("now", "future", "flagged"), [("-", "-", True), ("++", "++", False)])
def test_efficiency_is_judged_against_the_cells_budget(now: str, future: str, flagged: bool) -> None:
    flags = flags_of(facts(**cell(now, future), activities=work(150, 150), evaluations=judged(1.0)))
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


@pytest.mark.parametrize(("our_hours", "flagged"), [(19, False), (19.9, False), (20, True)])
def test_efficiency_is_judged_only_from_twenty_hours_of_our_effort(our_hours: float, flagged: bool) -> None:
    flags = flags_of(facts(**cell("--", "--"), activities=work(our_hours, our_hours), evaluations=judged(0.1)))
    assert ("low_efficiency" in causes(flags, "wind_down_candidate")) is flagged


def test_efficiency_uses_the_geometric_mean_of_the_outcomes() -> None:
    # 0.1, 1, 10: geometric mean 1 (low for 81 h); arithmetic mean 3.7 would pass.
    flags = flags_of(facts(activities=work(81, 81), evaluations=judged(0.1, 1.0, 10.0)))
    assert causes(flags, "wind_down_candidate") == ["low_efficiency"]


@pytest.mark.parametrize(("days_ago", "flagged"), [(364, True), (365, False)])
def test_only_the_last_years_evaluations_and_effort_count(days_ago: int, flagged: bool) -> None:
    late_outcome = flags_of(facts(activities=work(81, 81), evaluations=judged(1.0, days_ago=days_ago - 1)))
    late_effort = flags_of(facts(activities=work(81, 81, days_ago), evaluations=judged(1.0)))
    assert ("low_efficiency" in causes(late_outcome, "wind_down_candidate")) is flagged
    assert ("low_efficiency" in causes(late_effort, "wind_down_candidate")) is flagged


def test_low_efficiency_names_the_years_activities_and_evaluations() -> None:
    f = facts(activities=work(81, 81) + work(5, 5, 400, 22), evaluations=(Evaluation(ago(400), 0.1, 30), *judged(1.0)))
    found = flag(flags_of(f), "wind_down_candidate")
    assert found is not None and found.evidence == ("p1:21", "p1:31")
    assert found.reasons == ("low_efficiency: outcome 1 for 81 h in 365 days, against a budget of 40 h a year",)


def test_without_an_evaluation_efficiency_is_not_judged() -> None:
    assert not has(facts(activities=work(500, 500)), "wind_down_candidate")


UNFAIR_CASES = [
    ((), 30, 10, True),
    ((), 29, 10, False),
    (("researcher",), 30, 10, True),
    (("researcher",), 10, 30, True),
    (("researcher",), 29, 10, False),
    (("funder",), 50, 10, False),
    (("funder",), 10, 50, False),
    (("funder",), 99, 10, False),
    (("funder",), 100, 10, True),
    (("funder",), 10, 100, True),
    (("researcher", "funder"), 50, 10, False),
    (("supplier",), 50, 10, True),
    (("supplier",), 49, 10, False),
    (("customer",), 90, 10, False),
    (("authority",), 90, 10, False),
    (("user",), 30, 10, True),
]


@pytest.mark.parametrize(("roles", "ours", "theirs", "flagged"), UNFAIR_CASES)
def test_unfairness_is_judged_against_what_is_normal_for_the_partners_roles(
    roles: tuple[str, ...], ours: int, theirs: int, flagged: bool
) -> None:
    assert set(roles) <= {r.value for r in Role}
    flags = flags_of(facts(roles=roles, **cell("++", "++"), activities=work(ours, theirs)))
    assert causes(flags, "wind_down_candidate") == (["unfair"] if flagged else [])


@pytest.mark.parametrize(("ours", "theirs", "flagged"), [(15, 4, False), (15, 5, True), (20, 0, True), (0, 19, False)])
def test_fairness_is_judged_only_from_twenty_hours_in_total(ours: int, theirs: int, flagged: bool) -> None:
    assert (causes(flags_of(facts(activities=work(ours, theirs))), "wind_down_candidate") == ["unfair"]) is flagged


def test_unfairness_names_the_years_activities_and_the_ratio_applied() -> None:
    f = facts(roles=("funder",), activities=work(60, 0, 10, 21) + work(40, 10, 100, 22) + work(0, 500, 400, 23))
    found = flag(flags_of(f), "wind_down_candidate")
    assert found == Flag(
        "wind_down_candidate", ("unfair: we put in 100 h, they 10 h (over ×10 for funder)",), ("p1:21", "p1:22")
    )


@pytest.mark.parametrize(
    ("first", "second", "flagged"),
    [(0.1, 10.0, True), (10.0, 0.1, True), (0.01, 1.0, True), (1.0, 10.0, False), (0.1, 1.0, False)],
)
def test_consecutive_evaluations_a_hundredfold_apart_are_an_ambition_mismatch(
    first: float, second: float, flagged: bool
) -> None:
    found = flag(flags_of(facts(evaluations=judged(first, second))), "wind_down_candidate")
    assert (found is not None) is flagged
    assert found is None or (
        causes([found], found.name) == ["ambition_mismatch"] and found.evidence == ("p1:31", "p1:32")
    )


def test_every_cause_is_its_own_reason_in_a_fixed_order() -> None:
    f = facts(activities=work(90, 10), evaluations=judged(0.1, 10.0))
    assert causes(flags_of(f), "wind_down_candidate") == ["low_efficiency", "unfair", "ambition_mismatch"]


# needs_handover, steward_overloaded -------------------------------------------------------


@pytest.mark.parametrize(
    ("last_contact", "flagged"), [(ago(60), True), (None, True), (ago(30), False), (ago(10), False)]
)
def test_no_contact_since_the_steward_left_needs_a_handover(last_contact: datetime | None, flagged: bool) -> None:
    found = flag(flags_of(facts(steward_left_at=ago(30), last_contact_at=last_contact)), "needs_handover")
    assert (found is not None) is flagged
    assert found is None or found.reasons == (f"steward left on {ago(30).date().isoformat()}; no contact since",)


@pytest.mark.parametrize(("held", "flagged"), [(5, False), (6, True), (20, True)])
def test_a_steward_with_more_than_five_very_high_partnerships_is_overloaded(held: int, flagged: bool) -> None:
    flags = flags_of(facts(), very_high_by_steward={"alice": held, "bob": 50})
    assert [f.name for f in flags] == (["steward_overloaded"] if flagged else [])
    assert not flagged or flags[0].reasons == (f"alice looks after {held} '++' partnerships (more than 5)",)


def test_a_handover_is_only_about_stewardship_not_workload() -> None:
    flags = flags_of(facts(steward_left_at=ago(30), last_contact_at=ago(60)), very_high_by_steward={"alice": 9})
    assert [f.name for f in flags] == ["needs_handover", "steward_overloaded"]
    assert len(flags[0].reasons) == 1


# Stages -----------------------------------------------------------------------------------

TROUBLED = facts(
    **cell("-", "-"),
    stage=Stage.MANAGE,
    activities=work(90, 10, 10, 21) + work(5, 5, 200, 22),
    evaluations=judged(0.1, 10.0),
    previous_segment=Segmentation(Importance.VERY_LOW, LOW, 2),
    interests=(Interest(ago(20), True, 41), Interest(ago(10), True, 42)),
    last_contact_at=ago(300),
    steward_left_at=ago(200),
)
EVERYTHING: dict[str, Any] = dict(trust_now=0.3, trust_peak=0.9, very_high_by_steward={"alice": 9})


def test_a_troubled_partnership_raises_every_flag_in_a_fixed_order() -> None:
    assert [f.name for f in flags_of(TROUBLED, **EVERYTHING)] == list(get_args(FlagName))


def test_a_partnership_winding_down_is_judged_only_on_its_stewardship() -> None:
    names = [f.name for f in flags_of(replace(TROUBLED, stage=Stage.WIND_DOWN), **EVERYTHING)]
    assert names == ["needs_handover", "steward_overloaded"]


def test_an_ended_partnership_has_no_flags() -> None:
    assert flags_of(replace(TROUBLED, stage=Stage.ENDED), **EVERYTHING) == []


@pytest.mark.parametrize("stage", [Stage.ANALYSE, Stage.PRIORITISE])
def test_before_a_mode_is_chosen_every_flag_but_the_mismatch_applies(stage: Stage) -> None:
    names = [f.name for f in flags_of(replace(TROUBLED, stage=stage), **EVERYTHING)]
    assert names == [n for n in get_args(FlagName) if n != "mode_mismatch"]


# Properties -------------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2022, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
hours = st.integers(0, 300).map(float)
versions = st.integers(0, 99)
importances = st.none() | st.sampled_from(list(Importance))
trusts = st.none() | st.floats(min_value=0.0, max_value=1.0)


@st.composite
def any_facts(draw: st.DrawFn) -> PartnershipFacts:
    previous = draw(
        st.none()
        | st.builds(Segmentation, st.sampled_from(list(Importance)), st.sampled_from(list(Importance)), versions)
    )
    return PartnershipFacts(
        partnership_id=draw(st.sampled_from(("p", "p1", "org-7/p"))),
        partner_name="P",
        owner_unit="u",
        steward=draw(st.sampled_from(("alice", "bob"))),
        stage=draw(st.sampled_from(list(Stage))),
        stage_since=draw(moments),
        opened_at=draw(moments),
        last_contact_at=draw(st.none() | moments),
        segment_now=draw(importances),
        segment_future=draw(importances),
        activities=tuple(draw(st.lists(st.builds(Activity, moments, hours, hours, versions), max_size=8))),
        evaluations=tuple(
            sorted(
                draw(
                    st.lists(
                        st.builds(Evaluation, moments, st.sampled_from((0.01, 0.1, 1.0, 10.0)), versions), max_size=6
                    )
                ),
                key=lambda e: e.at,
            )
        ),
        steward_left_at=draw(st.none() | moments),
        roles=tuple(draw(st.lists(st.sampled_from([r.value for r in Role]), max_size=3))),
        interests=tuple(draw(st.lists(st.builds(Interest, moments, st.booleans(), versions), max_size=6))),
        segment_version=draw(versions),
        segment_at=draw(st.none() | moments),
        previous_segment=previous,
        stage_version=draw(versions),
        last_contact_version=draw(versions),
    )


loads = st.dictionaries(st.sampled_from(("alice", "bob", "carol")), st.integers(0, 10))


@given(any_facts(), moments, trusts, trusts, loads)
def test_flags_are_known_unique_reasoned_and_their_evidence_is_the_partnerships_own(
    f: PartnershipFacts, as_of: datetime, now: float | None, peak: float | None, load: dict[str, int]
) -> None:
    flags = lifecycle_flags(f, as_of, DEFAULT_MODEL, now, peak, load)
    names = [x.name for x in flags]
    assert len(names) == len(set(names)) and set(names) <= set(get_args(FlagName))
    assert all(x.reasons and all(isinstance(r, str) and r for r in x.reasons) for x in flags)
    for evidence_id in (e for x in flags for e in x.evidence):
        owner, _, version = evidence_id.rpartition(":")
        assert owner == f.partnership_id and version.isdigit() and int(version) > 0
    if f.stage == Stage.ENDED:
        assert flags == []
    if f.stage == Stage.WIND_DOWN:
        assert set(names) <= {"needs_handover", "steward_overloaded"}
    if f.segment_now == Importance.VERY_HIGH:
        assert "rising" not in names


@given(any_facts(), moments, trusts, trusts, loads, st.randoms(use_true_random=False))
def test_flags_are_deterministic_whatever_the_order_of_activities_and_interests(
    f: PartnershipFacts, as_of: datetime, now: float | None, peak: float | None, load: dict[str, int], rnd: Any
) -> None:
    flags = lifecycle_flags(f, as_of, DEFAULT_MODEL, now, peak, load)
    assert lifecycle_flags(f, as_of, DEFAULT_MODEL, now, peak, load) == flags
    activities, interests = list(f.activities), list(f.interests)
    rnd.shuffle(activities)
    rnd.shuffle(interests)
    shuffled = replace(f, activities=tuple(activities), interests=tuple(interests))
    # The same flags, reasons and evidence; over_served lists its evidence in the order the
    # activities came (the others sort theirs), so evidence is compared as a sorted list.
    assert same_evidence(lifecycle_flags(shuffled, as_of, DEFAULT_MODEL, now, peak, load)) == same_evidence(flags)


def same_evidence(flags: list[Flag]) -> list[Flag]:
    return [replace(x, evidence=tuple(sorted(x.evidence))) for x in flags]


def test_a_segmentation_moved_up_counts_as_evidence_only_within_the_last_year() -> None:
    lately = facts(**MOVED_UP, **INTEREST, segment_at=ago(364))
    long_ago = facts(**MOVED_UP, **INTEREST, segment_at=ago(365))  # the window is (as_of − 365 d, as_of]
    assert has(lately, "rising") and not has(long_ago, "rising")


def test_stewardship_flags_name_their_events() -> None:
    left = facts(steward_left_at=ago(50), steward_left_version=7, last_contact_at=ago(60))
    assert flag(flags_of(left), "needs_handover").evidence == ("p1:7",)  # type: ignore[union-attr]
    busy = {"very_high_by_steward": {"alice": 6}}
    plain = flag(flags_of(facts(tenure_version=5), **busy), "steward_overloaded")
    top = flag(
        flags_of(
            facts(tenure_version=5, segment_now=Importance.VERY_HIGH, segment_future=Importance.VERY_HIGH), **busy
        ),
        "steward_overloaded",
    )
    assert plain is not None and plain.evidence == ("p1:5",)  # theirs since version 5
    assert top is not None and top.evidence == ("p1:5", "p1:3")  # ...and '++' since version 3


def test_a_one_off_customer_is_served_lopsidedly_without_being_unfair() -> None:
    lopsided = dict(activities=work(45, 5, 10, 21))  # nine times their hours
    assert causes(flags_of(facts(roles=("one_off_customer",), **lopsided)), "wind_down_candidate") == []
    assert causes(flags_of(facts(roles=("user",), **lopsided)), "wind_down_candidate") == ["unfair"]
