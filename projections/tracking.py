"""Applies batches of published events to read models, exactly once per projection.

Each batch is one transaction: the read-model writes, the per-aggregate versions applied
(the redelivery guard) and the per-partition positions commit together or not at all.
The batch also holds the active-version rows in share mode, so a rebuild's swap waits
for it and no batch is split across two versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from projections.registry import Projection

REPLAY_PARTITION = -1  # positions row of events replayed from the event store (rebuilds)


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
        """Returns how many (projection, event) pairs were new. ``schemas`` overrides the
        active versions (a rebuild writes to its new version)."""
        applied_total = 0
        async with conn.transaction(), conn.cursor() as cur:
            if schemas is None:
                await cur.execute(
                    sql.SQL("SELECT projection, rm_schema FROM {}.rm_active FOR SHARE").format(self.base)
                )
                schemas = {row[0]: row[1] for row in await cur.fetchall()}
            for projection in projections:
                rm = sql.Identifier(schemas[projection.name])
                fresh = await self._fresh(cur, rm, batch)
                if fresh:
                    await projection.apply(cur, rm, [d.event for d in fresh])
                    await self._remember(cur, rm, fresh)
                await self._advance(cur, rm, batch)
                applied_total += len(fresh)
        return applied_total

    async def _fresh(self, cur: Any, rm: sql.Identifier, batch: Sequence[Delivered]) -> list[Delivered]:
        ids = list({d.aggregate_id for d in batch})
        await cur.execute(
            sql.SQL("SELECT aggregate_id, version FROM {}.applied WHERE aggregate_id = ANY(%s)").format(rm),
            (ids,),
        )
        seen: dict[UUID, int] = {row[0]: row[1] for row in await cur.fetchall()}
        fresh = []
        for delivered in batch:
            if delivered.version > seen.get(delivered.aggregate_id, 0):
                seen[delivered.aggregate_id] = delivered.version
                fresh.append(delivered)
        return fresh

    async def _remember(self, cur: Any, rm: sql.Identifier, fresh: Sequence[Delivered]) -> None:
        last: dict[UUID, Delivered] = {}
        for delivered in fresh:
            last[delivered.aggregate_id] = delivered
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.applied (aggregate_id, version, position) "
                "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET "
                "version = EXCLUDED.version, position = EXCLUDED.position"
            ).format(rm),
            (list(last), [d.version for d in last.values()], [d.position for d in last.values()]),
        )

    async def _advance(self, cur: Any, rm: sql.Identifier, batch: Sequence[Delivered]) -> None:
        furthest: dict[int, Delivered] = {}
        for delivered in batch:
            known = furthest.get(delivered.partition)
            if known is None or delivered.offset > known.offset:
                furthest[delivered.partition] = delivered
        await cur.execute(
            sql.SQL(
                "INSERT INTO {rm}.positions AS p (partition, kafka_offset, position) "
                "SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (partition) DO UPDATE SET "
                "kafka_offset = GREATEST(p.kafka_offset, EXCLUDED.kafka_offset), "
                "position = GREATEST(p.position, EXCLUDED.position), updated_at = clock_timestamp()"
            ).format(rm=rm),
            (
                list(furthest),
                [d.offset for d in furthest.values()],
                [d.position for d in furthest.values()],
            ),
        )
