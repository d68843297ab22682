"""Retractions, corrections, merges and imported stages: the rules, on the aggregate alone."""

from __future__ import annotations

from typing import Any

import pytest

from domain.corrections import Changes
from domain.errors import (
    AlreadyRetracted,
    IllegalStageTransition,
    MergeError,
    NotCorrectable,
    NothingChanged,
    OccurredBeforeStart,
    UnknownEvent,
)
from domain.partnership import Partnership
from domain.values import Stage
from tests.unit.builders import meta, opened, then_events


def _event(p: Partnership, version: int) -> Any:
    return next(e for e in p.pending_events if e.originator_version == version)


def _with_history() -> Partnership:
    p = opened()
    p.log_contact("call", "inbound", ("alice",), meta(1))  # 2
    p.signal_interest("inbound", 2, meta(2))  # 3
    p.evaluate({"fit": 10.0}, meta(3))  # 4
    p.evaluate({"fit": 0.1}, meta(4))  # 5
    return p


def test_a_retracted_contact_no_longer_counts_and_stays_in_history() -> None:
    p = _with_history()
    p.retract_event(f"{p.id}:2", "wrong partner", meta(5), target=_event(p, 2))
    assert p.contacts == 0 and p.retracted == [2]
    assert then_events(p)[-1] == "EventRetracted" and p.version == 6


def test_retracting_the_latest_evaluation_falls_back_to_the_one_before() -> None:
    p = _with_history()
    assert p.last_outcome == 0.1
    p.retract_event(f"{p.id}:5", "scored the wrong partner", meta(5), target=_event(p, 5))
    assert p.last_outcome == 10.0
    p.retract_event(f"{p.id}:4", "that one too", meta(6), target=_event(p, 4))
    assert p.last_outcome is None


def test_a_corrected_evaluation_derives_its_outcome_again() -> None:
    p = _with_history()
    p.correct_event(f"{p.id}:5", Changes(factors={"fit": 1.0}), "adequate, not poor", meta(5), target=_event(p, 5))
    (event,) = [e for e in p.collect_events() if type(e).__name__ == "EventCorrected"]
    assert event.changes.evaluated_outcome == 1.0 and event.corrected_type == "evaluated"
    assert p.last_outcome == 1.0 and p.corrected == [5]


def test_nothing_is_retracted_twice_nor_corrected_once_retracted() -> None:
    p = _with_history()
    p.retract_event(f"{p.id}:2", "wrong partner", meta(5), target=_event(p, 2))
    with pytest.raises(AlreadyRetracted):
        p.retract_event(f"{p.id}:2", "again", meta(6), target=_event(p, 2))
    with pytest.raises(AlreadyRetracted):
        p.correct_event(f"{p.id}:2", Changes(channel="email"), "x", meta(6), target=_event(p, 2))


def test_states_are_not_corrected_but_recorded_again() -> None:
    p = _with_history()
    p.segment_as("+", "++", meta(5))  # 6
    with pytest.raises(NotCorrectable):
        p.retract_event(f"{p.id}:6", "a guess", meta(6), target=_event(p, 6))
    fresh = Partnership.open(p.partner, "research", "alice", meta())
    with pytest.raises(NotCorrectable):  # the opening is no observation either
        fresh.retract_event(f"{fresh.id}:1", "never opened", meta(6), target=_event(fresh, 1))
    with pytest.raises(UnknownEvent):  # the event supplied must be the one named
        p.retract_event(f"{p.id}:3", "x", meta(6), target=_event(p, 2))


def test_an_event_of_another_partnership_or_beyond_the_last_is_unknown() -> None:
    p, other = _with_history(), opened()
    with pytest.raises(UnknownEvent):
        p.retract_event(f"{other.id}:1", "x", meta(5), target=_event(p, 2))
    with pytest.raises(UnknownEvent):
        p.retract_event(f"{p.id}:9", "x", meta(5), target=None)


def test_a_correction_changes_something_the_event_has() -> None:
    p = _with_history()
    with pytest.raises(NothingChanged):
        p.correct_event(f"{p.id}:3", Changes(strength=2), "same", meta(5), target=_event(p, 3))
    with pytest.raises(NothingChanged):
        p.correct_event(f"{p.id}:3", Changes(), "empty", meta(5), target=_event(p, 3))
    with pytest.raises(NotCorrectable):  # an interest signal has no channel
        p.correct_event(f"{p.id}:3", Changes(channel="email"), "x", meta(5), target=_event(p, 3))
    with pytest.raises(OccurredBeforeStart):
        p.correct_event(f"{p.id}:3", Changes(occurred_at=meta(-1).occurred_at), "x", meta(5), target=_event(p, 3))
    p.correct_event(f"{p.id}:3", Changes(strength=3), "strong", meta(5), target=_event(p, 3))
    # Once corrected, going back to what was first recorded is a change too.
    p.correct_event(f"{p.id}:3", Changes(strength=2), "it was 2 after all", meta(6), target=_event(p, 3))
    assert p.corrected == [3] and p.version == 7


def test_a_merge_ends_the_duplicate_and_tells_the_survivor() -> None:
    duplicate, survivor = opened(), opened()
    duplicate.change_stage(Stage.PRIORITISE, "fit", meta(1))
    duplicate.merge_into(survivor.id, meta(2), reason="the same Acme", survivor=survivor)
    assert duplicate.ended and duplicate.stage == Stage.ENDED and duplicate.merged_into == survivor.id
    merged = duplicate.collect_events()[-1]
    assert merged.previous == Stage.PRIORITISE and merged.survivor_id == survivor.id
    assert then_events(survivor) == ["Absorbed"] and not survivor.ended


def test_a_merge_needs_another_open_partnership() -> None:
    duplicate, ended = opened(), opened()
    with pytest.raises(MergeError):
        duplicate.merge_into(duplicate.id, meta(1), survivor=duplicate)
    with pytest.raises(MergeError):
        duplicate.merge_into(ended.id, meta(1), survivor=None)
    ended.merge_into(duplicate.id, meta(1), survivor=duplicate)
    with pytest.raises(MergeError):
        opened().merge_into(ended.id, meta(2), survivor=ended)


@pytest.mark.parametrize("stage", [Stage.PRIORITISE, Stage.MAINTAIN, Stage.MANAGE, Stage.WIND_DOWN])
def test_an_imported_partnership_goes_straight_to_where_it_was(stage: Stage) -> None:
    p = opened()
    p.change_stage(stage, "imported", meta(1))
    assert p.stage == stage


def test_imported_is_no_shortcut_later_or_to_ended() -> None:
    p = opened()
    with pytest.raises(IllegalStageTransition):
        p.change_stage(Stage.ENDED, "imported", meta(1))
    with pytest.raises(IllegalStageTransition):
        p.change_stage(Stage.MANAGE, "fit", meta(1))  # without the reason, the method holds
    p.change_stage(Stage.PRIORITISE, "fit", meta(1))
    p.change_stage(Stage.ANALYSE, "rethink", meta(2))
    with pytest.raises(IllegalStageTransition):  # back in analyse, but not from the opening
        p.change_stage(Stage.MANAGE, "imported", meta(3))
