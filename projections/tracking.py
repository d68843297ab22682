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
parked: they fail the batch, which the caller retries. The parking and retrying are
projections/parking.py's; the events, projections/delivered.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.adapt import PyFormat

from projections.delivered import Delivered as Delivered
from projections.delivered import typed_for
from projections.parking import BLOCKED, Parking, blocked_reason, describe, is_poison
from projections.registry import Projection

log = logging.getLogger(__name__)

REPLAY_PARTITION = -1  # positions row of events replayed from the event store (rebuilds)


class Tracker(Parking):
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
            rms = [sql.Identifier(schemas[projection.name]) for projection in projections]
            # Round trips, not rows, are the cost of a small batch (a live one holds a few
            # events): the guard is read for every projection in one statement, and what
            # was applied and how far it got written for every projection in one more.
            news = await self._fresh(cur, rms, keyed)
            done: list[tuple[sql.Identifier, list[Delivered]]] = []
            for projection, rm, (fresh, blocked) in zip(projections, rms, news, strict=True):
                if blocked:
                    await self._park(cur, projection.name, rm, [(d, BLOCKED, blocked_reason()) for d in blocked])
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

    async def _fresh(
        self,
        cur: Any,
        rms: Sequence[sql.Identifier],
        keyed: Sequence[tuple[UUID, int, Delivered]],
    ) -> list[tuple[list[Delivered], list[Delivered]]]:
        """For each version in ``rms``: (events not applied before, events not applied
        before whose aggregate has a parked event in that version and so must wait behind
        it). ``keyed`` is the batch as (aggregate id, version, event)."""
        # Only the guard rows that can turn an event away come back: an aggregate whose
        # applied version is below the batch's lowest of its versions takes every one of
        # them (the common case of a catch-up, which then reads back nothing).
        lowest: dict[UUID, int] = {}
        for aggregate_id, version, _ in keyed:
            if version < lowest.get(aggregate_id, version + 1):
                lowest[aggregate_id] = version
        parts = [
            sql.SQL(
                "SELECT {i}, a.aggregate_id, a.version, false FROM {rm}.applied a "
                "JOIN unnest(%(ids)b::uuid[], %(lows)b::bigint[]) AS b(aggregate_id, low) "
                "ON a.aggregate_id = b.aggregate_id AND a.version >= b.low UNION ALL "
                "SELECT DISTINCT {i}, aggregate_id, 0, true FROM {rm}.parked WHERE aggregate_id = ANY(%(ids)b)"
            ).format(i=sql.Literal(i), rm=rm)
            for i, rm in enumerate(rms)
        ]
        await cur.execute(sql.SQL(" UNION ALL ").join(parts), {"ids": list(lowest), "lows": list(lowest.values())})
        seen: list[dict[UUID, int]] = [{} for _ in rms]
        waiting: list[set[UUID]] = [set() for _ in rms]
        for i, aggregate_id, version, is_parked in await cur.fetchall():
            if is_parked:
                waiting[i].add(aggregate_id)
            else:
                seen[i][aggregate_id] = version
        news = []
        # What a version with no guard rows back takes: the batch, less repeats within it
        # (worked out once: a catch-up's batches are thousands of events, its versions many).
        untouched: tuple[list[Delivered], list[Delivered]] | None = None
        for applied, parked in zip(seen, waiting, strict=True):
            if not applied and not parked and untouched is not None:
                news.append(untouched)
                continue
            clean = not applied and not parked
            fresh, blocked = [], []
            for aggregate_id, version, delivered in keyed:
                if version > applied.get(aggregate_id, 0):
                    applied[aggregate_id] = version
                    (blocked if aggregate_id in parked else fresh).append(delivered)
            news.append((fresh, blocked))
            if clean:
                untouched = (fresh, blocked)
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
        # Usually every projection applied the same events: their guard rows then share
        # one set of arrays, sent once and in binary (psycopg's text dump of an array
        # escapes each element in Python).
        arrays: dict[tuple[int, ...], int] = {}
        for i, (rm, fresh) in enumerate(done):
            if fresh:
                same = arrays.setdefault(tuple(map(id, fresh)), i)
                if same == i:
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
                        a=sql.Placeholder(f"a{same}", PyFormat.BINARY),
                        v=sql.Placeholder(f"v{same}", PyFormat.BINARY),
                        p=sql.Placeholder(f"p{same}", PyFormat.BINARY),
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
