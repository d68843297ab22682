"""The method as a state machine: every pair of stages, and every path hypothesis finds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import AggregateEnded, DomainError, IllegalStageTransition, NothingChanged
from domain.stages import ORDER, check_transition, is_allowed
from domain.values import Stage
from tests.unit.builders import meta, opened

A, P, MT, MG, W, E = ORDER
OK, NO, SAME = "allowed", "refused", "same"

# Written out by hand, not derived from is_allowed: this table is the specification.
EXPECTED = [
    (A, A, SAME), (A, P, OK), (A, MT, NO), (A, MG, NO), (A, W, NO), (A, E, NO),
    (P, A, OK), (P, P, SAME), (P, MT, OK), (P, MG, OK), (P, W, OK), (P, E, NO),
    (MT, A, OK), (MT, P, OK), (MT, MT, SAME), (MT, MG, OK), (MT, W, OK), (MT, E, NO),
    (MG, A, OK), (MG, P, OK), (MG, MT, OK), (MG, MG, SAME), (MG, W, OK), (MG, E, NO),
    (W, A, OK), (W, P, OK), (W, MT, OK), (W, MG, OK), (W, W, SAME), (W, E, OK),
    (E, A, NO), (E, P, NO), (E, MT, NO), (E, MG, NO), (E, W, NO), (E, E, SAME),
]  # fmt: skip


def expected_allowed_from(current: Stage) -> list[str]:
    return [target.value for source, target, verdict in EXPECTED if source == current and verdict == OK]


def test_the_table_covers_every_pair_once() -> None:
    assert sorted((c, t) for c, t, _ in EXPECTED) == sorted((c, t) for c in Stage for t in Stage)


@pytest.mark.parametrize(("current", "target", "verdict"), EXPECTED)
def test_every_pair_of_stages(current: Stage, target: Stage, verdict: str) -> None:
    if verdict == SAME:
        with pytest.raises(NothingChanged):
            check_transition(current, target)
        assert not is_allowed(current, target)
    elif verdict == OK:
        check_transition(current, target)
        assert is_allowed(current, target)
    else:
        with pytest.raises(IllegalStageTransition) as refused:
            check_transition(current, target)
        assert not is_allowed(current, target)
        assert refused.value.details == {
            "current": current.value,
            "target": target.value,
            "allowed": expected_allowed_from(current),
        }


def test_maintain_and_manage_are_a_choice_then_wind_down_and_end() -> None:
    p = opened()
    path = [P, MG, MT, MG, W, E]
    for day, stage in enumerate(path, start=1):
        p.change_stage(stage, "review", meta(day))
    events = p.collect_events()
    assert [(e.previous, e.stage) for e in events] == list(zip([A, *path[:-1]], path, strict=True))
    assert p.stage == E
    assert p.ended


@pytest.mark.parametrize("target", list(Stage))
def test_ended_refuses_every_move(target: Stage) -> None:
    p = opened()
    for day, stage in enumerate([P, W, E], start=1):
        p.change_stage(stage, "review", meta(day))
    p.collect_events()
    with pytest.raises(AggregateEnded):
        p.change_stage(target, "review", meta(10))
    assert p.stage == E
    assert p.collect_events() == []


@given(st.lists(st.sampled_from(list(Stage)), max_size=25))
def test_any_sequence_of_requests_keeps_the_method(targets: list[Stage]) -> None:
    p = opened()
    for day, target in enumerate(targets, start=1):
        before = p.stage
        try:
            p.change_stage(target, "review", meta(day))
        except DomainError:
            assert p.stage == before
            continue
        assert before != E, "nothing moves out of ended"
        assert before != A or p.stage == P, "analysing leads only to prioritising"
        assert p.stage != E or before == W, "only a wind-down ends"
    events = p.collect_events()
    assert all(is_allowed(e.previous, e.stage) for e in events)
    # However it wanders, a partner is prioritised before it is maintained, managed or wound down.
    visited = [A, *(e.stage for e in events)]
    later = [i for i, s in enumerate(visited) if s in (MT, MG, W, E)]
    assert not later or P in visited[: later[0]]
