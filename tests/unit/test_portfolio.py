"""The segment portfolio: which segmentation is in force, the now × future matrix, quarterly drift."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.portfolio import Move, Segmentation, drift, matrix, quarters, segment_at
from domain.values import Importance

VL, L, H, VH = Importance.VERY_LOW, Importance.LOW, Importance.HIGH, Importance.VERY_HIGH


def day(year: int, month: int, dd: int, hour: int = 0) -> datetime:
    return datetime(year, month, dd, hour, tzinfo=UTC)


def seg(at: datetime, now: Importance, future: Importance, pid: str = "p1") -> Segmentation:
    return Segmentation(pid, f"Partner {pid}", at, now, future)


# segment_at -------------------------------------------------------------------------------


def test_nothing_is_in_force_before_the_first_segmentation() -> None:
    assert segment_at([seg(day(2024, 3, 1), H, H)], day(2024, 2, 29)) is None
    assert segment_at([], day(2024, 2, 29)) is None


def test_the_segmentation_in_force_is_the_latest_at_or_before_the_moment() -> None:
    history = [seg(day(2024, 1, 10), VL, VL), seg(day(2024, 3, 1), L, L), seg(day(2024, 6, 1), H, H)]
    assert segment_at(history, day(2024, 1, 10)) == history[0]
    assert segment_at(history, day(2024, 2, 29)) == history[0]
    assert segment_at(history, day(2024, 3, 1)) == history[1]
    assert segment_at(history, day(2030, 1, 1)) == history[2]


def test_a_back_dated_segmentation_recorded_later_counts_from_its_own_date() -> None:
    recorded_first = [seg(day(2024, 1, 1), VL, VL), seg(day(2024, 7, 1), VH, VH)]
    back_dated = seg(day(2024, 4, 1), H, VH)  # reported in August about April
    history = sorted([*recorded_first, back_dated], key=lambda s: s.at)  # valid-time order, as projected
    assert segment_at(history, day(2024, 3, 31)) == recorded_first[0]
    assert segment_at(history, day(2024, 5, 15)) == back_dated
    assert segment_at(history, day(2024, 8, 1)) == recorded_first[1]


# matrix -----------------------------------------------------------------------------------


def test_the_matrix_has_all_sixteen_now_future_cells_even_when_empty() -> None:
    cells = matrix({}, day(2024, 1, 1))
    assert len(cells) == 16 and all(members == [] for members in cells.values())
    assert {"--/--", "--/++", "-/+", "+/-", "++/--", "++/++"} <= set(cells)
    assert set(cells) == {f"{n}/{f}" for n in ("--", "-", "+", "++") for f in ("--", "-", "+", "++")}


def test_the_matrix_places_each_partnership_in_the_cell_in_force_at_the_date() -> None:
    histories = {
        "p1": [seg(day(2024, 1, 1), H, VH, "p1"), seg(day(2024, 6, 1), VH, VH, "p1")],
        "p2": [seg(day(2024, 2, 1), L, L, "p2")],
        "p3": [seg(day(2024, 9, 1), VL, H, "p3")],
    }
    in_march = matrix(histories, day(2024, 3, 1))
    assert in_march["+/++"] == [{"partnership_id": "p1", "partner_name": "Partner p1"}]
    assert in_march["-/-"] == [{"partnership_id": "p2", "partner_name": "Partner p2"}]
    assert sum(len(m) for m in in_march.values()) == 2  # p3 is not segmented yet
    in_july = matrix(histories, day(2024, 7, 1))
    assert in_july["+/++"] == [] and [m["partnership_id"] for m in in_july["++/++"]] == ["p1"]
    assert sum(len(m) for m in in_july.values()) == 2
    in_autumn = matrix(histories, day(2024, 9, 1))
    assert in_autumn["--/+"] == [{"partnership_id": "p3", "partner_name": "Partner p3"}]


def test_partnerships_sharing_a_cell_are_all_listed() -> None:
    histories = {pid: [seg(day(2024, 1, 1), H, H, pid)] for pid in ("b", "a", "c")}
    assert [m["partnership_id"] for m in matrix(histories, day(2024, 2, 1))["+/+"]] == ["a", "b", "c"]


# quarters ---------------------------------------------------------------------------------


def test_quarters_are_calendar_quarters_with_their_bounds_across_a_year_end() -> None:
    assert quarters(day(2023, 11, 15), day(2024, 2, 10)) == [
        ("2023-Q4", day(2023, 10, 1), day(2024, 1, 1)),
        ("2024-Q1", day(2024, 1, 1), day(2024, 4, 1)),
    ]


def test_a_year_has_four_quarters_each_starting_where_the_last_ended() -> None:
    result = quarters(day(2024, 1, 1), day(2024, 12, 31, 23))
    assert [label for label, _, _ in result] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert [begin.month for _, begin, _ in result] == [1, 4, 7, 10]
    assert all(finish == following[1] for (_, _, finish), following in zip(result, result[1:], strict=False))
    assert result[-1][2] == day(2025, 1, 1)


def test_a_single_moment_lies_in_one_quarter() -> None:
    assert quarters(day(2024, 5, 15, 12), day(2024, 5, 15, 12)) == [("2024-Q2", day(2024, 4, 1), day(2024, 7, 1))]


def test_a_quarter_starting_exactly_at_the_end_date_is_included() -> None:
    # [start, end] is closed, so the quarter that begins at the end moment overlaps it.
    assert [label for label, _, _ in quarters(day(2024, 2, 1), day(2024, 4, 1))] == ["2024-Q1", "2024-Q2"]
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 4, 1), H, H)]}
    assert [m.quarter for m in drift(histories, day(2024, 2, 1), day(2024, 4, 1))] == ["2024-Q2"]


# drift ------------------------------------------------------------------------------------


def test_a_first_segmentation_is_a_move_from_nowhere_in_its_quarter() -> None:
    histories = {"p1": [seg(day(2024, 2, 10), H, H)]}
    assert drift(histories, day(2024, 1, 1), day(2024, 6, 30)) == [Move("2024-Q1", "p1", "Partner p1", None, (H, H))]


def test_a_change_of_cell_is_a_move_in_the_quarter_it_happened_only() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 5, 10), H, VH)]}
    assert drift(histories, day(2024, 1, 1), day(2024, 9, 30)) == [
        Move("2024-Q2", "p1", "Partner p1", (L, L), (H, VH)),
    ]


def test_a_quarter_without_change_has_no_moves() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 2, 1), L, L)]}  # re-segmented, same cell
    assert drift(histories, day(2024, 1, 1), day(2024, 6, 30)) == []


def test_moving_away_and_back_within_one_quarter_is_not_a_move() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 2, 1), VH, VH), seg(day(2024, 3, 1), L, L)]}
    assert drift(histories, day(2024, 1, 1), day(2024, 6, 30)) == []


def test_moving_away_and_back_in_different_quarters_is_two_moves() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 2, 1), VH, VH), seg(day(2024, 5, 1), L, L)]}
    assert drift(histories, day(2024, 1, 1), day(2024, 6, 30)) == [
        Move("2024-Q1", "p1", "Partner p1", (L, L), (VH, VH)),
        Move("2024-Q2", "p1", "Partner p1", (VH, VH), (L, L)),
    ]


def test_a_segmentation_at_the_first_moment_of_a_quarter_belongs_to_that_quarter() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 4, 1), H, H)]}
    assert [m.quarter for m in drift(histories, day(2024, 1, 1), day(2024, 6, 30))] == ["2024-Q2"]


def test_drift_in_the_last_quarter_counts_up_to_the_end_date_only() -> None:
    histories = {"p1": [seg(day(2023, 12, 1), L, L), seg(day(2024, 5, 20), H, H)]}
    assert drift(histories, day(2024, 1, 1), day(2024, 5, 15)) == []
    assert [m.after for m in drift(histories, day(2024, 1, 1), day(2024, 5, 20))] == [(H, H)]


def test_moves_of_several_partnerships_are_listed_by_quarter_then_id() -> None:
    histories = {
        "b": [seg(day(2024, 1, 5), H, H, "b")],
        "a": [seg(day(2024, 2, 5), L, H, "a"), seg(day(2024, 8, 5), H, H, "a")],
    }
    assert [(m.quarter, m.partnership_id) for m in drift(histories, day(2024, 1, 1), day(2024, 12, 31))] == [
        ("2024-Q1", "a"),
        ("2024-Q1", "b"),
        ("2024-Q3", "a"),
    ]


# Property ---------------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2022, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
importances = st.sampled_from(list(Importance))


@st.composite
def any_histories(draw: st.DrawFn) -> dict[str, list[Segmentation]]:
    pids = draw(st.lists(st.text("abcdef", min_size=1, max_size=3), unique=True, max_size=8))
    return {
        pid: sorted(
            (
                seg(at, now, future, pid)
                for at, now, future in draw(st.lists(st.tuples(moments, importances, importances), max_size=5))
            ),
            key=lambda s: s.at,
        )
        for pid in pids
    }


@given(any_histories(), moments)
def test_every_partnership_is_in_at_most_one_cell_and_all_segmented_ones_are_counted(
    histories: dict[str, list[Segmentation]],
    as_of: datetime,
) -> None:
    cells = matrix(histories, as_of)
    placed = [m["partnership_id"] for members in cells.values() for m in members]
    assert len(cells) == 16
    assert len(placed) == len(set(placed))
    assert len(placed) == sum(1 for history in histories.values() if any(s.at <= as_of for s in history))
