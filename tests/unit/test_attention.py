"""Attention this week: every rule on both sides of each of its boundaries, what an item
stands for (and so leaves out), and the ranking."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.attention import (
    KIND_ORDER,
    THRESHOLDS,
    AttentionFacts,
    AttentionItem,
    Catalogue,
    LastEvaluation,
    attention,
    needs,
    ranked,
)
from domain.lifecycle import Evaluation, Flag, PartnershipFacts, cell_of, lifecycle_flags
from domain.operating_model import DEFAULT_MODEL
from domain.organisation import ORGANISATION_ID
from domain.values import Importance, Stage
from tests.unit.builders import maintained_facts

AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LOW, VERY_HIGH = Importance.LOW, Importance.VERY_HIGH
CADENCE = 180  # the '-'/'-' cell's, in the default model
WEEK = THRESHOLDS.horizon_days


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def partnership(**changes: Any) -> PartnershipFacts:
    """A '-'/'-' partnership (contact every 180 days), maintained, contacted yesterday;
    opened 400 days ago (version 1), segmented 100 days ago (3), moved to maintain (4),
    contact (9)."""
    return maintained_facts(AS_OF, **{"segment_at": ago(100), **changes})


def attending(
    facts: PartnershipFacts | None = None,
    *,
    segmentations: int = 2,
    evaluated: LastEvaluation | None = LastEvaluation(ago(10), 7, None),
    catalogue: Catalogue | None = None,
    trust: tuple[float, float] | None = None,
    flags: tuple[Flag, ...] | None = None,
) -> AttentionFacts:
    """What attention reads of a partnership: by default the healthy one above, segmented
    twice, evaluated ten days ago, no catalogue; its flags as the lifecycle rules raise
    them (``trust``: now and peak)."""
    facts = facts or partnership()
    now, peak = trust or (None, None)
    if flags is None:
        flags = tuple(lifecycle_flags(facts, AS_OF, DEFAULT_MODEL, now, peak))
    return AttentionFacts(facts, flags, cell_of(facts, DEFAULT_MODEL), segmentations, evaluated, catalogue)


def items(a: AttentionFacts) -> list[tuple[str, date, bool]]:
    return [(i.kind, i.due, i.overdue) for i in needs(a, AS_OF)]


def only(a: AttentionFacts) -> AttentionItem:
    (item,) = needs(a, AS_OF)
    return item


def test_a_partnership_served_as_its_cell_asks_needs_nothing() -> None:
    assert needs(attending(), AS_OF) == []


# --- contact_due -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet_for", "expected"),
    [
        (CADENCE - WEEK - 1 / 86400, []),  # due a second after the week ends: not yet
        (CADENCE - WEEK, [("contact_due", (AS_OF + timedelta(days=WEEK)).date(), False)]),  # due this week
        (CADENCE, [("contact_due", AS_OF.date(), False)]),  # due right now: not yet overdue
        (CADENCE + 1 / 86400, [("contact_due", AS_OF.date(), True)]),  # a second past: overdue
    ],
)
def test_contact_is_due_by_the_cells_cadence_within_the_week_and_overdue_once_past(
    quiet_for: float, expected: list[Any]
) -> None:
    assert items(attending(partnership(last_contact_at=ago(quiet_for)))) == expected


def test_an_overdue_contact_is_exactly_an_under_served_partnership() -> None:
    for quiet_for in (CADENCE, CADENCE + 1 / 86400):
        a = attending(partnership(last_contact_at=ago(quiet_for)))
        under_served = any(f.name == "under_served" for f in a.flags)
        assert only(a).overdue == under_served


def test_contact_is_judged_by_the_partnerships_own_cell_and_since_opening_if_never_contacted() -> None:
    # '++'/'++' expects contact every 45 days: 40 days quiet is due this week.
    very_high = partnership(segment_now=VERY_HIGH, segment_future=VERY_HIGH, last_contact_at=ago(40))
    item = only(attending(very_high))
    assert (item.kind, item.due, item.evidence) == ("contact_due", (AS_OF + timedelta(days=5)).date(), ("p1:9",))
    assert "every 45 days" in item.reason and "++/++" in item.reason
    never = only(attending(partnership(last_contact_at=None, last_contact_version=0, opened_at=ago(200))))
    assert never.evidence == ("p1:1",) and never.overdue and "no contact since opening" in never.reason


# --- evaluation_due ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened_days_ago", "expected"),
    [
        (83 - 1 / 86400, []),  # 90 days open a second after the week ends
        (83, [("evaluation_due", (AS_OF + timedelta(days=7)).date(), False)]),
        (90, [("evaluation_due", AS_OF.date(), False)]),
        (90 + 1 / 86400, [("evaluation_due", AS_OF.date(), True)]),
    ],
)
def test_a_first_evaluation_is_due_90_days_after_opening(opened_days_ago: float, expected: list[Any]) -> None:
    facts = partnership(opened_at=ago(opened_days_ago), stage_since=ago(60), segment_at=ago(50))
    assert items(attending(facts, evaluated=None)) == expected


@pytest.mark.parametrize(
    ("evaluated_days_ago", "expected"),
    [
        (358 - 1 / 86400, []),
        (358, [("evaluation_due", (AS_OF + timedelta(days=7)).date(), False)]),
        (365, [("evaluation_due", AS_OF.date(), False)]),
        (365 + 1 / 86400, [("evaluation_due", AS_OF.date(), True)]),
    ],
)
def test_an_evaluation_holds_for_a_year(evaluated_days_ago: float, expected: list[Any]) -> None:
    last = LastEvaluation(ago(evaluated_days_ago), 7, None)
    assert items(attending(evaluated=last)) == expected


@pytest.mark.parametrize(
    ("catalogue_days_ago", "expected"),
    [
        (83 - 1 / 86400, []),
        (83, [("evaluation_due", (AS_OF + timedelta(days=7)).date(), False)]),
        (90, [("evaluation_due", AS_OF.date(), False)]),
        (90 + 1 / 86400, [("evaluation_due", AS_OF.date(), True)]),
    ],
)
def test_a_new_catalogue_asks_for_a_new_evaluation_within_90_days(
    catalogue_days_ago: float, expected: list[Any]
) -> None:
    catalogue = Catalogue(4, ago(catalogue_days_ago))
    assert items(attending(catalogue=catalogue, evaluated=LastEvaluation(ago(100), 7, None))) == expected
    assert items(attending(catalogue=catalogue, evaluated=LastEvaluation(ago(100), 7, 2))) == expected  # older one
    assert items(attending(catalogue=catalogue, evaluated=LastEvaluation(ago(100), 7, 4))) == []  # scored under it


def test_an_evaluation_due_on_two_grounds_is_one_item_due_at_the_earlier() -> None:
    item = only(attending(catalogue=Catalogue(4, ago(100)), evaluated=LastEvaluation(ago(400), 7, 2)))
    assert (item.kind, item.due, item.overdue) == ("evaluation_due", ago(35).date(), True)  # a year after it
    assert item.evidence == ("p1:7", f"{ORGANISATION_ID}:4")
    assert "last evaluated on" in item.reason and "not catalogue 4" in item.reason


# --- segmentation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened_days_ago", "expected"),
    [
        (23 - 1 / 86400, []),
        (23, [("segmentation_missing", (AS_OF + timedelta(days=7)).date(), False)]),
        (30, [("segmentation_missing", AS_OF.date(), False)]),
        (30 + 1 / 86400, [("segmentation_missing", AS_OF.date(), True)]),
    ],
)
def test_a_partnership_is_segmented_within_30_days_of_opening(opened_days_ago: float, expected: list[Any]) -> None:
    facts = partnership(
        opened_at=ago(opened_days_ago), stage_since=ago(10), segment_now=None, segment_future=None, segment_version=0
    )
    found = attending(facts, segmentations=0, evaluated=LastEvaluation(ago(1), 7, None))
    assert items(found) == expected
    if expected:
        assert only(found).evidence == ("p1:1",) and "default cell" in only(found).reason


@pytest.mark.parametrize(
    ("made_days_ago", "expected"),
    [
        (173 - 1 / 86400, []),  # half a year old a second after the week ends
        (173, [("segmentation_first_guess", (AS_OF + timedelta(days=7)).date(), False)]),
        (180, [("segmentation_first_guess", AS_OF.date(), False)]),
        (180 + 1 / 86400, [("segmentation_first_guess", AS_OF.date(), True)]),
    ],
)
def test_a_first_guess_is_looked_at_again_after_half_a_year(made_days_ago: float, expected: list[Any]) -> None:
    facts = partnership(opened_at=ago(made_days_ago + 10), stage_since=ago(10), segment_at=ago(made_days_ago))
    assert items(attending(facts, segmentations=1)) == expected
    assert items(attending(facts, segmentations=2)) == []  # revisited since


def test_a_first_guess_is_one_made_within_30_days_of_opening() -> None:
    made = ago(200)
    within = partnership(opened_at=made - timedelta(days=30), segment_at=made)
    later = partnership(opened_at=made - timedelta(days=30) - SECOND, segment_at=made)
    item = only(attending(within, segmentations=1))
    assert (item.kind, item.evidence) == ("segmentation_first_guess", ("p1:3",))
    assert needs(attending(later, segmentations=1), AS_OF) == []


# --- handover, dormant, wind-down ------------------------------------------------------


@pytest.mark.parametrize(("left_days_ago", "overdue"), [(1, False), (30, False), (30 + 1 / 86400, True)])
def test_a_handover_is_pending_until_the_new_steward_meets_them_and_due_in_30_days(
    left_days_ago: float, overdue: bool
) -> None:
    left = ago(left_days_ago)
    facts = partnership(steward_left_at=left, steward_left_version=12, last_contact_at=left - SECOND)
    item = only(attending(facts))
    assert (item.kind, item.due, item.overdue) == ("handover_pending", (left + timedelta(days=30)).date(), overdue)
    assert item.evidence == ("p1:12",) and "steward left" in item.reason
    met = partnership(steward_left_at=left, steward_left_version=12, last_contact_at=left + SECOND)
    assert needs(attending(met), AS_OF) == []


def test_a_pending_handover_stands_for_the_overdue_contact_too() -> None:
    facts = partnership(steward_left_at=ago(60), steward_left_version=12, last_contact_at=ago(CADENCE + 10))
    assert [i.kind for i in needs(attending(facts), AS_OF)] == ["handover_pending"]


def test_a_quiet_partner_once_trusted_is_worth_waking_instead_of_just_due_for_contact() -> None:
    quiet = partnership(last_contact_at=ago(CADENCE + 20))
    woken = only(attending(quiet, trust=(0.3, 0.6)))
    assert (woken.kind, woken.due, woken.overdue) == ("dormant_worth_waking", ago(20).date(), True)
    assert woken.evidence == ("p1:9",) and "trust reached 0.60" in woken.reason
    never_trusted = only(attending(quiet, trust=(0.3, 0.4)))
    assert (never_trusted.kind, never_trusted.due, never_trusted.overdue) == ("contact_due", ago(20).date(), True)


@pytest.mark.parametrize(
    ("days_in_wind_down", "expected"),
    [
        (83 - 1 / 86400, []),
        (83, [("wind_down_decision_pending", (AS_OF + timedelta(days=7)).date(), False)]),
        (90, [("wind_down_decision_pending", AS_OF.date(), False)]),
        (90 + 1 / 86400, [("wind_down_decision_pending", AS_OF.date(), True)]),
    ],
)
def test_a_wind_down_ends_within_90_days(days_in_wind_down: float, expected: list[Any]) -> None:
    # Quiet for years, never evaluated, never segmented: a decided wind-down asks none of it.
    facts = partnership(
        stage=Stage.WIND_DOWN,
        stage_since=ago(days_in_wind_down),
        stage_version=20,
        last_contact_at=ago(900),
        segment_now=None,
        segment_future=None,
    )
    found = attending(facts, segmentations=0, evaluated=None)
    assert items(found) == expected
    if expected:
        assert only(found).evidence == ("p1:20",)


def test_a_wind_down_candidate_asks_for_the_decision_now() -> None:
    judged = (Evaluation(ago(200), 10.0, 5), Evaluation(ago(100), 0.1, 6))
    item = only(attending(partnership(evaluations=judged)))
    assert (item.kind, item.due, item.overdue) == ("wind_down_decision_pending", AS_OF.date(), False)
    assert item.evidence == ("p1:5", "p1:6") and "ambition_mismatch" in item.reason
    assert needs(attending(partnership(evaluations=judged[:1])), AS_OF) == []


def test_an_ended_partnership_asks_for_nothing() -> None:
    facts = partnership(stage=Stage.ENDED, last_contact_at=ago(900), segment_now=None, segment_future=None)
    assert needs(attending(facts, segmentations=0, evaluated=None, flags=()), AS_OF) == []


# --- ranking ---------------------------------------------------------------------------


def item(kind: Any, due_days: float, overdue: bool, name: str = "Acme Oy", pid: str = "p1") -> AttentionItem:
    return AttentionItem(pid, name, kind, "why", (AS_OF + timedelta(days=due_days)).date(), overdue, ())


def test_the_kinds_rank_in_the_documented_order() -> None:
    assert KIND_ORDER == (
        "handover_pending",
        "dormant_worth_waking",
        "contact_due",
        "segmentation_missing",
        "wind_down_decision_pending",
        "evaluation_due",
        "segmentation_first_guess",
    )


def test_overdue_first_then_by_kind_then_earliest_due_then_by_name() -> None:
    unranked = [
        item("handover_pending", 5, False),
        item("segmentation_first_guess", -1, True),
        item("contact_due", -3, True, "B Oy", "p2"),
        item("contact_due", -9, True, "C Oy", "p3"),
        item("contact_due", -9, True, "A Oy", "p4"),
        item("evaluation_due", 1, False),
        item("contact_due", 0, False),
    ]
    order = ranked(reversed(unranked))
    assert [(i.kind, i.partner_name, i.priority) for i in order] == [
        ("contact_due", "A Oy", 1),  # overdue; the earliest due, then by name
        ("contact_due", "C Oy", 2),
        ("contact_due", "B Oy", 3),
        ("segmentation_first_guess", "Acme Oy", 4),  # overdue, though the least of the kinds
        ("handover_pending", "Acme Oy", 5),  # not yet due, but first of the kinds
        ("contact_due", "Acme Oy", 6),
        ("evaluation_due", "Acme Oy", 7),
    ]


def test_a_stewards_list_ranks_every_partnerships_items_together() -> None:
    quiet = attending(partnership(partnership_id="p2", partner_name="Quiet Oy", last_contact_at=ago(CADENCE + 1)))
    unsegmented = attending(
        partnership(segment_now=None, segment_future=None, opened_at=ago(40), stage_since=ago(30)),
        segmentations=0,
    )
    listed = attention([attending(), unsegmented, quiet], AS_OF)
    assert [(i.partner_name, i.kind, i.priority) for i in listed] == [
        ("Quiet Oy", "contact_due", 1),
        ("Acme Oy", "segmentation_missing", 2),
    ]
    assert listed[0].to_dict() == {
        "partnership_id": "p2",
        "partner_name": "Quiet Oy",
        "kind": "contact_due",
        "reason": listed[0].reason,
        "due": ago(1).date().isoformat(),
        "overdue": True,
        "evidence": ["p2:9"],
        "priority": 1,
    }
