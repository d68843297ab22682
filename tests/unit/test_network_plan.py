"""The network plan: each rule, the as-of view, the measures and the Markdown document."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.network_health import best_before_as_of
from domain.network_plan import (
    THRESHOLDS,
    NetworkFacts,
    NetworkHealth,
    assess,
    network_plan,
    plan_markdown,
)

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def facts(**overrides: Any) -> NetworkFacts:
    """An active, evaluated, healthy network joined two years ago; override what matters."""
    base: dict[str, Any] = {
        "network_id": "n-1",
        "name": "Health data forum",
        "purposes": ("information_sharing",),
        "role": "member",
        "activity": "active",
        "joined_at": days_ago(730),
        "best_before": None,
        "left_at": None,
        "left_reason": None,
        "members": 5,
        "contributions": ((days_ago(100), 10.0),),
        "evaluations": ((days_ago(50), 10.0),),
        "activations": (),
        "last_event_at": days_ago(50),
    }
    base.update(overrides)
    return NetworkFacts(**base)


def verdict(f: NetworkFacts, as_of: datetime = AS_OF) -> tuple[str, str | None]:
    h = assess(f, as_of)
    return h.recommendation, h.reason


def spent(hours: float, days: float = 30) -> tuple[tuple[datetime, float], ...]:
    return ((days_ago(days), hours),)


def rated(*outcomes: float) -> tuple[tuple[datetime, float], ...]:
    # One evaluation a week, oldest first, all within the window.
    return tuple((days_ago(200 - 7 * i), o) for i, o in enumerate(outcomes))


# 1. left -------------------------------------------------------------------------------


def test_a_network_we_left_is_left_with_the_recorded_reason_even_past_best_before() -> None:
    f = facts(left_at=days_ago(10), left_reason="unfair", best_before=date(2020, 1, 1))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason, h.activity) == ("left", "unfair", "left")
    assert "unfair" in h.explanation


def test_leaving_after_as_of_is_not_seen_by_an_earlier_plan() -> None:
    f = facts(left_at=days_ago(10), left_reason="unfair")
    assert verdict(f, days_ago(20)) == ("keep", None)


# 2. best before ------------------------------------------------------------------------


def test_a_network_past_its_best_before_date_should_be_left() -> None:
    f = facts(best_before=date(2025, 6, 29))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason, h.best_before_status) == ("leave", "best_before_passed", "passed")


def test_the_best_before_day_itself_has_not_passed_yet() -> None:
    h = assess(facts(best_before=AS_OF.date()), AS_OF)
    assert h.best_before_status == "near"
    assert h.recommendation == "park"


def test_a_mandated_network_past_its_best_before_date_is_for_its_mandate_owner_not_left() -> None:
    f = facts(purposes=("mandated", "influence"), best_before=date(2025, 6, 29))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason, h.best_before_status) == ("keep", None, "passed")
    assert h.for_mandate_owner == ("best_before_passed",)
    assert h.mandate_note is not None and "mandate owner" in h.mandate_note
    assert assess(replace(f, purposes=("influence",)), AS_OF).for_mandate_owner == ()


# 3. ambition mismatch ------------------------------------------------------------------


def test_recurring_jumps_in_quality_mean_an_ambition_mismatch() -> None:
    f = facts(contributions=spent(10), evaluations=rated(0.1, 10, 0.1, 10))
    assert verdict(f) == ("leave", "ambition_mismatch")


def test_a_single_jump_or_one_step_changes_are_not_an_ambition_mismatch() -> None:
    assert verdict(facts(evaluations=rated(0.1, 10, 10))) == ("keep", None)
    assert verdict(facts(evaluations=rated(0.1, 1, 10, 1, 0.1, 1))) != ("leave", "ambition_mismatch")


def test_a_mandated_network_whose_ambitions_do_not_match_is_flagged_not_left() -> None:
    f = facts(purposes=("mandated",), contributions=spent(10), evaluations=rated(0.1, 10, 0.1, 10))
    h = assess(f, AS_OF)
    assert h.recommendation != "leave"
    assert h.for_mandate_owner == ("ambition_mismatch",)
    both = assess(replace(f, best_before=date(2025, 1, 1)), AS_OF)
    assert both.for_mandate_owner == ("best_before_passed", "ambition_mismatch")


def test_jumps_before_the_window_do_not_count() -> None:
    old = tuple((days_ago(400 + i), o) for i, o in enumerate((0.1, 10, 0.1, 10)))
    assert verdict(facts(evaluations=old + rated(10))) == ("keep", None)


# 4. low efficiency ---------------------------------------------------------------------


def test_too_much_effort_for_what_it_gives_means_leave_for_low_efficiency() -> None:
    f = facts(contributions=spent(101), evaluations=rated(1))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason) == ("leave", "low_efficiency")
    assert h.efficiency == pytest.approx(1 / 101, abs=1e-6)


def test_an_adequate_outcome_is_worth_up_to_a_hundred_hours_a_year() -> None:
    assert THRESHOLDS.min_efficiency == 0.01
    assert verdict(facts(contributions=spent(100), evaluations=rated(1))) == ("keep", None)


def test_a_below_adequate_outcome_with_substantial_effort_is_low_efficiency() -> None:
    # Geometric mean of 0.1 and 1 is 0.316: per hour above 0.01 at 20 h, yet still poor.
    f = facts(contributions=spent(20), evaluations=rated(0.1, 1))
    assert verdict(f) == ("leave", "low_efficiency")


def test_trivial_effort_is_not_judged_for_efficiency() -> None:
    f = facts(contributions=spent(19), evaluations=rated(0.1))
    assert verdict(f) == ("keep", None)


def test_a_mandated_network_with_low_efficiency_is_parked_not_left() -> None:
    f = facts(purposes=("mandated", "influence"), contributions=spent(300), evaluations=rated(0.1))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason) == ("park", None)
    assert "mandated" in h.explanation


# 5. passive and dormant ----------------------------------------------------------------


def test_a_dormant_funding_network_that_last_proved_excellent_should_be_activated() -> None:
    f = facts(
        purposes=("funding", "competence"),
        activity="passive",
        contributions=((days_ago(500), 5.0),),
        evaluations=((days_ago(480), 10.0),),
    )
    h = assess(f, AS_OF)
    assert (h.activity, h.recommendation) == ("dormant", "activate")
    assert h.outcome is None  # the excellent evaluation is older than the window


def test_a_passive_network_without_funding_or_shared_goal_is_kept_warm() -> None:
    f = facts(activity="passive", evaluations=rated(10), contributions=())
    assert verdict(f) == ("keep", None)
    assert "warm" in assess(f, AS_OF).explanation


def test_a_passive_shared_goal_network_whose_last_outcome_was_adequate_is_kept() -> None:
    f = facts(purposes=("shared_goal",), activity="passive", evaluations=rated(10, 1), contributions=())
    assert verdict(f) == ("keep", None)
    assert verdict(replace(f, evaluations=rated(1, 10))) == ("activate", None)


def test_dormant_means_passive_with_no_sign_of_life_for_a_year() -> None:
    quiet = facts(activity="passive", contributions=((days_ago(365), 1.0),), evaluations=())
    assert assess(quiet, AS_OF).activity == "dormant"
    assert assess(replace(quiet, activations=((days_ago(364), "bid"),)), AS_OF).activity == "passive"
    assert assess(replace(quiet, joined_at=days_ago(30)), AS_OF).activity == "passive"
    assert assess(replace(quiet, activity="active"), AS_OF).activity == "active"


# 6. active, near best before / unevaluated ---------------------------------------------


def test_an_active_network_near_its_best_before_date_is_parked() -> None:
    f = facts(best_before=(AS_OF + timedelta(days=90)).date())
    h = assess(f, AS_OF)
    assert (h.recommendation, h.best_before_status) == ("park", "near")
    later = facts(best_before=(AS_OF + timedelta(days=91)).date())
    assert (assess(later, AS_OF).recommendation, assess(later, AS_OF).best_before_status) == ("keep", "ok")


def test_active_effort_without_an_evaluation_is_kept_with_a_request_to_evaluate() -> None:
    h = assess(facts(contributions=spent(40), evaluations=()), AS_OF)
    assert (h.recommendation, h.outcome, h.efficiency) == ("keep", None, None)
    assert "evaluate" in h.explanation


def test_a_healthy_active_network_is_kept() -> None:
    h = assess(facts(), AS_OF)
    assert (h.recommendation, h.reason, h.activity) == ("keep", None, "active")


# Measures ------------------------------------------------------------------------------


def test_outcome_is_the_geometric_mean_of_the_window_evaluations() -> None:
    assert assess(facts(evaluations=rated(0.1, 10)), AS_OF).outcome == 1.0
    assert assess(facts(evaluations=rated(10, 10, 0.1)), AS_OF).outcome == pytest.approx(2.154435)
    outside = ((days_ago(366), 0.1),)
    assert assess(facts(evaluations=outside + rated(10)), AS_OF).outcome == 10.0


def test_efficiency_is_window_outcome_per_window_effort_hour() -> None:
    f = facts(contributions=((days_ago(400), 1000.0), (days_ago(10), 30.0), (days_ago(5), 10.0)))
    h = assess(f, AS_OF)
    assert (h.effort_hours, h.outcome, h.efficiency) == (40.0, 10.0, 0.25)


def test_a_plan_as_of_a_past_date_ignores_later_facts() -> None:
    f = facts(
        activity="active",
        contributions=((days_ago(300), 10.0), (days_ago(10), 500.0)),
        evaluations=((days_ago(290), 10.0), (days_ago(9), 0.1)),
        activations=((days_ago(8), "joint bid"),),
    )
    now = assess(f, AS_OF)
    assert (now.recommendation, now.reason) == ("leave", "low_efficiency")
    past = assess(f, days_ago(100))
    # Activated after the past date, so it was passive then; later hours and scores unseen.
    assert (past.effort_hours, past.outcome, past.activity) == (10.0, 10.0, "passive")
    assert past.recommendation == "keep"


def test_a_parking_after_as_of_means_it_was_active_then() -> None:
    f = facts(activity="passive", parkings=(days_ago(5),))
    assert assess(f, days_ago(10)).activity == "active"
    assert assess(f, AS_OF).activity == "passive"


# The plan ------------------------------------------------------------------------------


def plan_of_every_kind() -> list[NetworkFacts]:
    return [
        facts(network_id="k", name="Kept forum"),
        facts(network_id="l", name="Left club", left_at=days_ago(3), left_reason="unfair"),
        facts(network_id="b", name="Bygone project", best_before=date(2024, 1, 1)),
        facts(network_id="a", name="Alpha leave", contributions=spent(500), evaluations=rated(0.1)),
        facts(network_id="p", name="Parked consortium", best_before=(AS_OF + timedelta(days=10)).date()),
        facts(network_id="x", name="Funding pool", purposes=("funding",), activity="passive"),
        facts(network_id="f", name="Future network", joined_at=AS_OF + timedelta(days=1)),
    ]


def test_the_plan_lists_leave_activate_park_keep_left_then_by_name() -> None:
    plan = network_plan(plan_of_every_kind(), AS_OF)
    assert [(h.recommendation, h.name) for h in plan] == [
        ("leave", "Alpha leave"),
        ("leave", "Bygone project"),
        ("activate", "Funding pool"),
        ("park", "Parked consortium"),
        ("keep", "Kept forum"),
        ("left", "Left club"),
    ]


def test_the_markdown_has_the_table_every_name_and_every_recommendation() -> None:
    plan = network_plan(plan_of_every_kind(), AS_OF)
    text = plan_markdown(plan, AS_OF)
    assert text.startswith("# Network plan — as of 2025-06-30\n")
    assert "**Summary:** 6 networks — leave 2, activate 1, park 1, keep 1, left 1." in text
    assert "| Network | Purposes | Role | Activity | Effort h (12 m) | Outcome | Efficiency" in text
    for heading in ("Networks we are in and why", "To leave", "To activate", "To park", "To keep", "Left"):
        assert f"\n## {heading}\n" in text
    for h in plan:
        assert h.name in text
    assert "| Kept forum | information_sharing | member | active | 10 | 10 | 1 | – | keep |" in text
    assert "leave (best_before_passed)" in text
    assert "- **Left club** — `unfair`" in text
    assert "Future network" not in text


def test_the_markdown_is_the_same_whatever_the_input_order() -> None:
    plan = network_plan(plan_of_every_kind(), AS_OF)
    assert plan_markdown(plan, AS_OF) == plan_markdown(list(reversed(plan)), AS_OF)
    assert "_None._" in plan_markdown(plan[:1], AS_OF)


def test_the_markdown_escapes_html_and_links_in_names_and_free_text() -> None:
    hostile = network_plan(
        [
            facts(network_id="s", name="<script>alert(1)</script> & co"),
            facts(network_id="t", name="Forum [click](javascript:alert(1))", left_at=days_ago(3), left_reason="other"),
        ],
        AS_OF,
    )
    hostile = [replace(hostile[0], explanation='<img src=x onerror="alert(2)">\nnext|line'), hostile[1]]
    text = plan_markdown(hostile, AS_OF)
    assert "<" not in text and ">" not in text  # no tag survives, in the table or the sections
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert '&lt;img src=x onerror="alert(2)"&gt; next\\|line' in text  # one row, one cell
    assert "Forum \\[click\\](javascript:alert(1))" in text and "[click]" not in text
    assert text.count("\n") == plan_markdown(network_plan(plan_of_every_kind()[:2], AS_OF), AS_OF).count("\n")


def test_health_is_json_safe() -> None:
    h = assess(facts(best_before=date(2026, 1, 1)), AS_OF)
    data = json.loads(json.dumps(h.to_dict()))
    assert data["best_before"] == "2026-01-01"
    assert data["purposes"] == ["information_sharing"]
    assert set(data) == set(NetworkHealth.__dataclass_fields__)


def test_impossible_facts_and_a_naive_as_of_are_refused() -> None:
    with pytest.raises(ValueError):
        facts(contributions=spent(-1))
    with pytest.raises(ValueError):
        facts(evaluations=rated(0))
    with pytest.raises(ValueError):
        facts(joined_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError):
        assess(facts(), datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        assess(facts(), days_ago(731))  # not yet joined


# Properties ----------------------------------------------------------------------------

OUTCOMES = st.sampled_from([0.001, 0.01, 0.1, 1.0, 10.0, 100.0])
OFFSETS = st.integers(min_value=-800, max_value=800)  # days relative to AS_OF
DATES = st.none() | OFFSETS.map(lambda d: (AS_OF + timedelta(days=d)).date())


def moment(offset: int) -> datetime:
    return AS_OF + timedelta(days=offset)


@st.composite
def any_facts(draw: st.DrawFn, network_id: str = "n") -> NetworkFacts:
    left_at = draw(st.none() | OFFSETS.map(moment))
    return NetworkFacts(
        network_id=network_id,
        name=draw(st.text(min_size=1, max_size=12)),
        purposes=tuple(
            draw(
                st.sets(
                    st.sampled_from(
                        [
                            "competitiveness",
                            "shared_goal",
                            "mandated",
                            "influence",
                            "competence",
                            "information_sharing",
                            "funding",
                            "new_perspectives",
                        ]
                    ),
                    max_size=3,
                )
            )
        ),
        role=draw(st.sampled_from(["leader", "member", "observer"])),
        activity=draw(st.sampled_from(["active", "passive"])),
        joined_at=moment(draw(st.integers(-1000, 0))),
        best_before=draw(st.none() | OFFSETS.map(lambda d: (AS_OF + timedelta(days=d)).date())),
        left_at=left_at,
        left_reason=draw(st.sampled_from(["unfair", "other", "mandate_ended"])) if left_at else None,
        members=draw(st.integers(0, 50)),
        contributions=tuple(
            draw(st.lists(st.tuples(OFFSETS.map(moment), st.floats(0, 2000, allow_nan=False)), max_size=6))
        ),
        evaluations=tuple(draw(st.lists(st.tuples(OFFSETS.map(moment), OUTCOMES), max_size=6))),
        activations=tuple(draw(st.lists(st.tuples(OFFSETS.map(moment), st.just("need")), max_size=3))),
        last_event_at=AS_OF,
        parkings=tuple(draw(st.lists(OFFSETS.map(moment), max_size=2))),
        member_contributions=tuple(
            draw(
                st.lists(
                    st.tuples(
                        OFFSETS.map(moment),
                        st.sampled_from(["m1", "m2", "m3"]),
                        st.floats(0, 500, allow_nan=False),
                        st.sampled_from([0.1, 1.0, 10.0]),
                    ),
                    max_size=5,
                )
            )
        ),
        needs=tuple(draw(st.lists(st.tuples(OFFSETS.map(moment), st.sampled_from(["met", "not_met"])), max_size=2))),
        best_before_revisions=tuple(draw(st.lists(st.tuples(OFFSETS.map(moment), DATES, DATES), max_size=2))),
    )


@settings(max_examples=300)
@given(any_facts(), st.integers(min_value=0, max_value=400))
def test_assess_never_crashes_and_respects_left_and_best_before(f: NetworkFacts, back: int) -> None:
    as_of = max(AS_OF - timedelta(days=back), f.joined_at)
    h = assess(f, as_of)
    has_left = f.left_at is not None and f.left_at <= as_of
    assert (h.recommendation == "left") == has_left == (h.activity == "left")
    best_before = best_before_as_of(f, as_of)
    assert h.best_before == best_before
    if has_left:
        assert h.reason == f.left_reason
    elif best_before is not None and as_of.date() > best_before and "mandated" in f.purposes:
        assert "best_before_passed" in h.for_mandate_owner and h.mandate_note
    elif best_before is not None and as_of.date() > best_before:
        assert (h.recommendation, h.reason) == ("leave", "best_before_passed")
    if "mandated" in f.purposes:
        assert h.recommendation != "leave"  # not ours to leave, whatever the reason
    else:
        assert h.for_mandate_owner == () and h.mandate_note is None
    assert h.explanation.endswith(".")
    json.dumps(h.to_dict())


@given(
    st.lists(st.integers(0, 10**6), max_size=6, unique=True).flatmap(
        lambda ids: st.tuples(*(any_facts(str(i)) for i in ids))
    )
)
def test_the_plan_is_sorted_and_does_not_depend_on_input_order(all_facts: tuple[NetworkFacts, ...]) -> None:
    plan = network_plan(all_facts, AS_OF)
    order = ["leave", "activate", "park", "keep", "left"]
    keys = [(order.index(h.recommendation), h.name, h.network_id) for h in plan]
    assert keys == sorted(keys)
    assert network_plan(reversed(all_facts), AS_OF) == plan
    assert plan_markdown(plan, AS_OF) == plan_markdown(plan[::-1], AS_OF)
