"""Reading read models' tracking: what an aggregate has had applied, and how far it got."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


def applied(conn: psycopg.Connection[Any], rm: sql.Identifier, aggregate_id: UUID) -> tuple[int, int]:
    """(version, position) of the last event of this aggregate the projection applied."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT version, position FROM {}.applied WHERE aggregate_id = %s").format(rm),
            (aggregate_id,),
        ).fetchone()
    return (row["version"], row["position"]) if row else (0, 0)


def position(conn: psycopg.Connection[Any], rm: sql.Identifier) -> int:
    """The furthest event (global position) this projection version has applied."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT coalesce(max(position), 0) AS position FROM {}.positions").format(rm)
        ).fetchone()
    return int(row["position"]) if row else 0


def partition_positions(conn: psycopg.Connection[Any], rm: sql.Identifier) -> dict[int, tuple[int, int]]:
    """Per partition (-1: replayed by a rebuild), the furthest (Kafka offset, position)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL("SELECT partition, kafka_offset, position FROM {}.positions").format(rm)).fetchall()
    return {int(r["partition"]): (int(r["kafka_offset"]), int(r["position"])) for r in rows}


def parked(conn: psycopg.Connection[Any], rm: sql.Identifier) -> tuple[int, str | None]:
    """How many events this projection version has parked, and why the first one was."""
    with conn.cursor(row_factory=dict_row) as cur:
        counted = cur.execute(sql.SQL("SELECT count(*) AS n FROM {}.parked").format(rm)).fetchone()
        count = counted["n"] if counted else 0
        first = cur.execute(
            sql.SQL(
                "SELECT position, aggregate_id, version, error_class, error FROM {}.parked "
                "WHERE error_class <> 'ParkedEarlierEvent' ORDER BY position LIMIT 1"
            ).format(rm)
        ).fetchone()
    if first is None:
        return int(count), None
    return int(count), (
        f"position {first['position']} ({first['aggregate_id']} v{first['version']}): "
        f"{first['error_class']}: {first['error']}"
    )


def read_documents(
    conn: psycopg.Connection[Any], rm: sql.Identifier, table: str = "documents"
) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL("SELECT aggregate_id::text AS id, doc FROM {}.{} ORDER BY aggregate_id").format(
                rm, sql.Identifier(table)
            )
        ).fetchall()
    return {r["id"]: r["doc"] for r in rows}
