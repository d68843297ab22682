"""The segment portfolio: the now × future matrix, and who moved between cells per quarter.

Everyone segments with the same few values, so the matrix is comparable across units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.timeline import in_force_at
from domain.values import Importance


@dataclass(frozen=True)
class Segmentation:
    partnership_id: str
    partner_name: str
    at: datetime
    now: Importance
    future: Importance


@dataclass(frozen=True)
class Move:
    quarter: str
    partnership_id: str
    partner_name: str
    before: tuple[Importance, Importance] | None
    after: tuple[Importance, Importance]


def segment_at(history: Sequence[Segmentation], moment: datetime) -> Segmentation | None:
    """The segmentation in force at ``moment``; ``history`` in valid-time order."""
    return in_force_at(history, moment, key=lambda segmentation: segmentation.at)


def _last_before(history: Sequence[Segmentation], moment: datetime) -> Segmentation | None:
    earlier = [s for s in history if s.at < moment]
    return earlier[-1] if earlier else None


def matrix(histories: Mapping[str, Sequence[Segmentation]], as_of: datetime) -> dict[str, list[dict[str, str]]]:
    """Cell "now/future" → members, for every one of the 16 cells (empty ones too)."""
    cells: dict[str, list[dict[str, str]]] = {f"{n.value}/{f.value}": [] for n in Importance for f in Importance}
    for pid in sorted(histories):
        current = segment_at(histories[pid], as_of)
        if current is not None:
            cells[f"{current.now.value}/{current.future.value}"].append(
                {"partnership_id": pid, "partner_name": current.partner_name}
            )
    return cells


def quarters(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Calendar quarters (UTC) overlapping [start, end], as (label, first moment, first
    moment of next)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    year, quarter = start.year, (start.month - 1) // 3
    result: list[tuple[str, datetime, datetime]] = []
    while True:
        begin = datetime(year, quarter * 3 + 1, 1, tzinfo=UTC)
        if begin > end:
            return result
        next_year, next_quarter = (year + 1, 0) if quarter == 3 else (year, quarter + 1)
        result.append((f"{year}-Q{quarter + 1}", begin, datetime(next_year, next_quarter * 3 + 1, 1, tzinfo=UTC)))
        year, quarter = next_year, next_quarter


def drift(histories: Mapping[str, Sequence[Segmentation]], start: datetime, end: datetime) -> list[Move]:
    """Per quarter, each partnership whose cell at the quarter's end differs from its start."""
    moves = []
    for label, begin, finish in quarters(start, end):
        for pid in sorted(histories):
            before = _last_before(histories[pid], begin)
            after = segment_at(histories[pid], end) if finish > end else _last_before(histories[pid], finish)
            if after is None:
                continue
            cell_before = (before.now, before.future) if before else None
            cell_after = (after.now, after.future)
            if cell_before != cell_after:
                moves.append(Move(label, pid, after.partner_name, cell_before, cell_after))
    return moves
