"""Rebuild a read model: replay the event store into a new version, then swap it in.

The API keeps answering from the old version while the new one fills. The swap takes
the active-version row FOR UPDATE (live projector batches hold it FOR SHARE), applies
whatever arrived meanwhile, and points the row at the new version in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.registry import Projection, create_version
from projections.tracking import REPLAY_PARTITION, Delivered, Tracker

PAGE = 5_000
Progress = Callable[[int, int], None]  # (position reached, last position)


class EventSource(Protocol):
    """The history a rebuild replays. The event store lives in the services layer, which
    this one does not import: its caller passes it in (services/replay.py's StoreHistory)."""

    def last_position(self) -> int:
        """The global position of the last recorded event (0 if none)."""
        ...

    def events_after(self, after: int, until: int | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` published events (contract.events.published_event, personal
        fields revealed: read models hold what was revealed, never ciphertext) after
        position ``after`` and up to ``until`` if given, in global order."""
        ...

    def close(self) -> None: ...


async def _replay(
    conn: psycopg.AsyncConnection[Any],
    source: EventSource,
    base: str,
    projection: Projection,
    schema: str,
    after: int,
    until: int | None,
    progress: Progress,
) -> int:
    tracker = Tracker(base)
    while True:
        events = await asyncio.to_thread(source.events_after, after, until, PAGE)
        if not events:
            return after
        batch = [Delivered(REPLAY_PARTITION, e["position"], e) for e in events]
        await tracker.apply(conn, [projection], batch, schemas={projection.name: schema})
        after = events[-1]["position"]
        progress(after, until or after)


async def rebuild(
    database_url: str,
    base: str,
    projection: Projection,
    progress: Progress,
    keep_previous: bool = True,
    *,
    source: EventSource,
) -> tuple[int, str]:
    """Returns (new version, its schema). ``source`` is the history to replay (see
    services/replay.py); the caller opens and closes it."""
    # Held for the whole rebuild: a second one would compute the same new version number
    # and drop the schema the first one is filling (or has already swapped in).
    guard = await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    try:
        locked = await (
            await guard.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (f"verkosto-rebuild:{base}:{projection.name}",)
            )
        ).fetchone()
        if not locked or not locked["locked"]:
            raise RebuildRunning(f"a rebuild of {projection.name} is already running")
        return await _rebuild(database_url, base, projection, progress, keep_previous, source)
    finally:
        await guard.close()


class RebuildRunning(RuntimeError):
    pass


async def _rebuild(
    database_url: str,
    base: str,
    projection: Projection,
    progress: Progress,
    keep_previous: bool,
    source: EventSource,
) -> tuple[int, str]:
    ids = sql.Identifier(base)
    with psycopg.connect(database_url, autocommit=True) as sync_conn:
        row = sync_conn.execute(
            sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s").format(ids), (projection.name,)
        ).fetchone()
        version = (row[0] if row else 0) + 1
        schema = create_version(sync_conn, base, projection, version)
    last = source.last_position()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        reached = await _replay(conn, source, base, projection, schema, 0, last, progress)
        async with conn.transaction():
            await conn.execute(
                sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s FOR UPDATE").format(ids),
                (projection.name,),
            )
            await _replay(conn, source, base, projection, schema, reached, None, progress)
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {}.rm_active (projection, version, rm_schema) VALUES (%s, %s, %s) "
                    "ON CONFLICT (projection) DO UPDATE SET version = EXCLUDED.version, "
                    "rm_schema = EXCLUDED.rm_schema, activated_at = now()"
                ).format(ids),
                (projection.name, version, schema),
            )
    _drop_old_versions(database_url, base, projection.name, keep_from=version - 1 if keep_previous else version)
    return version, schema


def _drop_old_versions(database_url: str, base: str, name: str, keep_from: int) -> None:
    """Keeps the previous version (for comparison or a quick switch back); drops older ones."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        prefix = f"{base}__{name}_v"
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
        ).fetchall():
            suffix = schema[len(prefix) :]
            if suffix.isdigit() and int(suffix) < keep_from:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def content_hash(conn: psycopg.Connection[Any], schema: str, projection: Projection) -> str:
    """A digest of a version's rows (its tables and what it applied), timestamps of
    processing excluded: equal for equal read models."""
    digest = hashlib.sha256()
    for table in (*projection.tables, "applied"):
        (text,) = conn.execute(
            sql.SQL("SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {}.{} t").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()  # type: ignore[misc]
        digest.update(table.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def rebuild_sync(
    database_url: str,
    base: str,
    projection: Projection,
    progress: Progress,
    keep_previous: bool = True,
    *,
    source: EventSource,
) -> tuple[int, str]:
    return asyncio.run(rebuild(database_url, base, projection, progress, keep_previous, source=source))
