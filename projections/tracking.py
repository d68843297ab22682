"""Applies batches of published events to read models, exactly once per projection.

Each batch is one transaction: the read-model writes, the per-aggregate versions applied
(the redelivery guard) and the per-partition positions commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Delivered:
    """One event as it came off the bus."""

    partition: int
    offset: int
    event: dict[str, Any]

    @property
    def aggregate_id(self) -> UUID:
        return UUID(self.event["aggregate_id"])

    @property
    def version(self) -> int:
        return int(self.event["version"])

    @property
    def position(self) -> int:
        return int(self.event["position"])


class Projection(Protocol):
    name: str

    async def apply(self, cur: psycopg.AsyncCursor[Any], events: Sequence[dict[str, Any]]) -> None:
        """Applies events not seen before, in per-aggregate version order."""


class Tracker:
    def __init__(self, schema: str) -> None:
        self.schema = sql.Identifier(schema)

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(schema=self.schema)

    async def apply(
        self, conn: psycopg.AsyncConnection[Any], projections: Sequence[Projection], batch: Sequence[Delivered]
    ) -> int:
        """Returns how many (projection, event) pairs were new."""
        applied_total = 0
        async with conn.transaction(), conn.cursor() as cur:
            for projection in projections:
                fresh = await self._fresh(cur, projection.name, batch)
                if fresh:
                    await projection.apply(cur, [d.event for d in fresh])
                    await self._remember(cur, projection.name, fresh)
                await self._advance(cur, projection.name, batch)
                applied_total += len(fresh)
        return applied_total

    async def _fresh(self, cur: Any, name: str, batch: Sequence[Delivered]) -> list[Delivered]:
        ids = list({d.aggregate_id for d in batch})
        await cur.execute(
            self._sql(
                "SELECT aggregate_id, version FROM {schema}.rm_applied "
                "WHERE projection = %s AND aggregate_id = ANY(%s)"
            ),
            (name, ids),
        )
        seen: dict[UUID, int] = {row[0]: row[1] for row in await cur.fetchall()}
        fresh = []
        for delivered in batch:
            if delivered.version > seen.get(delivered.aggregate_id, 0):
                seen[delivered.aggregate_id] = delivered.version
                fresh.append(delivered)
        return fresh

    async def _remember(self, cur: Any, name: str, fresh: Sequence[Delivered]) -> None:
        last: dict[UUID, Delivered] = {}
        for delivered in fresh:
            last[delivered.aggregate_id] = delivered
        await cur.execute(
            self._sql(
                "INSERT INTO {schema}.rm_applied (projection, aggregate_id, version, position) "
                "SELECT %s, * FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (projection, aggregate_id) DO UPDATE SET "
                "version = EXCLUDED.version, position = EXCLUDED.position"
            ),
            (
                name,
                list(last),
                [d.version for d in last.values()],
                [d.position for d in last.values()],
            ),
        )

    async def _advance(self, cur: Any, name: str, batch: Sequence[Delivered]) -> None:
        furthest: dict[int, Delivered] = {}
        for delivered in batch:
            known = furthest.get(delivered.partition)
            if known is None or delivered.offset > known.offset:
                furthest[delivered.partition] = delivered
        await cur.execute(
            self._sql(
                "INSERT INTO {schema}.rm_positions (projection, partition, kafka_offset, position) "
                "SELECT %s, * FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (projection, partition) DO UPDATE SET "
                "kafka_offset = GREATEST(rm_positions.kafka_offset, EXCLUDED.kafka_offset), "
                "position = GREATEST(rm_positions.position, EXCLUDED.position), "
                "updated_at = clock_timestamp()"
            ),
            (
                name,
                list(furthest),
                [d.offset for d in furthest.values()],
                [d.position for d in furthest.values()],
            ),
        )
