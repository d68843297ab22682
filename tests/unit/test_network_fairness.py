"""Fairness, stalling, needs met and revised best-before dates in the network plan: each
threshold on both sides of its boundary, then a small set of networks built through the
domain's own commands and the projection's fold, whose right answers are known."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from domain.network import Network
from domain.network_health import THRESHOLDS
from domain.network_plan import NetworkFacts, NetworkHealth, assess
from projections.networks import fold_network, membership, network_facts
from tests.unit.builders import T0, meta, opened
from tests.unit.test_folds import fold, published
from tests.unit.test_network_plan import AS_OF, days_ago, verdict
from tests.unit.test_network_plan import facts as plan_facts


def facts(**overrides: Any) -> NetworkFacts:
    """The plan tests' healthy network, with four members; override what matters."""
    return plan_facts(**{"members": 4, **overrides})


def ours(hours: float) -> tuple[tuple[datetime, float], ...]:
    return ((days_ago(30), hours),)


def theirs(*hours: float, days: float = 20) -> tuple[tuple[datetime, str, float, float], ...]:
    return tuple((days_ago(days), f"m{i}", h, 1.0) for i, h in enumerate(hours))


# Unfair ---------------------------------------------------------------------------------


def test_three_times_the_average_members_effort_is_fair_more_is_not() -> None:
    assert THRESHOLDS.unfair_effort_ratio == 3.0
    members = theirs(10, 10, 10, 10)  # the average member: 10 h
    fair = assess(facts(contributions=ours(30), member_contributions=members), AS_OF)
    assert (fair.recommendation, fair.unfair, fair.effort_ratio) == ("keep", False, 3.0)
    unfair = assess(facts(contributions=ours(30.5), member_contributions=members), AS_OF)
    assert (unfair.recommendation, unfair.reason, unfair.unfair) == ("leave", "unfair", True)
    assert unfair.effort_ratio == 3.05 and unfair.members_effort_hours == 40.0
    assert "3.05 times" in unfair.explanation


def test_under_twenty_hours_of_ours_is_never_unfair() -> None:
    members = theirs(1, 1, 1, 1)
    assert verdict(facts(contributions=ours(19.5), member_contributions=members)) == ("keep", None)
    assert verdict(facts(contributions=ours(20), member_contributions=members)) == ("leave", "unfair")


def test_fairness_is_not_judged_when_members_contributions_are_not_logged() -> None:
    h = assess(facts(contributions=ours(500)), AS_OF)
    assert (h.unfair, h.effort_ratio, h.stalled) == (False, None, False)
    assert h.recommendation == "keep"  # 10 / 500 h is still 0.02 an hour


def test_members_who_log_nothing_count_and_so_do_contributors_beyond_the_member_count() -> None:
    # Four members, one logs 20 h: the average member gave 5 h, so our 20 h is 4 times.
    assert verdict(facts(contributions=ours(20), member_contributions=theirs(20))) == ("leave", "unfair")
    # One member on record but three contributed: the average is over the three.
    three = facts(members=1, contributions=ours(30), member_contributions=theirs(10, 10, 10))
    assert assess(three, AS_OF).effort_ratio == 3.0


def test_members_silent_all_window_long_while_we_carry_it_is_unfair() -> None:
    f = facts(contributions=ours(40), member_contributions=theirs(50, days=400))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.reason, h.effort_ratio) == ("leave", "unfair", None)  # infinite: not in JSON
    assert "while the members logged none" in h.explanation


def test_a_mandated_network_that_acts_unfairly_is_flagged_for_its_mandate_owner() -> None:
    f = facts(purposes=("mandated",), contributions=ours(40), member_contributions=theirs(1, 1))
    h = assess(f, AS_OF)
    assert h.recommendation != "leave" and h.unfair
    assert h.for_mandate_owner == ("unfair",)


# Stalled --------------------------------------------------------------------------------


def test_half_a_year_with_no_contribution_from_anyone_while_active_is_a_stall() -> None:
    assert THRESHOLDS.stall_after_days == 180
    quiet = facts(contributions=((days_ago(200), 5.0),), member_contributions=theirs(5, days=180))
    h = assess(quiet, AS_OF)
    assert (h.recommendation, h.reason, h.stalled) == ("leave", "stalled", True)
    assert "180 days" in h.explanation
    nearly = replace(quiet, member_contributions=theirs(5, days=179))
    assert (assess(nearly, AS_OF).stalled, verdict(nearly)) == (False, ("keep", None))
    ours_lately = replace(quiet, contributions=((days_ago(10), 5.0),))  # our own contribution counts too
    assert not assess(ours_lately, AS_OF).stalled


def test_the_quiet_is_counted_from_the_last_activation_and_only_while_active() -> None:
    quiet = facts(contributions=(), member_contributions=theirs(5, days=400))
    assert assess(quiet, AS_OF).stalled
    assert not assess(replace(quiet, activations=((days_ago(100), "a bid"),)), AS_OF).stalled
    passive = assess(replace(quiet, activity="passive"), AS_OF)
    assert (passive.stalled, passive.activity) == (False, "passive")


def test_stalling_is_not_judged_without_members_contributions_nor_before_the_first() -> None:
    silent = facts(contributions=((days_ago(700), 5.0),), evaluations=())
    assert not assess(silent, AS_OF).stalled
    later = facts(contributions=(), member_contributions=theirs(5, days=10))
    assert not assess(later, days_ago(300)).stalled  # nothing of theirs logged by then


def test_a_mandated_network_that_stalled_is_flagged_not_left() -> None:
    f = facts(purposes=("mandated",), contributions=(), member_contributions=theirs(5, days=300))
    h = assess(f, AS_OF)
    assert (h.recommendation, h.stalled, h.for_mandate_owner) == ("keep", True, ("stalled",))


# Needs and revisions --------------------------------------------------------------------


def test_the_health_tells_how_the_last_need_was_met_as_of_then() -> None:
    f = facts(needs=((days_ago(200), "not_met"), (days_ago(10), "met")))
    assert assess(f, AS_OF).last_need_outcome == "met"
    assert assess(f, days_ago(100)).last_need_outcome == "not_met"
    assert assess(f, days_ago(300)).last_need_outcome is None


def test_a_plan_as_of_a_past_date_sees_the_best_before_date_in_force_then() -> None:
    revised = ((days_ago(10), date(2025, 6, 1), date(2026, 6, 1)),)
    f = facts(best_before=date(2026, 6, 1), best_before_revisions=revised)
    now = assess(f, AS_OF)
    assert (now.best_before, now.best_before_status, now.recommendation) == (date(2026, 6, 1), "ok", "keep")
    then = assess(f, days_ago(20))
    assert (then.best_before, then.recommendation, then.reason) == (date(2025, 6, 1), "leave", "best_before_passed")


def test_members_contributions_must_be_hours_and_a_factor() -> None:
    with pytest.raises(ValueError):
        facts(member_contributions=((days_ago(1), "m", -1.0, 1.0),))
    with pytest.raises(ValueError):
        facts(member_contributions=((days_ago(1), "m", 1.0, 3.0),))
    with pytest.raises(ValueError):
        facts(needs=((datetime(2025, 1, 1), "met"),))  # naive


# The truth: networks built through the domain and the projection's fold ----------------

WHEN = T0 + timedelta(days=400)


def built(name: str, purposes: tuple[str, ...], activity: str, story: Any, best_before: date | None = None) -> Any:
    """The network's health as of ``WHEN``, from its events as the projection folds them."""
    network = Network.join(name, purposes, "member", activity, best_before, meta(0), owner_unit="r", steward="s")
    members = [opened() for _ in range(4)]
    for partner in members:
        network.add_member(partner.id, meta(1), member=partner)
    story(network, [p.id for p in members])
    doc = fold(fold_network, published(network.collect_events()))
    return network_facts(str(network.id), doc), doc, members


def fair(n: Network, m: list[Any]) -> None:
    n.log_contribution(40, meta(300))
    for member in m:
        n.log_member_contribution(member, 15, "adequate", meta(310))
    n.evaluate({"value": 10.0}, meta(320))


def carried(n: Network, m: list[Any]) -> None:
    n.log_contribution(90, meta(300))
    for member in m[:2]:
        n.log_member_contribution(member, 10, "poor", meta(310))
    n.evaluate({"value": 1.0}, meta(320))


def silent(n: Network, m: list[Any]) -> None:
    n.log_member_contribution(m[0], 8, "excellent", meta(100))
    n.log_contribution(8, meta(110))


def woken(n: Network, m: list[Any]) -> None:
    n.activate("a joint bid", meta(300), activated_by="member", by_partnership_id=m[1])
    n.log_member_contribution(m[1], 30, "excellent", meta(320))
    n.log_contribution(10, meta(330))
    n.close_activation("met", meta(380), note="funded")


def revised(n: Network, m: list[Any]) -> None:
    n.log_contribution(5, meta(120))
    n.revise_best_before(date(2025, 8, 23), "the task was extended", meta(150))


def boundary(n: Network, m: list[Any]) -> None:
    n.log_contribution(30, meta(350))
    for member in m:
        n.log_member_contribution(member, 10, "adequate", meta(360))


TRUTH: dict[str, tuple[Any, ...]] = {
    # name: (purposes, activity, story, best before, right answer as of WHEN)
    "Fair forum": (("competence",), "active", fair, None, ("keep", None, False, False, (), None)),
    "Carried club": (("influence",), "active", carried, None, ("leave", "unfair", True, False, (), None)),
    "Silent alliance": (("influence",), "active", silent, None, ("leave", "stalled", False, True, (), None)),
    "Mandated board": (
        ("mandated",),
        "active",
        carried,
        date(2024, 12, 31),
        ("keep", None, True, False, ("best_before_passed", "unfair"), None),
    ),
    "Woken consortium": (("funding",), "passive", woken, None, ("keep", None, False, False, (), "met")),
    "Unrecorded members": (("competence",), "active", lambda n, m: None, None, ("keep", None, False, False, (), None)),
    "Revised project": (
        ("shared_goal",),
        "active",
        revised,
        date(2024, 7, 19),
        ("keep", None, False, False, (), None),
    ),
    "Three times, fair": (("competence",), "active", boundary, None, ("keep", None, False, False, (), None)),
}


def answer(h: NetworkHealth) -> tuple[Any, ...]:
    return h.recommendation, h.reason, h.unfair, h.stalled, h.for_mandate_owner, h.last_need_outcome


def test_the_plan_gives_the_known_right_answer_for_every_built_network() -> None:
    wrong = {}
    for name, (purposes, activity, story, best_before, right) in TRUTH.items():
        facts_, _, _ = built(name, purposes, activity, story, best_before)
        got = answer(assess(facts_, WHEN))
        if got != right:
            wrong[name] = got
    assert wrong == {}  # every one of the eight right


def test_the_built_revision_is_seen_only_after_it_was_made() -> None:
    purposes, activity, story, best_before, _ = TRUTH["Revised project"]
    facts_, _, _ = built("Revised project", purposes, activity, story, best_before)
    before = assess(facts_, T0 + timedelta(days=140))
    assert (before.best_before, before.best_before_status, before.recommendation) == (
        date(2024, 7, 19),
        "near",
        "park",
    )
    assert assess(facts_, WHEN).best_before == date(2025, 8, 23)


def test_membership_spans_answer_which_networks_a_partnership_was_in_then() -> None:
    def story(n: Network, m: list[Any]) -> None:
        n.remove_member(m[0], meta(50))
        n.leave("other", meta(300))

    facts_, doc, members = built("Short club", ("influence",), "active", story)
    first, second = (str(p.id) for p in members[:2])
    assert membership(facts_.network_id, doc, first, T0 + timedelta(days=20)) is not None
    assert membership(facts_.network_id, doc, first, T0 + timedelta(days=60)) is None  # removed by then
    found = membership(facts_.network_id, doc, second, T0 + timedelta(days=100))
    assert found is not None and found["member_since"] == meta(1).occurred_at.isoformat()
    assert membership(facts_.network_id, doc, second, T0 + timedelta(days=300)) is None  # we had left
    assert membership(facts_.network_id, doc, second, None) is None  # and now
