"""Rebuild read models: replay the event store into new versions, then swap them in.

The API keeps answering from the old versions while the new ones fill. Every chosen
projection is rebuilt in one pass over the history: each page of events is read and
decoded once (the next page is read while this one is applied) and applied to every
new version in one transaction, with whole-batch statements. On a large history the
pass is divided by aggregate between worker processes (see rebuild_workers). The swap
takes the active-version rows FOR UPDATE (live projector batches hold them FOR SHARE),
applies whatever arrived meanwhile, and points the rows at the new versions in one
transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.rebuild_workers import (
    EventSource,
    Progress,
    default_workers,
    replay,
    replay_in_workers,
    splittable,
)
from projections.registry import Projection, create_version


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
    (built,) = await rebuild_many(database_url, base, [projection], progress, keep_previous, source=source)
    return built


async def rebuild_many(
    database_url: str,
    base: str,
    projections: Sequence[Projection],
    progress: Progress,
    keep_previous: bool = True,
    *,
    source: EventSource,
    workers: int | None = None,
) -> list[tuple[int, str]]:
    """Rebuilds every projection given in one pass over ``source``; returns each one's
    (new version, its schema), in the order given. ``workers``: processes replaying
    shares of the history by aggregate (None: one per core on a large history, else 1;
    a source without ``shares``, or projections that cannot be pickled, use 1)."""
    # Held for the whole rebuild: a second one would compute the same new version number
    # and drop the schema the first one is filling (or has already swapped in).
    guard = await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    try:
        for projection in projections:
            locked = await (
                await guard.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked",
                    (f"verkosto-rebuild:{base}:{projection.name}",),
                )
            ).fetchone()
            if not locked or not locked["locked"]:
                raise RebuildRunning(f"a rebuild of {projection.name} is already running")
        return await _rebuild(database_url, base, projections, progress, keep_previous, source, workers)
    finally:
        await guard.close()


class RebuildRunning(RuntimeError):
    pass


async def _rebuild(
    database_url: str,
    base: str,
    projections: Sequence[Projection],
    progress: Progress,
    keep_previous: bool,
    source: EventSource,
    workers: int | None,
) -> list[tuple[int, str]]:
    ids = sql.Identifier(base)
    versions: dict[str, int] = {}
    schemas: dict[str, str] = {}
    with psycopg.connect(database_url, autocommit=True) as sync_conn:
        for projection in projections:
            row = sync_conn.execute(
                sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s").format(ids), (projection.name,)
            ).fetchone()
            versions[projection.name] = (row[0] if row else 0) + 1
            schemas[projection.name] = create_version(sync_conn, base, projection, versions[projection.name])
    last = await asyncio.to_thread(source.last_position)
    count = default_workers(last) if workers is None else workers
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        if count > 1 and splittable(source, projections):
            openers = source.shares(count)  # type: ignore[attr-defined]
            await asyncio.to_thread(
                replay_in_workers, database_url, base, projections, schemas, openers, last, progress
            )
            reached = last
        else:
            reached = await replay(conn, source, base, projections, schemas, 0, last, progress)
        async with conn.transaction():
            await conn.execute(
                sql.SQL(
                    "SELECT version FROM {}.rm_active WHERE projection = ANY(%s) ORDER BY projection FOR UPDATE"
                ).format(ids),
                ([p.name for p in projections],),
            )
            await replay(conn, source, base, projections, schemas, reached, None, progress)
            for projection in projections:
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.rm_active (projection, version, rm_schema) VALUES (%s, %s, %s) "
                        "ON CONFLICT (projection) DO UPDATE SET version = EXCLUDED.version, "
                        "rm_schema = EXCLUDED.rm_schema, activated_at = now()"
                    ).format(ids),
                    (projection.name, versions[projection.name], schemas[projection.name]),
                )
    for projection in projections:
        version = versions[projection.name]
        _drop_old_versions(database_url, base, projection.name, keep_from=version - 1 if keep_previous else version)
    return [(versions[p.name], schemas[p.name]) for p in projections]


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


def rebuild_many_sync(
    database_url: str,
    base: str,
    projections: Sequence[Projection],
    progress: Progress,
    keep_previous: bool = True,
    *,
    source: EventSource,
    workers: int | None = None,
) -> list[tuple[int, str]]:
    return asyncio.run(
        rebuild_many(database_url, base, projections, progress, keep_previous, source=source, workers=workers)
    )
