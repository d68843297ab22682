"""Candidate networks: readiness from the entry requirements, purpose gaps and fit from
the networks we are in, and the ranking that orders the plan's "to join"."""

from __future__ import annotations

import itertools

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.network_candidates import (
    REQUIREMENTS,
    CandidateScore,
    EntryRequirements,
    Rationale,
    Readiness,
    candidate_id_for,
    purpose_fit,
    purpose_gaps,
    ranked,
    readiness,
    score,
    unmet,
)
from domain.values import NetworkPurpose

ALL = [p.value for p in NetworkPurpose]


def entry(*levels: str) -> EntryRequirements:
    """Requirements in the source's order: competence, visibility, reliability, own
    resources, selective loyalty."""
    return EntryRequirements(**dict(zip(REQUIREMENTS, levels, strict=True)))


# Readiness ------------------------------------------------------------------------------


def test_the_five_requirements_are_those_the_source_names_in_its_order() -> None:
    assert REQUIREMENTS == ("competence", "visibility", "reliability", "own_resources", "selective_loyalty")


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        (("met",) * 5, 1.0),  # upper boundary
        (("missing",) * 5, 0.0),  # lower boundary
        (("partly_met",) * 5, 0.5),
        (("met", "met", "met", "met", "missing"), 0.8),
        (("met", "met", "met", "met", "partly_met"), 0.9),
        (("missing", "missing", "missing", "missing", "partly_met"), 0.1),
        (("met", "partly_met", "missing", "met", "partly_met"), 0.6),
    ],
)
def test_readiness_averages_met_one_partly_half_missing_zero(levels: tuple[str, ...], expected: float) -> None:
    assert readiness(entry(*levels)) == expected


def test_readiness_is_the_same_whichever_requirement_is_short() -> None:
    # No requirement weighs more than another: any one missing costs the same.
    scores = {readiness(entry(*("missing" if i == j else "met" for j in range(5)))) for i in range(5)}
    assert scores == {0.8}


def test_every_combination_of_levels_stays_within_zero_and_one_in_tenths() -> None:
    for levels in itertools.product([r.value for r in Readiness], repeat=5):
        value = readiness(entry(*levels))
        assert 0.0 <= value <= 1.0 and round(value * 10, 9) == int(round(value * 10))


def test_unmet_lists_missing_and_partly_met_requirements_in_order() -> None:
    assert unmet(entry("missing", "met", "partly_met", "missing", "met")) == (
        ("competence", "own_resources"),
        ("reliability",),
    )
    assert unmet(entry(*("met",) * 5)) == ((), ())


def test_a_requirement_must_be_met_partly_met_or_missing_and_none_may_be_left_out() -> None:
    with pytest.raises(ValidationError):
        entry("met", "met", "met", "met", "maybe")
    with pytest.raises(ValidationError):
        EntryRequirements(competence="met", visibility="met", reliability="met", own_resources="met")  # type: ignore[call-arg]


# Purpose gaps and fit -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("courses", "gap"),
    [
        ((), 1.0),  # nobody serves it
        (("keep",), 0.0),
        (("activate",), 0.0),
        (("join",), 0.0),  # a candidate joined under its own id, decided "join"
        (("park",), 0.5),  # serves it less well
        (("leave",), 1.0),  # soon nobody serves it
        (("left",), 1.0),
        (("park", "keep"), 0.0),  # the best network serving it counts
        (("leave", "park"), 0.5),
        (("leave", "left"), 1.0),
    ],
)
def test_a_purpose_gap_is_the_best_course_of_the_networks_serving_it(courses: tuple[str, ...], gap: float) -> None:
    gaps = purpose_gaps([(("funding",), course) for course in courses])
    assert gaps["funding"] == gap
    assert all(gaps[p] == 1.0 for p in ALL if p != "funding")  # other purposes unserved


def test_purpose_fit_sums_the_gaps_of_distinct_purposes() -> None:
    gaps = purpose_gaps([(("funding", "influence"), "keep"), (("competence",), "park")])
    assert purpose_fit(("funding",), gaps) == 0.0  # served well: adds nothing
    assert purpose_fit(("competence",), gaps) == 0.5
    assert purpose_fit(("shared_goal",), gaps) == 1.0
    assert purpose_fit(("shared_goal", "new_perspectives"), gaps) == 2.0  # two gaps beat one
    assert purpose_fit(("shared_goal", "funding"), gaps) == 1.0  # a served purpose costs nothing
    assert purpose_fit(("shared_goal", "shared_goal"), gaps) == 1.0  # repeats count once
    assert purpose_fit(ALL, purpose_gaps([])) == len(ALL)  # the upper boundary


# Ranking --------------------------------------------------------------------------------


def scored(name: str, fit: float, ready: float, cid: str | None = None) -> CandidateScore:
    return CandidateScore(cid or name, name, fit, ready, round(fit * ready, 6), (), ())


def test_priority_is_fit_times_readiness_so_either_at_zero_is_not_now() -> None:
    gaps = purpose_gaps([(("funding",), "keep")])
    no_reason = score("a", "A", ("funding",), entry(*("met",) * 5), gaps)
    no_way_in = score("b", "B", ("shared_goal",), entry(*("missing",) * 5), gaps)
    both = score("c", "C", ("shared_goal", "funding"), entry("met", "met", "met", "met", "partly_met"), gaps)
    assert (no_reason.priority, no_way_in.priority, both.priority) == (0.0, 0.0, 0.9)
    assert (both.purpose_fit, both.readiness, both.missing, both.partly_met) == (1.0, 0.9, (), ("selective_loyalty",))


def test_ranking_by_priority_then_fit_then_readiness_then_name_and_id() -> None:
    candidates = [
        scored("Low", 1.0, 0.2),  # priority 0.2
        scored("Readier", 1.0, 1.0),  # priority 1.0, fit 1
        scored("Fitter", 2.0, 0.5),  # priority 1.0, fit 2: why beats how easily
        scored("beta", 0.5, 0.4, "id-2"),  # priority 0.2, fit 0.5
        scored("Alpha", 0.5, 0.4, "id-9"),  # same as beta: by name, case-insensitively
        scored("Alpha", 0.5, 0.4, "id-1"),  # same name: by id
    ]
    order = [(s.name, s.candidate_id) for s in ranked(candidates)]
    assert order == [
        ("Fitter", "Fitter"),
        ("Readier", "Readier"),
        ("Low", "Low"),
        ("Alpha", "id-1"),
        ("Alpha", "id-9"),
        ("beta", "id-2"),
    ]
    assert ranked(reversed(candidates)) == ranked(candidates)


# Ids and rationales ---------------------------------------------------------------------


def test_a_derived_candidate_id_is_the_same_for_the_same_name_however_written() -> None:
    assert candidate_id_for("Nordic  AI forum") == candidate_id_for("nordic ai Forum!")
    assert candidate_id_for("Nordic AI forum") != candidate_id_for("Nordic AI forums")


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "a\x00b", "x" * 4001])
def test_a_rationale_is_required_not_blank_and_storable(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Rationale).validate_python(text)


def test_a_one_character_and_a_4000_character_rationale_are_accepted() -> None:
    assert TypeAdapter(Rationale).validate_python("x") == "x"
    assert len(TypeAdapter(Rationale).validate_python("x" * 4000)) == 4000
