"""Reading read models' tracking: what an aggregate has had applied, and how far it got."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row


def applied(conn: psycopg.Connection[Any], rm: sql.Identifier, aggregate_id: UUID) -> tuple[int, int]:
    """(version, position) of the last event of this aggregate the projection applied."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT version, position FROM {}.applied WHERE aggregate_id = %s").format(rm),
            (aggregate_id,),
        ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def position(conn: psycopg.Connection[Any], rm: sql.Identifier) -> int:
    """The furthest event (global position) this projection version has applied."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(sql.SQL("SELECT coalesce(max(position), 0) FROM {}.positions").format(rm)).fetchone()
    return int(row[0]) if row else 0
