"""The network plan's decision sections: decisions in force beside the recommendations,
the impact of leaving, the candidates to join, in Markdown and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.network_candidates import REQUIREMENTS, EntryRequirements
from domain.network_health import NetworkHealth
from domain.network_plan import plan_markdown
from domain.network_plan_sections import Candidate, Decision, in_force, plan_sections

AS_OF = datetime(2025, 6, 30, 12, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def health(
    nid: str, recommendation: str, purposes: tuple[str, ...] = ("influence",), effort: float = 0.0
) -> NetworkHealth:
    return NetworkHealth(
        network_id=nid, name=f"Net {nid}", purposes=purposes, role="member",
        activity="left" if recommendation == "left" else "active", effort_hours=effort, outcome=None,
        efficiency=None, best_before=None, best_before_status="none", recommendation=recommendation,  # type: ignore[arg-type]
        reason="low_efficiency" if recommendation == "leave" else None, explanation="because",
    )  # fmt: skip


def decision(nid: str, what: str, days: float, version: int, rationale: str = "why") -> Decision:
    return Decision(nid, what, rationale, "Aino", "crm", days_ago(days), version)


def entry(*levels: str) -> EntryRequirements:
    return EntryRequirements(**dict(zip(REQUIREMENTS, levels, strict=True)))


def candidate(cid: str, purposes: tuple[str, ...], ready: EntryRequirements, days: float = 30, v: int = 1) -> Candidate:
    return Candidate(cid, f"Cand {cid}", purposes, ready, None, days_ago(days), v)


ALL_MET = entry(*("met",) * 5)


# Decisions in force -----------------------------------------------------------------------


def test_the_decision_in_force_is_the_latest_at_or_before_as_of_then_the_later_recorded() -> None:
    rows = [decision("a", "keep", 30, 2), decision("a", "leave", 10, 3), decision("a", "park", 30, 4)]
    assert in_force(rows, "network_id", "decided_at", days_ago(20))["a"].decision == "park"  # same moment: v4
    assert in_force(rows, "network_id", "decided_at", days_ago(10))["a"].decision == "leave"  # at as_of exactly
    assert in_force(rows, "network_id", "decided_at", days_ago(40)) == {}
    with pytest.raises(ValueError, match="aware"):
        in_force(rows, "network_id", "decided_at", datetime(2025, 1, 1))  # noqa: DTZ001


def test_recommendation_and_decision_side_by_side_with_overrides_marked() -> None:
    healths = [health("a", "leave"), health("b", "keep"), health("c", "keep"), health("d", "left")]
    decided = [decision("a", "keep", 5, 2), decision("b", "keep", 5, 3), decision("d", "keep", 400, 4)]
    s = plan_sections(healths, [], decided, {}, AS_OF)
    sides = {c.health.network_id: (c.health.recommendation, c.course, c.overrides) for c in s.courses}
    assert sides == {
        "a": ("leave", "keep", True),  # overridden
        "b": ("keep", "keep", False),  # agreed
        "c": ("keep", "keep", False),  # undecided: the recommendation is the course
        "d": ("left", "left", False),  # left since: the old decision is history
    }
    assert s.network_fields("a")["decision"]["rationale"] == "why" and s.network_fields("c")["decision"] is None


def test_a_past_plan_shows_the_decisions_of_its_time() -> None:
    decided = [decision("a", "keep", 100, 2), decision("a", "leave", 10, 3)]
    then = plan_sections([health("a", "keep")], [], decided, {}, days_ago(50))
    now = plan_sections([health("a", "keep")], [], decided, {}, AS_OF)
    assert (then.courses[0].course, then.courses[0].overrides) == ("keep", False)
    assert (now.courses[0].course, now.courses[0].overrides) == ("leave", True)


# Impact of leaving ------------------------------------------------------------------------


def test_leaving_frees_our_effort_and_cuts_off_partnerships_that_share_no_other_network() -> None:
    healths = [health("a", "leave", effort=120.0), health("b", "keep"), health("c", "keep"), health("gone", "left")]
    members = {"a": ["p1", "p2", "p3", "p4"], "b": ["p2"], "c": ["p3"], "gone": ["p4"]}
    decided = [decision("c", "leave", 5, 2)]  # decided against the recommendation
    s = plan_sections(healths, [], decided, members, AS_OF, {"p1": "Acme Oy", "p4": "Beta Oy"})
    impacts = {i.network_id: i for i in s.leaving}
    assert set(impacts) == {"a", "c"}
    a = impacts["a"]
    # p2 and p3 share other networks with us; p4 only one we have left, so it counts.
    assert (a.basis, a.effort_hours, a.sole_members) == ("recommended", 120.0, (("p1", "Acme Oy"), ("p4", "Beta Oy")))
    assert (impacts["c"].basis, impacts["c"].sole_members) == ("decided", ())  # p3 is in "a" too


def test_a_decision_to_keep_does_not_hide_what_leaving_would_cost() -> None:
    s = plan_sections([health("a", "leave", effort=5.0)], [], [decision("a", "keep", 5, 2)], {"a": ["p1"]}, AS_OF)
    (impact,) = s.leaving
    assert impact.basis == "recommended" and impact.sole_members == (("p1", None),)
    both = plan_sections([health("a", "leave")], [], [decision("a", "leave", 5, 2)], {}, AS_OF)
    assert both.leaving[0].basis == "recommended and decided"


# To join ----------------------------------------------------------------------------------


def test_candidates_are_ranked_by_what_they_add_and_whether_we_can_get_in() -> None:
    healths = [health("a", "keep", ("influence",)), health("b", "park", ("competence",))]
    candidates = [
        candidate("served", ("influence",), ALL_MET),  # fit 0: nothing to add
        candidate("half", ("competence",), ALL_MET),  # fit 0.5 × 1
        candidate("gap", ("funding",), entry("met", "met", "partly_met", "missing", "met")),  # 1 × 0.7
        candidate("two", ("funding", "shared_goal"), entry("met", "met", "met", "met", "missing")),  # 2 × 0.8
    ]
    s = plan_sections(healths, candidates, [decision("gap", "join", 5, 9)], {}, AS_OF)
    assert [(j.candidate.candidate_id, j.score.priority) for j in s.to_join] == [
        ("two", 1.6),
        ("gap", 0.7),
        ("half", 0.5),
        ("served", 0.0),
    ]
    gap = s.to_dict()["to_join"][1]
    assert (gap["rank"], gap["missing"], gap["partly_met"]) == (2, ["own_resources"], ["reliability"])
    assert gap["decision"]["decision"] == "join"


def test_leaving_the_only_network_for_a_purpose_reopens_that_gap() -> None:
    ready = [candidate("c", ("influence",), ALL_MET)]
    kept = plan_sections([health("a", "keep", ("influence",))], ready, [], {}, AS_OF)
    left = plan_sections([health("a", "keep", ("influence",))], ready, [decision("a", "leave", 5, 2)], {}, AS_OF)
    assert (kept.to_join[0].score.purpose_fit, left.to_join[0].score.purpose_fit) == (0.0, 1.0)


def test_a_past_plan_sees_candidates_as_considered_then_and_not_those_joined_since() -> None:
    first = candidate("c", ("funding",), entry(*("missing",) * 5), days=100, v=2)
    again = candidate("c", ("funding",), ALL_MET, days=10, v=5)
    assert plan_sections([], [first, again], [], {}, days_ago(50)).to_join[0].score.readiness == 0.0
    assert plan_sections([], [first, again], [], {}, AS_OF).to_join[0].score.readiness == 1.0
    assert plan_sections([], [first, again], [], {}, days_ago(200)).to_join == ()
    joined = plan_sections([health("c", "keep", ("funding",))], [first, again], [], {}, AS_OF)  # under its id
    assert joined.to_join == ()


# Markdown and JSON ------------------------------------------------------------------------


def full_plan() -> tuple[list[NetworkHealth], Any]:
    healths = [health("a", "leave", effort=42.5), health("b", "keep")]
    decided = [decision("a", "keep", 3, 2, rationale="It funds <b>us</b> | next year")]
    cands = [candidate("x", ("funding",), entry("met", "missing", "met", "partly_met", "met"))]
    return healths, plan_sections(healths, cands, decided, {"a": ["p1"]}, AS_OF, {"p1": "[Acme](http://x)"})


def test_the_markdown_shows_decisions_impact_and_candidates_escaped() -> None:
    healths, sections = full_plan()
    text = plan_markdown(healths, AS_OF, sections=sections)
    assert text.startswith(plan_markdown(healths, AS_OF).rstrip("\n"))  # the plan before them is unchanged
    assert "## Recommendation and decision" in text and "## Impact of leaving" in text and "## To join" in text
    assert (
        "| Net a | leave (low_efficiency) | keep (overrides) | Aino | It funds &lt;b&gt;us&lt;/b&gt; \\| next year |"
        in text
    )
    assert "| Net b | keep | – | – | – | – |" in text
    assert "- **Net a** (recommended): frees 42.5 h of our effort a year (the last 365 days); " in text
    assert "with 1 partnerships: \\[Acme\\](http://x)." in text  # no link planted
    assert "| 1 | Cand x | funding | 1 | 0.7 | 0.7 | visibility | own_resources | – |" in text
    assert "<b>" not in text


def test_empty_sections_say_none() -> None:
    text = plan_markdown([], AS_OF, sections=plan_sections([], [], [], {}, AS_OF))
    assert text.count("_None._") == 5 + 3  # the five recommendation sections and the three new ones


def test_the_json_sections_are_json_safe() -> None:
    _, sections = full_plan()
    data = sections.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["leaving_impact"] == [
        {"network_id": "a", "name": "Net a", "basis": "recommended", "effort_hours": 42.5, "window_days": 365,
         "sole_members": [{"partnership_id": "p1", "partner_name": "[Acme](http://x)"}]}
    ]  # fmt: skip
    # Every network, in the plan's order, its health beside the decision in force.
    assert [(n["network_id"], n["recommendation"], n["course"], n["overrides"]) for n in data["networks"]] == [
        ("a", "leave", "keep", True),
        ("b", "keep", "keep", False),
    ]
    assert data["networks"][0]["decision"]["decider"] == "Aino" and data["networks"][1]["decision"] is None
