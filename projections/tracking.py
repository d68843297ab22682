"""Applies batches of published events to read models, exactly once per projection.

Each batch is one transaction: the read-model writes, the per-aggregate versions applied
(the redelivery guard) and the per-partition positions commit together or not at all.
The batch also holds the active-version rows in share mode, so a rebuild's swap waits
for it and no batch is split across two versions.

No single event stops the projector. If a projection cannot apply an event for a reason
tied to the data (see ``is_poison``), the batch is rolled back and applied again with
every projection in a savepoint; a projection that fails again is retried aggregate by
aggregate, then event by event, in savepoints of their own. The event that fails is
parked in the version's ``parked`` table with the reason, and so is every later event of
the same aggregate for that projection (its fold would be wrong without the parked one),
until ``retry_parked`` applies them. Every other aggregate flows, and the positions move
past parked events. Errors of the infrastructure (connections, locks, timeouts) are not
parked: they fail the batch, which the caller retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from contract.events import Published
from projections.registry import Projection

log = logging.getLogger(__name__)

REPLAY_PARTITION = -1  # positions row of events replayed from the event store (rebuilds)
_BLOCKED = "ParkedEarlierEvent"  # error_class of events waiting behind a parked one


@dataclass(frozen=True)
class Delivered:
    """One event as it came off the bus (or out of the event store, in a rebuild)."""

    partition: int
    offset: int
    event: dict[str, Any]

    @cached_property
    def aggregate_id(self) -> UUID:  # parsed once, though every projection asks
        return UUID(self.event["aggregate_id"])

    @property
    def version(self) -> int:
        return int(self.event["version"])

    @property
    def position(self) -> int:
        return int(self.event["position"])

    @cached_property
    def published(self) -> Published:
        """The event typed, decoded once for every projection. A stored event that no
        longer decodes raises here, inside the projection's turn, and is parked."""
        return Published.of(self.event)


def typed_for(projection: Projection, events: Sequence[Delivered]) -> list[Published]:
    """The events this projection folds, decoded; the rest (other types, and types this
    release does not know yet) are only remembered as applied."""
    return [d.published for d in events if d.event.get("type") in projection.handles]


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


class Tracker:
    def __init__(self, schema: str) -> None:
        self.base = sql.Identifier(schema)

    async def apply(
        self,
        conn: psycopg.AsyncConnection[Any],
        projections: Sequence[Projection],
        batch: Sequence[Delivered],
        schemas: dict[str, str] | None = None,
    ) -> int:
        """Returns how many (projection, event) pairs were new and applied (parked ones
        not counted). ``schemas`` overrides the active versions (a rebuild writes to its
        new version)."""
        try:
            return await self._apply(conn, projections, batch, schemas, careful=False)
        except Exception as error:
            if not is_poison(error):
                raise
            log.warning(
                "a projection could not apply a batch (%s: %s); isolating the events it cannot apply", *describe(error)
            )
        return await self._apply(conn, projections, batch, schemas, careful=True)

    async def _apply(
        self,
        conn: psycopg.AsyncConnection[Any],
        projections: Sequence[Projection],
        batch: Sequence[Delivered],
        schemas: dict[str, str] | None,
        careful: bool,
    ) -> int:
        applied_total = 0
        async with conn.transaction(), conn.cursor() as cur:
            if schemas is None:
                await cur.execute(sql.SQL("SELECT projection, rm_schema FROM {}.rm_active FOR SHARE").format(self.base))
                schemas = {row[0]: row[1] for row in await cur.fetchall()}
            # Parsed once for every projection: this loop is per event, on every batch.
            keyed = [(d.aggregate_id, d.version, d) for d in batch]
            ids = list({aggregate_id for aggregate_id, _, _ in keyed})
            rms = [sql.Identifier(schemas[projection.name]) for projection in projections]
            # Round trips, not rows, are the cost of a small batch (a live one holds a few
            # events): the guard is read for every projection in one statement, and what
            # was applied and how far it got written for every projection in one more.
            news = await self._fresh(cur, rms, keyed, ids)
            done: list[tuple[sql.Identifier, list[Delivered]]] = []
            for projection, rm, (fresh, blocked) in zip(projections, rms, news, strict=True):
                if blocked:
                    await self._park(cur, projection.name, rm, [(d, _BLOCKED, _waiting()) for d in blocked])
                if fresh and not careful:
                    await projection.apply(cur, rm, typed_for(projection, fresh))
                elif fresh:
                    fresh = await self._apply_isolated(conn, cur, projection, rm, fresh)
                done.append((rm, fresh))
                applied_total += len(fresh)
            # Positions last: each version has one row per partition, which concurrent
            # writers (a rebuild's workers) update; taken at the end, its lock is held
            # only for the commit, not while the other projections apply.
            await self._settle(cur, done, batch)
        return applied_total

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
                parked.extend((later, _BLOCKED, _waiting(delivered.version)) for later in group[index + 1 :])
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

    async def _fresh(
        self,
        cur: Any,
        rms: Sequence[sql.Identifier],
        keyed: Sequence[tuple[UUID, int, Delivered]],
        ids: list[UUID],
    ) -> list[tuple[list[Delivered], list[Delivered]]]:
        """For each version in ``rms``: (events not applied before, events not applied
        before whose aggregate has a parked event in that version and so must wait behind
        it). ``keyed`` is the batch as (aggregate id, version, event); ``ids`` its
        distinct aggregates."""
        parts = [
            sql.SQL(
                "SELECT {i}, aggregate_id, version, false FROM {rm}.applied "
                "WHERE aggregate_id = ANY(%(ids)s) UNION ALL "
                "SELECT DISTINCT {i}, aggregate_id, 0, true FROM {rm}.parked WHERE aggregate_id = ANY(%(ids)s)"
            ).format(i=sql.Literal(i), rm=rm)
            for i, rm in enumerate(rms)
        ]
        await cur.execute(sql.SQL(" UNION ALL ").join(parts), {"ids": ids})
        seen: list[dict[UUID, int]] = [{} for _ in rms]
        waiting: list[set[UUID]] = [set() for _ in rms]
        for i, aggregate_id, version, is_parked in await cur.fetchall():
            if is_parked:
                waiting[i].add(aggregate_id)
            else:
                seen[i][aggregate_id] = version
        news = []
        for applied, parked in zip(seen, waiting, strict=True):
            fresh, blocked = [], []
            for aggregate_id, version, delivered in keyed:
                if version > applied.get(aggregate_id, 0):
                    applied[aggregate_id] = version
                    (blocked if aggregate_id in parked else fresh).append(delivered)
            news.append((fresh, blocked))
        return news

    async def _settle(
        self, cur: Any, done: Sequence[tuple[sql.Identifier, Sequence[Delivered]]], batch: Sequence[Delivered]
    ) -> None:
        """Remembers what each version applied and advances its positions past the batch,
        for every version in one statement (data-modifying CTEs all run)."""
        furthest: dict[int, Delivered] = {}
        for delivered in batch:
            known = furthest.get(delivered.partition)
            if known is None or delivered.offset > known.offset:
                furthest[delivered.partition] = delivered
        params: dict[str, Any] = {
            "partitions": list(furthest),
            "offsets": [d.offset for d in furthest.values()],
            "positions": [d.position for d in furthest.values()],
        }
        steps = []
        for i, (rm, fresh) in enumerate(done):
            if fresh:
                last: dict[UUID, Delivered] = {}
                for delivered in fresh:
                    last[delivered.aggregate_id] = delivered
                params[f"a{i}"] = list(last)
                params[f"v{i}"] = [d.version for d in last.values()]
                params[f"p{i}"] = [d.position for d in last.values()]
                steps.append(
                    sql.SQL(
                        "{name} AS (INSERT INTO {rm}.applied AS a (aggregate_id, version, position) "
                        "SELECT * FROM unnest({a}::uuid[], {v}::bigint[], {p}::bigint[]) "
                        "ON CONFLICT (aggregate_id) DO UPDATE SET "
                        "version = GREATEST(a.version, EXCLUDED.version), "
                        "position = GREATEST(a.position, EXCLUDED.position) RETURNING 1)"
                    ).format(
                        name=sql.Identifier(f"applied{i}"),
                        rm=rm,
                        a=sql.Placeholder(f"a{i}"),
                        v=sql.Placeholder(f"v{i}"),
                        p=sql.Placeholder(f"p{i}"),
                    )
                )
            # The offset follows the furthest position: a topic recreated under the same
            # name (offsets from 0 again) refills events already applied, and once it
            # brings new ones their offsets replace the old topic's, so lag by offsets
            # stays truthful.
            steps.append(
                sql.SQL(
                    "{name} AS (INSERT INTO {rm}.positions AS p (partition, kafka_offset, position) "
                    "SELECT * FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[], %(positions)s::bigint[]) "
                    "ON CONFLICT (partition) DO UPDATE SET "
                    "kafka_offset = CASE WHEN EXCLUDED.position >= p.position THEN EXCLUDED.kafka_offset "
                    "ELSE p.kafka_offset END, "
                    "position = GREATEST(p.position, EXCLUDED.position), updated_at = clock_timestamp() RETURNING 1)"
                ).format(name=sql.Identifier(f"positions{i}"), rm=rm)
            )
        await cur.execute(sql.SQL("WITH {} SELECT 1").format(sql.SQL(", ").join(steps)), params)

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


def _waiting(version: int | None = None) -> str:
    which = f"version {version}" if version is not None else "an earlier event"
    return f"waits for {which} of this aggregate, which is parked"
