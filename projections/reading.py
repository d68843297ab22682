"""Reading read models: which version is active, how far it got, waiting for a write."""

from __future__ import annotations

import time
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


def wait_until_applied(
    conn: psycopg.Connection[Any], rm: sql.Identifier, aggregate_id: UUID, version: int, wait_s: float
) -> bool:
    """Polls briefly until the projection has applied this aggregate version."""
    deadline = time.monotonic() + wait_s
    while applied(conn, rm, aggregate_id)[0] < version:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
