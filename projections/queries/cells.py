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


def first_members(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, per_cell: int
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """The first ``per_cell`` members of every cell, by partnership id."""
    members: dict[tuple[str, str], list[dict[str, str]]] = {cell: [] for cell in CELLS}
    if per_cell == 0:
        return members
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT now, future, partnership_id, partner_name FROM ("
                " SELECT now, future, partnership_id::text, partner_name,"
                " row_number() OVER (PARTITION BY now, future ORDER BY partnership_id) AS n"
                " FROM {}.segmentations WHERE " + _CURRENT + ") c WHERE n <= %(m)s ORDER BY now, future, n"
            ).format(rm),
            {"t": as_of, "m": per_cell},
        ).fetchall()
    for r in rows:
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
    matrix's order."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT partnership_id::text, partner_name, now || '/' || future AS cell FROM {}.segmentations "
                "WHERE " + _CURRENT + " AND array_position(%(r)s::text[], future) > array_position(%(r)s::text[], now) "
                "ORDER BY array_position(%(r)s::text[], now), array_position(%(r)s::text[], future), partnership_id "
                "LIMIT %(n)s"
            ).format(rm),
            {"t": as_of, "r": RANKS, "n": limit},
        ).fetchall()
    return rows


def moves(conn: psycopg.Connection[Any], rm: sql.Identifier, start: datetime, end: datetime) -> list[Move]:
    """What domain.portfolio.drift answers (tests hold them equal), over only the
    partnerships that can have moved: those segmented since the first quarter began (a
    cell changes only by a segmentation), each cell found by bisection."""
    spans = quarters(start, end)
    if not spans:
        return []
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT partnership_id::text, partner_name, (extract(epoch FROM at) * 1000000)::bigint, now, future "
            "FROM {rm}.segmentations "
            "WHERE partnership_id = ANY(ARRAY(SELECT DISTINCT partnership_id FROM {rm}.segmentations WHERE at >= %s)) "
            "ORDER BY partnership_id, at, version"
        ).format(rm=rm),
        (spans[0][1],),
    )
    histories: dict[str, list[tuple[int, str, str, str]]] = {}
    for pid, name, at, now, future in rows:  # at: microseconds since the epoch
        histories.setdefault(pid, []).append((at, name, now, future))
    moments = {pid: [h[0] for h in history] for pid, history in histories.items()}
    found = []
    for label, begin, finish in spans:
        first_moment, next_moment, until = _micros(begin), _micros(finish), _micros(end)
        for pid in sorted(histories):
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
