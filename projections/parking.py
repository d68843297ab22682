"""Parking what a projection cannot apply, and applying it again (see
projections/tracking.py's docstring): which errors are the event's own (``is_poison``),
how a failing batch is narrowed down to the events that fail, and ``retry_parked``."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from projections.delivered import Delivered, typed_for
from projections.registry import Projection

log = logging.getLogger("projections.tracking")  # the name these lines always had: filters on it hold

BLOCKED = "ParkedEarlierEvent"  # error_class of events waiting behind a parked one


def is_poison(error: BaseException) -> bool:
    """An error tied to the event's data, which trying again cannot cure: PostgreSQL
    refusing a value (class 22 data exceptions, e.g. a NUL; class 23 constraint
    violations), psycopg refusing to send one, or any exception the projection's own
    Python code raised (a missing key, a bad value). Connection, lock, timeout and other
    operational errors, server-side programming errors (a missing table, a syntax error:
    every event would fail alike) and memory or OS errors are not."""
    if isinstance(error, psycopg.DataError | psycopg.IntegrityError):
        return True
    if isinstance(error, psycopg.ProgrammingError):
        return error.sqlstate is None  # raised by psycopg itself, e.g. a value it cannot adapt
    if isinstance(error, psycopg.Error):
        return False
    return isinstance(error, Exception) and not isinstance(error, OSError | MemoryError)


def storable(text: str) -> str:
    """Text PostgreSQL accepts whatever it contains: NULs and lone surrogates escaped."""
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def describe(error: BaseException) -> tuple[str, str]:
    return type(error).__name__, storable(str(error))[:2000]


class Parking:
    """The tracker's parking and retrying, mixed into projections.tracking.Tracker."""

    base: sql.Identifier  # the base schema, whose rm_active names the versions

    async def _attempt(
        self,
        conn: psycopg.AsyncConnection[Any],
        cur: Any,
        projection: Projection,
        rm: sql.Identifier,
        events: Sequence[Delivered],
    ) -> BaseException | None:
        """Applies ``events`` in a savepoint: None if they applied, the poison error if
        not (nothing of theirs is kept); any other error propagates."""
        try:
            async with conn.transaction():
                await projection.apply(cur, rm, typed_for(projection, events))
        except Exception as error:
            if not is_poison(error):
                raise
            return error
        return None

    async def _apply_isolated(
        self,
        conn: psycopg.AsyncConnection[Any],
        cur: Any,
        projection: Projection,
        rm: sql.Identifier,
        fresh: Sequence[Delivered],
    ) -> list[Delivered]:
        """Applies what it can of ``fresh``, parks the rest; returns what was applied."""
        if await self._attempt(conn, cur, projection, rm, fresh) is None:
            return list(fresh)
        applied, parked = await self._per_aggregate(conn, cur, projection, rm, fresh)
        await self._park(cur, projection.name, rm, parked)
        return applied

    async def _per_aggregate(
        self,
        conn: psycopg.AsyncConnection[Any],
        cur: Any,
        projection: Projection,
        rm: sql.Identifier,
        events: Sequence[Delivered],
    ) -> tuple[list[Delivered], list[tuple[Delivered, str, str]]]:
        """Each aggregate's events in a savepoint, and if they fail, one by one: the first
        that fails and every later one of its aggregate are returned to be parked."""
        groups: dict[UUID, list[Delivered]] = {}
        for delivered in events:
            groups.setdefault(delivered.aggregate_id, []).append(delivered)
        applied: list[Delivered] = []
        parked: list[tuple[Delivered, str, str]] = []
        for group in groups.values():
            if len(groups) > 1 and await self._attempt(conn, cur, projection, rm, group) is None:
                applied.extend(group)
                continue
            for index, delivered in enumerate(group):
                error = await self._attempt(conn, cur, projection, rm, [delivered])
                if error is None:
                    applied.append(delivered)
                    continue
                error_class, message = describe(error)
                log.error(
                    "projection %s parked the event at position %s (aggregate %s, version %s; partition %s, "
                    "offset %s): %s: %s",
                    projection.name,
                    delivered.position,
                    delivered.aggregate_id,
                    delivered.version,
                    delivered.partition,
                    delivered.offset,
                    error_class,
                    message,
                    extra={"partition": delivered.partition, "offset": delivered.offset},
                )
                parked.append((delivered, error_class, message))
                parked.extend((later, BLOCKED, blocked_reason(delivered.version)) for later in group[index + 1 :])
                break
        return applied, parked

    async def _park(
        self, cur: Any, name: str, rm: sql.Identifier, parked: Sequence[tuple[Delivered, str, str]]
    ) -> None:
        if not parked:
            return
        log.warning("projection %s: %d event(s) parked", name, len(parked))
        await cur.executemany(
            sql.SQL(
                "INSERT INTO {}.parked (aggregate_id, version, position, partition, kafka_offset, event_type, "
                "error_class, error, event) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (aggregate_id, version) DO NOTHING"
            ).format(rm),
            [
                (
                    d.aggregate_id,
                    d.version,
                    d.position,
                    d.partition,
                    d.offset,
                    storable(str(d.event.get("type"))),
                    error_class,
                    message,
                    json.dumps(d.event, ensure_ascii=True),
                )
                for d, error_class, message in parked
            ],
        )

    async def _remember(self, cur: Any, rm: sql.Identifier, fresh: Sequence[Delivered]) -> None:
        last: dict[UUID, Delivered] = {}
        for delivered in fresh:
            last[delivered.aggregate_id] = delivered
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.applied AS a (aggregate_id, version, position) "
                "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET "
                "version = GREATEST(a.version, EXCLUDED.version), position = GREATEST(a.position, EXCLUDED.position)"
            ).format(rm),
            (list(last), [d.version for d in last.values()], [d.position for d in last.values()]),
        )

    async def retry_parked(self, conn: psycopg.AsyncConnection[Any], projection: Projection) -> tuple[int, int]:
        """Applies the active version's parked events again, each aggregate's in version
        order; clears those that apply and keeps the rest with the new reason. Holds the
        version's active row FOR UPDATE, so no projector batch interleaves. Returns
        (cleared, still parked)."""
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                sql.SQL("SELECT rm_schema FROM {}.rm_active WHERE projection = %s FOR UPDATE").format(self.base),
                (projection.name,),
            )
            row = await cur.fetchone()
            if row is None:
                raise LookupError(f"projection {projection.name} has no active version; run `verkosto migrate`")
            rm = sql.Identifier(row[0])
            await cur.execute(
                sql.SQL(
                    "SELECT partition, kafka_offset, event FROM {}.parked ORDER BY position, aggregate_id, version"
                ).format(rm)
            )
            waiting = [Delivered(p, o, json.loads(e)) for p, o, e in await cur.fetchall()]
            if not waiting:
                return 0, 0
            ids = list({d.aggregate_id for d in waiting})
            await cur.execute(
                sql.SQL("SELECT aggregate_id, version FROM {}.applied WHERE aggregate_id = ANY(%s)").format(rm), (ids,)
            )
            done = {aggregate_id: version for aggregate_id, version in await cur.fetchall()}
            stale = [d for d in waiting if d.version <= done.get(d.aggregate_id, 0)]  # applied meanwhile
            pending = sorted(
                (d for d in waiting if d.version > done.get(d.aggregate_id, 0)),
                key=lambda d: (d.aggregate_id, d.version),
            )
            applied, parked = await self._per_aggregate(conn, cur, projection, rm, pending)
            if applied:
                await self._remember(cur, rm, applied)
            cleared = [*stale, *applied]
            if cleared:
                await cur.execute(
                    sql.SQL(
                        "DELETE FROM {}.parked p USING unnest(%s::uuid[], %s::bigint[]) AS c(a, v) "
                        "WHERE p.aggregate_id = c.a AND p.version = c.v"
                    ).format(rm),
                    ([d.aggregate_id for d in cleared], [d.version for d in cleared]),
                )
            if parked:
                await cur.executemany(
                    sql.SQL(
                        "UPDATE {}.parked SET error_class = %s, error = %s, retried_at = clock_timestamp(), "
                        "attempts = attempts + 1 WHERE aggregate_id = %s AND version = %s"
                    ).format(rm),
                    [(error_class, message, d.aggregate_id, d.version) for d, error_class, message in parked],
                )
        return len(cleared), len(parked)


def blocked_reason(version: int | None = None) -> str:
    which = f"version {version}" if version is not None else "an earlier event"
    return f"waits for {which} of this aggregate, which is parked"
