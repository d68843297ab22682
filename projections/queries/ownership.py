"""Who owned a partnership, when: the ownership timeline as the read model holds it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.timeline import in_force_at


def tenures(
    conn: psycopg.Connection[Any], rm: sql.Identifier, partnership_id: UUID, known_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The timeline in valid time; a back-dated transfer lands where it took effect. With
    ``known_at``, only what had been recorded by then."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT owner_unit, steward, valid_from, recorded_at, reason, actor, version, position "
                "FROM {}.tenures WHERE partnership_id = %s AND (%s::timestamptz IS NULL OR recorded_at <= %s) "
                "ORDER BY valid_from, version"
            ).format(rm),
            (partnership_id, known_at, known_at),
        ).fetchall()
    for index, row in enumerate(rows):
        row["valid_until"] = rows[index + 1]["valid_from"] if index + 1 < len(rows) else None
    return rows


def tenure_at(timeline: Sequence[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    """The tenure in force at ``moment``; ``timeline`` as ``tenures`` returns it."""
    return in_force_at(timeline, moment, key=lambda tenure: tenure["valid_from"])
