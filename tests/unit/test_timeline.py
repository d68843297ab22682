"""The shared small helpers: in force at a moment, aware datetimes, outcome arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.lifecycle import Evaluation, LifecycleThresholds, wind_down_flag
from domain.network_health import window_outcome
from domain.operating_model import UNSEGMENTED
from domain.timeline import check_aware, in_force_at
from domain.values import JUMP_TOLERANCE, geometric_mean, quality_jumps
from tests.unit.test_lifecycle import ago, facts

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


# in_force_at ---------------------------------------------------------------------------


def test_nothing_is_in_force_before_the_first_item_or_without_items() -> None:
    assert in_force_at([], at(0)) is None
    assert in_force_at([at(1), at(2)], at(0)) is None


def test_an_item_is_in_force_from_its_own_moment_until_the_next_takes_effect() -> None:
    items = [(at(1), "a"), (at(3), "b"), (at(5), "c")]
    first = lambda item: item[0]  # noqa: E731
    assert in_force_at(items, at(1), key=first) == (at(1), "a")
    assert in_force_at(items, at(2), key=first) == (at(1), "a")
    assert in_force_at(items, at(3), key=first) == (at(3), "b")
    assert in_force_at(items, at(99), key=first) == (at(5), "c")


def test_keys_may_be_iso_strings_and_the_item_itself_by_default() -> None:
    moments = [at(1).isoformat(), at(3).isoformat()]
    assert in_force_at(moments, at(2).isoformat()) == moments[0]


@given(st.lists(st.integers(-50, 50)), st.integers(-60, 60))
def test_in_force_at_is_the_last_item_not_after_the_moment(offsets: list[int], moment: int) -> None:
    items = sorted(offsets)
    earlier = [i for i in items if i <= moment]
    assert in_force_at(items, moment) == (earlier[-1] if earlier else None)


def test_the_callers_agree_with_the_helper() -> None:
    from domain.portfolio import Segmentation, segment_at
    from domain.values import Importance
    from projections.lifecycle import _last
    from projections.queries.ownership import tenure_at

    timeline = [{"valid_from": at(0), "owner_unit": "a"}, {"valid_from": at(10), "owner_unit": "b"}]
    assert tenure_at(timeline, at(9)) is timeline[0] and tenure_at(timeline, at(10)) is timeline[1]
    docs = [[at(0).isoformat(), "x"], [at(10).isoformat(), "y"]]
    assert _last(docs, at(5).isoformat()) == docs[0] and _last(docs, at(-1).isoformat()) is None
    history = [Segmentation("p1", "Acme", at(0), Importance.HIGH, Importance.LOW)]
    assert segment_at(history, at(1)) is history[0] and segment_at(history, at(-1)) is None


# check_aware ---------------------------------------------------------------------------


def test_an_aware_datetime_passes() -> None:
    check_aware(T0, "as_of")


@pytest.mark.parametrize("moment", [datetime(2025, 1, 1), "2025-01-01T00:00:00+00:00", None])
def test_a_naive_datetime_or_no_datetime_is_refused_by_name(moment: object) -> None:
    with pytest.raises(ValueError, match="^as_of must be a timezone-aware datetime"):
        check_aware(moment, "as_of")  # type: ignore[arg-type]


# geometric_mean and window_outcome -----------------------------------------------------


def test_the_geometric_mean_of_powers_of_ten_is_exact() -> None:
    assert geometric_mean([10.0]) == 10.0
    assert geometric_mean([0.1, 10.0]) == 1.0
    assert geometric_mean([10.0, 1000.0]) == 100.0
    with pytest.raises(ValueError):
        geometric_mean([])


def test_the_window_outcome_is_the_rounded_geometric_mean_or_none() -> None:
    assert window_outcome(()) is None
    assert window_outcome((1.0, 10.0)) == round(10**0.5, 6)
    assert window_outcome((0.1, 10.0)) == 1.0


# quality_jumps -------------------------------------------------------------------------


def test_a_ratio_of_exactly_the_factor_is_a_jump_either_way() -> None:
    assert quality_jumps([0.1, 10.0, 0.1], 100) == 2
    assert quality_jumps([1.0, 10.0, 1.0], 100) == 0
    assert quality_jumps([], 100) == quality_jumps([10.0], 100) == 0


def test_float_noise_just_under_the_factor_is_still_a_jump() -> None:
    noisy = 0.1 * 0.1  # an unrounded product: 0.010000000000000002
    assert 1.0 / noisy < 100
    assert quality_jumps([noisy, 1.0], 100) == 1


def test_the_tolerance_boundary() -> None:
    on = 100 * (1 - JUMP_TOLERANCE)
    assert quality_jumps([1.0, on], 100) == 1
    assert quality_jumps([1.0, 100 * (1 - 2 * JUMP_TOLERANCE)], 100) == 0
    assert quality_jumps([1.0, 100 * (1 - JUMP_TOLERANCE / 2)], 100) == 1


def test_the_lifecycle_counts_jumps_with_the_same_tolerance() -> None:
    noisy = 0.1 * 0.1
    evaluations = (Evaluation(ago(3), noisy, 3), Evaluation(ago(2), 1.0, 4), Evaluation(ago(1), noisy, 5))
    flag = wind_down_flag(facts(evaluations=evaluations), UNSEGMENTED, ago(0), LifecycleThresholds())
    assert flag is not None
    assert any(r.startswith("ambition_mismatch: evaluations jumped 2 time(s)") for r in flag.reasons)
