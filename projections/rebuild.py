"""Rebuild a read model: replay the event store into a new version, then swap it in.

The API keeps answering from the old version while the new one fills. The swap takes
the active-version row FOR UPDATE (live projector batches hold it FOR SHARE), applies
whatever arrived meanwhile, and points the row at the new version in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from projections.registry import Projection, create_version
from projections.tracking import REPLAY_PARTITION, Delivered, Tracker
from services.privacy import KeyStore, unseal_event
from services.published import published_event

PAGE = 5_000
Progress = Callable[[int, int], None]  # (position reached, last position)


async def _replay(
    conn: psycopg.AsyncConnection[Any], database_url: str, base: str, projection: Projection, schema: str,
    after: int, until: int | None, progress: Progress,
) -> int:
    keys = KeyStore(database_url, base)  # read models hold what was revealed, never ciphertext
    try:
        return await _replay_with(conn, keys, base, projection, schema, after, until, progress)
    finally:
        keys.close()


async def _replay_with(
    conn: psycopg.AsyncConnection[Any], keys: KeyStore, base: str, projection: Projection, schema: str,
    after: int, until: int | None, progress: Progress,
) -> int:
    tracker = Tracker(base)
    events = sql.Identifier(base)
    reveal = (lambda topic, state: unseal_event(topic, state, keys))  # noqa: E731
    while True:
        async with conn.cursor() as cur:
            await cur.execute(
                sql.SQL(
                    "SELECT notification_id, topic, state FROM {}.verkosto_events "
                    "WHERE notification_id > %s AND (%s::bigint IS NULL OR notification_id <= %s) "
                    "ORDER BY notification_id LIMIT %s"
                ).format(events),
                (after, until, until, PAGE),
            )
            rows = await cur.fetchall()
        if not rows:
            return after
        batch = [Delivered(REPLAY_PARTITION, n, published_event(topic, bytes(state), n, reveal))
                 for n, topic, state in rows]
        await tracker.apply(conn, [projection], batch, schemas={projection.name: schema})
        after = rows[-1][0]
        progress(after, until or after)


async def rebuild(
    database_url: str, base: str, projection: Projection, progress: Progress, keep_previous: bool = True
) -> tuple[int, str]:
    """Returns (new version, its schema)."""
    # Held for the whole rebuild: a second one would compute the same new version number
    # and drop the schema the first one is filling (or has already swapped in).
    guard = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        locked = await (await guard.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (f"verkosto-rebuild:{base}:{projection.name}",)
        )).fetchone()
        if not locked or not locked[0]:
            raise RebuildRunning(f"a rebuild of {projection.name} is already running")
        return await _rebuild(database_url, base, projection, progress, keep_previous)
    finally:
        await guard.close()


class RebuildRunning(RuntimeError):
    pass


async def _rebuild(
    database_url: str, base: str, projection: Projection, progress: Progress, keep_previous: bool
) -> tuple[int, str]:
    ids = sql.Identifier(base)
    with psycopg.connect(database_url, autocommit=True) as sync_conn:
        row = sync_conn.execute(
            sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s").format(ids), (projection.name,)
        ).fetchone()
        version = (row[0] if row else 0) + 1
        schema = create_version(sync_conn, base, projection, version)
        last = sync_conn.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}.verkosto_events").format(ids)).fetchone()[0]  # type: ignore[index]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        reached = await _replay(conn, database_url, base, projection, schema, 0, last, progress)
        async with conn.transaction():
            await conn.execute(
                sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s FOR UPDATE").format(ids),
                (projection.name,),
            )
            await _replay(conn, database_url, base, projection, schema, reached, None, progress)
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
            suffix = schema[len(prefix):]
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
    database_url: str, base: str, projection: Projection, progress: Progress, keep_previous: bool = True
) -> tuple[int, str]:
    return asyncio.run(rebuild(database_url, base, projection, progress, keep_previous))
