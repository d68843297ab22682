"""Ownership timeline: who owned each partnership, from when (valid time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


class OwnershipProjection:
    name = "ownership"
    tables = ("tenures",)
    ddl = """
    -- One row per tenure start, in valid time (occurred_at).
    CREATE TABLE IF NOT EXISTS {rm}.tenures (
        partnership_id uuid NOT NULL,
        version        bigint NOT NULL,
        valid_from     timestamptz NOT NULL,
        recorded_at    timestamptz NOT NULL,
        owner_unit     text NOT NULL,
        steward        text NOT NULL,
        reason         text NOT NULL,
        actor          text NOT NULL,
        position       bigint NOT NULL,
        PRIMARY KEY (partnership_id, version)
    );
    CREATE INDEX IF NOT EXISTS tenures_valid_from ON {rm}.tenures (partnership_id, valid_from, version);
    CREATE INDEX IF NOT EXISTS tenures_steward ON {rm}.tenures (steward, valid_from);
    """

    async def apply(
        self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[dict[str, Any]]
    ) -> None:
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
            await cur.executemany(
                sql.SQL(
                    "INSERT INTO {}.tenures (partnership_id, version, valid_from, recorded_at, "
                    "owner_unit, steward, reason, actor, position) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ).format(rm),
                rows,
            )


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
    current = None
    for tenure in timeline:
        if tenure["valid_from"] > moment:
            break
        current = tenure
    return current
