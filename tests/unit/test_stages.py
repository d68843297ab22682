"""The method as a state machine, checked over every path hypothesis can find."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, IllegalStageTransition, NothingChanged
from domain.stages import ORDER, check_transition, is_allowed
from domain.values import Stage
from tests.unit.builders import meta, opened


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Stage.ANALYSE, Stage.PRIORITISE),
        (Stage.PRIORITISE, Stage.MAINTAIN),
        (Stage.MAINTAIN, Stage.MANAGE),
        (Stage.MANAGE, Stage.MAINTAIN),
        (Stage.MANAGE, Stage.WIND_DOWN),
        (Stage.PRIORITISE, Stage.WIND_DOWN),
        (Stage.WIND_DOWN, Stage.ENDED),
        (Stage.WIND_DOWN, Stage.MAINTAIN),
    ],
)
def test_allowed_moves(current: Stage, target: Stage) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Stage.ANALYSE, Stage.MAINTAIN),
        (Stage.ANALYSE, Stage.MANAGE),
        (Stage.ANALYSE, Stage.WIND_DOWN),
        (Stage.ANALYSE, Stage.ENDED),
        (Stage.PRIORITISE, Stage.MANAGE),
        (Stage.MANAGE, Stage.ENDED),
    ],
)
def test_skipping_moves_are_refused(current: Stage, target: Stage) -> None:
    with pytest.raises(IllegalStageTransition):
        check_transition(current, target)


def test_staying_put_is_not_a_change() -> None:
    with pytest.raises(NothingChanged):
        check_transition(Stage.MAINTAIN, Stage.MAINTAIN)


@given(st.lists(st.sampled_from(list(Stage)), max_size=25))
def test_any_sequence_of_requests_never_skips_forward(targets: list[Stage]) -> None:
    p = opened()
    for day, target in enumerate(targets, start=1):
        before = p.stage
        try:
            p.change_stage(target, "review", meta(day))
        except DomainError:
            assert p.stage == before
            continue
        jump = ORDER.index(p.stage) - ORDER.index(before)
        assert jump <= 1 or p.stage in (Stage.WIND_DOWN, Stage.ENDED)
        assert p.stage != Stage.ENDED or before == Stage.WIND_DOWN
    events = p.collect_events()
    assert all(is_allowed(e.previous, e.stage) for e in events)
