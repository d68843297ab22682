"""Who owned a partnership or a network, when: the ownership timelines as the read model
holds them, and the one answer both kinds' ``owners?at=&known_at=`` give."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.timeline import in_force_at
from projections.ownership import TENURE_TABLES
from projections.queries.reading import applied

Owned = Literal["partnership", "network"]


def tenures(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    aggregate_id: UUID,
    known_at: datetime | None = None,
    kind: Owned = "partnership",
) -> list[dict[str, Any]]:
    """The timeline in valid time; a back-dated transfer lands where it took effect. With
    ``known_at``, only what had been recorded by then."""
    table, key = TENURE_TABLES[kind]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT owner_unit, steward, valid_from, recorded_at, reason, actor, version, position "
                "FROM {}.{} WHERE {} = %s AND (%s::timestamptz IS NULL OR recorded_at <= %s) "
                "ORDER BY valid_from, version"
            ).format(rm, sql.Identifier(table), sql.Identifier(key)),
            (aggregate_id, known_at, known_at),
        ).fetchall()
    for index, row in enumerate(rows):
        row["valid_until"] = rows[index + 1]["valid_from"] if index + 1 < len(rows) else None
    return rows


def tenure_at(timeline: Sequence[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    """The tenure in force at ``moment``; ``timeline`` as ``tenures`` returns it."""
    return in_force_at(timeline, moment, key=lambda tenure: tenure["valid_from"])


def owners(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    kind: Owned,
    aggregate_id: UUID,
    at: datetime | None,
    known_at: datetime | None,
) -> dict[str, Any]:
    """The answer to ``owners?at=&known_at=``: ``<kind>_id``, the projection's position for
    it, and the whole timeline (``owners``) or the owner at ``at`` (``owner``), by what
    had been recorded at ``known_at`` (default: all of it)."""
    timeline = tenures(conn, rm, aggregate_id, known_at, kind)
    _, position = applied(conn, rm, aggregate_id)
    answer: dict[str, Any] = {f"{kind}_id": aggregate_id, "position": position}
    if known_at is not None:
        answer["known_at"] = known_at
    if at is None:
        answer["owners"] = timeline
    else:
        answer["at"] = at
        answer["owner"] = tenure_at(timeline, at)
    return answer
