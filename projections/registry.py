"""Versioned read-model storage: one PostgreSQL schema per projection version.

Every version schema holds the projection's own tables plus its tracking: ``applied``
(the last version applied per aggregate, the redelivery guard), ``positions`` (per
partition, how far it got and when) and ``parked`` (events it could not apply).
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from contract.events import Published

TRACKING_DDL = """
CREATE TABLE IF NOT EXISTS {rm}.applied (
    aggregate_id uuid PRIMARY KEY,
    version      bigint NOT NULL,
    position     bigint NOT NULL
);
-- started_at: when this partition's first batch began; updated_at: when the latest ended.
CREATE TABLE IF NOT EXISTS {rm}.positions (
    partition    int PRIMARY KEY,
    kafka_offset bigint NOT NULL,
    position     bigint NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Events this version could not apply (an error tied to the data, not to the
-- infrastructure), and every later event of the same aggregate, which must wait for it to
-- keep the fold correct. ``event`` is the published JSON with every non-ASCII character
-- escaped, so any content (a NUL, a lone surrogate) is storable and round-trips exactly.
CREATE TABLE IF NOT EXISTS {rm}.parked (
    aggregate_id uuid NOT NULL,
    version      bigint NOT NULL,
    position     bigint NOT NULL,
    partition    int NOT NULL,
    kafka_offset bigint NOT NULL,
    event_type   text NOT NULL,
    error_class  text NOT NULL,
    error        text NOT NULL,
    event        text NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    retried_at   timestamptz,
    attempts     int NOT NULL DEFAULT 1,
    PRIMARY KEY (aggregate_id, version)
);
"""


class Projection(Protocol):
    name: str
    ddl: str  # CREATE statements with {rm} standing for the version's schema
    tables: tuple[str, ...]  # its own tables, in the order a content hash reads them
    # The contract names of the events it folds: only those are decoded for it, so an event
    # it does not use (or does not know yet) can never stop it.
    handles: frozenset[str]

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        """Applies events not seen before, each aggregate's in version order."""


def version_schema(base: str, name: str, version: int) -> str:
    return f"{base}__{name}_v{version}"


def create_version(conn: psycopg.Connection[Any], base: str, projection: Projection, version: int) -> str:
    name = version_schema(base, projection.name, version)
    rm = sql.Identifier(name).as_string(conn)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    conn.execute((TRACKING_DDL + projection.ddl).replace("{rm}", rm))  # type: ignore[arg-type]
    return name


def ensure_active(conn: psycopg.Connection[Any], base: str, projections: list[Projection]) -> None:
    """Gives every projection a first version if it has none (idempotent)."""
    for projection in projections:
        row = (
            conn.cursor(row_factory=dict_row)
            .execute(
                sql.SQL("SELECT rm_schema FROM {}.rm_active WHERE projection = %s").format(sql.Identifier(base)),
                (projection.name,),
            )
            .fetchone()
        )
        if row is None:
            schema = create_version(conn, base, projection, 1)
            conn.execute(
                sql.SQL("INSERT INTO {}.rm_active (projection, version, rm_schema) VALUES (%s, 1, %s)").format(
                    sql.Identifier(base)
                ),
                (projection.name, schema),
            )
        else:
            # New tables of a projection appear in its active version on upgrade.
            rm = sql.Identifier(row["rm_schema"]).as_string(conn)
            conn.execute((TRACKING_DDL + projection.ddl).replace("{rm}", rm))  # type: ignore[arg-type]


def active_schema(conn: psycopg.Connection[Any], base: str, name: str) -> sql.Identifier:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT rm_schema FROM {}.rm_active WHERE projection = %s").format(sql.Identifier(base)),
            (name,),
        ).fetchone()
    if row is None:
        raise LookupError(f"projection {name} has no active version; run `verkosto migrate`")
    return sql.Identifier(row["rm_schema"])
