"""The operating model: a whole grid of cell policies, the default's shape, the model in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.operating_model import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_VERSION,
    UNSEGMENTED,
    CellPolicy,
    Mode,
    OperatingModel,
    model_in_force,
)
from domain.values import Importance

CELLS = list(product(Importance, Importance))  # (now, future), all 16
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def policy(now: Importance, future: Importance, **changes: object) -> CellPolicy:
    fields: dict[str, object] = dict(now=now, future=future, cadence_days=90, yearly_effort_hours=50.0)
    return CellPolicy(**{**fields, "mode": Mode.MAINTAIN, **changes})


def uniform(cadence_days: int) -> OperatingModel:
    return OperatingModel(cells=tuple(policy(n, f, cadence_days=cadence_days) for n, f in CELLS))


def at_least(a: tuple[Importance, Importance], b: tuple[Importance, Importance]) -> bool:
    """Cell a is at least as important as cell b, now and in future."""
    return a[0].rank >= b[0].rank and a[1].rank >= b[1].rank


# The whole grid ---------------------------------------------------------------------------


def test_the_default_model_has_one_policy_for_each_of_the_16_cells() -> None:
    assert len(DEFAULT_MODEL.cells) == 16
    assert sorted((c.now.rank, c.future.rank) for c in DEFAULT_MODEL.cells) == sorted(
        (n.rank, f.rank) for n, f in CELLS
    )
    for now, future in CELLS:
        found = DEFAULT_MODEL.cell(now, future)
        assert (found.now, found.future) == (now, future)


def test_a_model_with_a_cell_twice_is_refused() -> None:
    cells = [policy(n, f) for n, f in CELLS] + [policy(Importance.LOW, Importance.LOW, cadence_days=30)]
    with pytest.raises(ValidationError, match="each now × future cell must appear once"):
        OperatingModel(cells=tuple(cells))


def test_a_model_missing_a_cell_is_refused_naming_the_missing_cell() -> None:
    cells = tuple(policy(n, f) for n, f in CELLS if (n, f) != (Importance.VERY_HIGH, Importance.VERY_LOW))
    with pytest.raises(ValidationError, match=r"missing: \+\+/-- \["):
        OperatingModel(cells=cells)


def test_an_empty_model_is_refused_naming_all_16_cells() -> None:
    with pytest.raises(ValidationError) as refused:
        OperatingModel(cells=())
    missing = str(refused.value).split("missing: ")[1].split("[")[0].strip()
    assert len(missing.split(", ")) == 16


def test_a_duplicate_standing_in_for_a_missing_cell_is_still_refused() -> None:
    cells = [policy(n, f) for n, f in CELLS if (n, f) != (Importance.HIGH, Importance.HIGH)]
    with pytest.raises(ValidationError, match="appear once"):
        OperatingModel(cells=(*cells, policy(Importance.LOW, Importance.LOW)))


@given(st.permutations(CELLS))
def test_the_order_of_the_cells_does_not_matter(order: list[tuple[Importance, Importance]]) -> None:
    model = OperatingModel(cells=tuple(policy(n, f, cadence_days=7 + 10 * n.rank + f.rank) for n, f in order))
    for now, future in CELLS:
        assert model.cell(now, future).cadence_days == 7 + 10 * now.rank + future.rank


# Bounds of one cell -----------------------------------------------------------------------


@pytest.mark.parametrize(("cadence", "valid"), [(6, False), (7, True), (1_095, True), (1_096, False)])
def test_the_cadence_is_between_a_week_and_three_years(cadence: int, valid: bool) -> None:
    if valid:
        assert policy(Importance.LOW, Importance.LOW, cadence_days=cadence).cadence_days == cadence
    else:
        with pytest.raises(ValidationError, match="cadence_days"):
            policy(Importance.LOW, Importance.LOW, cadence_days=cadence)


@pytest.mark.parametrize("cadence", [True, 30.0, "30"])
def test_the_cadence_is_a_whole_number_of_days_not_anything_that_looks_like_one(cadence: object) -> None:
    with pytest.raises(ValidationError, match="cadence_days"):
        policy(Importance.LOW, Importance.LOW, cadence_days=cadence)


@pytest.mark.parametrize(("hours", "valid"), [(-0.1, False), (0.0, True), (10_000.0, True), (10_000.1, False)])
def test_the_budget_is_between_zero_and_ten_thousand_hours(hours: float, valid: bool) -> None:
    if valid:
        assert policy(Importance.LOW, Importance.LOW, yearly_effort_hours=hours).yearly_effort_hours == hours
    else:
        with pytest.raises(ValidationError, match="yearly_effort_hours"):
            policy(Importance.LOW, Importance.LOW, yearly_effort_hours=hours)


@pytest.mark.parametrize("hours", [float("nan"), float("inf"), "50"])
def test_the_budget_is_a_finite_number(hours: object) -> None:
    with pytest.raises(ValidationError, match="yearly_effort_hours"):
        policy(Importance.LOW, Importance.LOW, yearly_effort_hours=hours)


def test_a_cell_policy_knows_no_other_fields_and_cannot_be_changed() -> None:
    with pytest.raises(ValidationError, match="extra"):
        policy(Importance.LOW, Importance.LOW, colour="red")
    cell = policy(Importance.LOW, Importance.LOW)
    with pytest.raises(ValidationError):
        cell.cadence_days = 8  # type: ignore[misc]


# The default's shape ----------------------------------------------------------------------


@pytest.mark.parametrize(("more", "less"), [(a, b) for a in CELLS for b in CELLS if at_least(a, b)])
def test_a_cells_cadence_is_never_longer_than_a_less_important_cells(
    more: tuple[Importance, Importance], less: tuple[Importance, Importance]
) -> None:
    assert DEFAULT_MODEL.cell(*more).cadence_days <= DEFAULT_MODEL.cell(*less).cadence_days


@pytest.mark.parametrize("future", list(Importance))
def test_the_budget_grows_with_importance_now(future: Importance) -> None:
    budgets = [DEFAULT_MODEL.cell(now, future).yearly_effort_hours for now in Importance]
    assert all(lower < higher for lower, higher in zip(budgets, budgets[1:], strict=False))


@pytest.mark.parametrize("now", list(Importance))
def test_the_budget_never_shrinks_with_importance_in_future(now: Importance) -> None:
    budgets = [DEFAULT_MODEL.cell(now, future).yearly_effort_hours for future in Importance]
    assert all(lower <= higher for lower, higher in zip(budgets, budgets[1:], strict=False))


@pytest.mark.parametrize(
    ("now", "future", "cadence", "budget"), [("--", "--", 365, 10.0), ("-", "-", 180, 40.0), ("++", "++", 45, 200.0)]
)
def test_the_corners_of_the_default_model(now: str, future: str, cadence: int, budget: float) -> None:
    cell = DEFAULT_MODEL.cell(Importance(now), Importance(future))
    assert (cell.cadence_days, cell.yearly_effort_hours) == (cadence, budget)


@pytest.mark.parametrize("now", [Importance.HIGH, Importance.VERY_HIGH])
def test_a_very_high_future_with_a_high_present_is_managed(now: Importance) -> None:
    assert DEFAULT_MODEL.cell(now, Importance.VERY_HIGH).mode == Mode.MANAGE


@pytest.mark.parametrize(("now", "future"), CELLS)
def test_only_cells_heading_to_or_staying_at_the_top_are_managed(now: Importance, future: Importance) -> None:
    managed = future.rank >= Importance.HIGH.rank and Importance.VERY_HIGH in (now, future)
    assert (DEFAULT_MODEL.cell(now, future).mode == Mode.MANAGE) is managed


def test_a_partnership_not_yet_segmented_gets_the_middle_of_the_road() -> None:
    assert (UNSEGMENTED.cadence_days, UNSEGMENTED.yearly_effort_hours, UNSEGMENTED.mode) == (180, 40.0, Mode.MAINTAIN)


# The model in force -----------------------------------------------------------------------


def test_before_any_definition_the_default_is_in_force_as_version_zero() -> None:
    assert DEFAULT_MODEL_VERSION == 0
    assert model_in_force([], T0) == (0, DEFAULT_MODEL)
    assert model_in_force([(T0, 3, uniform(30))], T0 - timedelta(microseconds=1)) == (0, DEFAULT_MODEL)


def test_a_definition_is_in_force_from_its_effective_moment_until_the_next() -> None:
    first, second = uniform(30), uniform(60)
    definitions = [(T0, 2, first), (T0 + timedelta(days=100), 5, second)]
    assert model_in_force(definitions, T0) == (2, first)
    assert model_in_force(definitions, T0 + timedelta(days=99)) == (2, first)
    assert model_in_force(definitions, T0 + timedelta(days=100)) == (5, second)


def test_valid_time_decides_not_the_order_of_recording() -> None:
    # Version 7 was recorded later but back-dated before version 4.
    older, newer = uniform(30), uniform(60)
    definitions = [(T0 + timedelta(days=50), 4, newer), (T0, 7, older)]
    assert model_in_force(definitions, T0 + timedelta(days=10)) == (7, older)
    assert model_in_force(definitions, T0 + timedelta(days=60)) == (4, newer)


@pytest.mark.parametrize("order", [1, -1])
def test_of_two_definitions_effective_at_once_the_later_recorded_is_in_force(order: int) -> None:
    definitions = [(T0, 3, uniform(30)), (T0, 8, uniform(60))][::order]
    version, model = model_in_force(definitions, T0 + timedelta(days=1))
    assert (version, model.cells[0].cadence_days) == (8, 60)


moments = st.integers(0, 20).map(lambda d: T0 + timedelta(days=d))
MODELS = [uniform(7 + i) for i in range(10)]


@given(st.lists(st.tuples(moments, st.integers(1, 50)), max_size=8, unique_by=lambda d: d[1]), moments)
def test_the_model_in_force_is_the_latest_effective_by_then_whatever_the_order(
    definitions: list[tuple[datetime, int]], at: datetime
) -> None:
    full = [(when, version, MODELS[version % 10]) for when, version in definitions]
    effective = [d for d in full if d[0] <= at]
    expected = max(effective, key=lambda d: (d[0], d[1]), default=(at, 0, DEFAULT_MODEL))
    assert model_in_force(full, at) == (expected[1], expected[2])
    assert model_in_force(full[::-1], at) == (expected[1], expected[2])
