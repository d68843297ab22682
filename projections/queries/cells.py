"""The segment portfolio as of a moment, from segmentation rows: counts per cell, the
first members of each, a cell paged by cursor, and the drift per quarter."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.portfolio import Move, quarters
from domain.values import Importance
from projections.queries.rows import tuples

RANKS = [i.value for i in Importance]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CELLS = [(n.value, f.value) for n in Importance for f in Importance]  # the matrix's order
# The segmentation in force at %(t)s: the last one by (valid time, version).
_CURRENT = "at <= %(t)s AND (valid_to IS NULL OR valid_to > %(t)s)"


def counts(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> dict[tuple[str, str], int]:
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT now, future, count(*) FROM {}.segmentations WHERE " + _CURRENT + " GROUP BY now, future"
        ).format(rm),
        {"t": as_of},
    )
    found = {(now, future): int(n) for now, future, n in rows}
    return {cell: found.get(cell, 0) for cell in CELLS}


def _firsts_of(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, cells: list[tuple[str, str]], per_cell: int
) -> list[dict[str, str]]:
    """The first ``per_cell`` members of each of ``cells`` by partnership id, cell by cell
    in the order given: one index walk per cell (segmentations_cell) that stops once it
    has them, instead of ranking the whole portfolio."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT c.now, c.future, m.partnership_id, m.partner_name "
                "FROM unnest(%(nows)s::text[], %(futures)s::text[]) WITH ORDINALITY AS c(now, future, i) "
                "CROSS JOIN LATERAL (SELECT partnership_id::text, partner_name FROM {}.segmentations "
                " WHERE now = c.now AND future = c.future AND " + _CURRENT + " "
                " ORDER BY partnership_id LIMIT %(m)s) m ORDER BY c.i, m.partnership_id::uuid"
            ).format(rm),
            {"t": as_of, "m": per_cell, "nows": [c[0] for c in cells], "futures": [c[1] for c in cells]},
        ).fetchall()


def first_members(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, per_cell: int
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """The first ``per_cell`` members of every cell, by partnership id."""
    members: dict[tuple[str, str], list[dict[str, str]]] = {cell: [] for cell in CELLS}
    if per_cell == 0:
        return members
    for r in _firsts_of(conn, rm, as_of, CELLS, per_cell):
        members[(r["now"], r["future"])].append(
            {"partnership_id": r["partnership_id"], "partner_name": r["partner_name"]}
        )
    return members


def cell_page(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    as_of: datetime,
    cell: tuple[str, str],
    limit: int,
    after: str | None,
) -> tuple[list[dict[str, str]], str | None]:
    """One page of a cell's members by partnership id, and the id to continue after."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT partnership_id::text, partner_name FROM {}.segmentations WHERE " + _CURRENT + " "
                "AND now = %(now)s AND future = %(future)s "
                "AND (%(after)s::uuid IS NULL OR partnership_id > %(after)s::uuid) "
                "ORDER BY partnership_id LIMIT %(n)s"
            ).format(rm),
            {"t": as_of, "now": cell[0], "future": cell[1], "after": after, "n": limit + 1},
        ).fetchall()
    page = rows[:limit]
    return page, (page[-1]["partnership_id"] if len(rows) > limit else None)


def rising(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, limit: int) -> list[dict[str, str]]:
    """The first ``limit`` members of the cells whose future outranks their now, in the
    matrix's order: each such cell's first ``limit``, concatenated, hold them."""
    if limit <= 0:
        return []
    ups = [(now, future) for now, future in CELLS if RANKS.index(future) > RANKS.index(now)]
    found = _firsts_of(conn, rm, as_of, ups, limit)
    return [
        {"partnership_id": r["partnership_id"], "partner_name": r["partner_name"], "cell": f"{r['now']}/{r['future']}"}
        for r in found[:limit]
    ]


def moves(conn: psycopg.Connection[Any], rm: sql.Identifier, start: datetime, end: datetime) -> list[Move]:
    """What domain.portfolio.drift answers (tests hold them equal), over only the
    partnerships that can have moved: those segmented since the first quarter began (a
    cell changes only by a segmentation), each cell found by bisection. Of their
    histories only the window is read, and the one segmentation in force when it began:
    the cells at the quarters' bounds depend on nothing earlier, so the cost follows the
    window's segmentations, not the years before it."""
    spans = quarters(start, end)
    if not spans:
        return []
    rows = tuples(
        conn,
        sql.SQL(
            "WITH moved AS (SELECT DISTINCT partnership_id FROM {rm}.segmentations WHERE at >= %(b)s) "
            "SELECT partnership_id::text, partner_name, (extract(epoch FROM at) * 1000000)::bigint, now, future "
            "FROM ("
            " SELECT partnership_id, partner_name, at, version, now, future FROM {rm}.segmentations"
            " WHERE partnership_id IN (SELECT partnership_id FROM moved) AND at >= %(b)s"
            " UNION ALL"
            " SELECT m.partnership_id, b.partner_name, b.at, b.version, b.now, b.future FROM moved m"
            " CROSS JOIN LATERAL (SELECT partner_name, at, version, now, future FROM {rm}.segmentations"
            "  WHERE partnership_id = m.partnership_id AND at < %(b)s ORDER BY at DESC, version DESC LIMIT 1) b"
            ") s ORDER BY partnership_id, at, version"
        ).format(rm=rm),
        {"b": spans[0][1]},
    )
    histories: dict[str, list[tuple[int, str, str, str]]] = {}
    for pid, name, at, now, future in rows:  # at: microseconds since the epoch
        histories.setdefault(pid, []).append((at, name, now, future))
    moments = {pid: [h[0] for h in history] for pid, history in histories.items()}
    in_order = sorted(histories)
    found = []
    for label, begin, finish in spans:
        first_moment, next_moment, until = _micros(begin), _micros(finish), _micros(end)
        for pid in in_order:
            history = histories[pid]
            ats = moments[pid]
            before = bisect_left(ats, first_moment)  # how many took effect before the quarter
            # At the quarter's end, or at ``end`` (inclusive) for a quarter still running.
            after = bisect_right(ats, until) if finish > end else bisect_left(ats, next_moment)
            if after == 0:
                continue
            _, name, now, future = history[after - 1]
            cell_before = history[before - 1][2:] if before else None
            if cell_before != (now, future):
                found.append(
                    Move(
                        label,
                        pid,
                        name,
                        (Importance(cell_before[0]), Importance(cell_before[1])) if cell_before else None,
                        (Importance(now), Importance(future)),
                    )
                )
    return found


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, and quick to compare."""
    return (moment - EPOCH) // timedelta(microseconds=1)
