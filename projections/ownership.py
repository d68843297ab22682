"""Ownership timeline: who owned each partnership, from when (valid time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row


class OwnershipProjection:
    name = "ownership"

    def __init__(self, schema: str) -> None:
        self.insert = sql.SQL(
            "INSERT INTO {}.rm_ownership (partnership_id, version, valid_from, recorded_at, "
            "owner_unit, steward, reason, actor, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(schema))

    async def apply(self, cur: psycopg.AsyncCursor[Any], events: Sequence[dict[str, Any]]) -> None:
        rows = [
            (
                e["aggregate_id"], e["version"], e["occurred_at"], e["recorded_at"],
                e["data"]["owner_unit"], e["data"]["steward"],
                e["data"].get("reason", "opened"), e["actor"], e["position"],
            )
            for e in events
            if e["type"] in ("partnership_opened", "ownership_transferred")
        ]
        if rows:
            await cur.executemany(self.insert, rows)


def tenures(conn: psycopg.Connection[Any], schema: str, partnership_id: UUID) -> list[dict[str, Any]]:
    """The timeline in valid time; a back-dated transfer lands where it took effect."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT owner_unit, steward, valid_from, recorded_at, reason, actor, version, position "
                "FROM {}.rm_ownership WHERE partnership_id = %s ORDER BY valid_from, version"
            ).format(sql.Identifier(schema)),
            (partnership_id,),
        ).fetchall()
    for index, row in enumerate(rows):
        row["valid_until"] = rows[index + 1]["valid_from"] if index + 1 < len(rows) else None
    return rows


def tenure_at(timeline: Sequence[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    current = None
    for tenure in timeline:
        if tenure["valid_from"] > moment:
            break
        current = tenure
    return current


def applied(conn: psycopg.Connection[Any], schema: str, aggregate_id: UUID) -> tuple[int, int]:
    """(version, position) of the last event of this aggregate the projection applied."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            sql.SQL(
                "SELECT version, position FROM {}.rm_applied "
                "WHERE projection = %s AND aggregate_id = %s"
            ).format(sql.Identifier(schema)),
            (OwnershipProjection.name, aggregate_id),
        ).fetchone()
    return (row[0], row[1]) if row else (0, 0)
