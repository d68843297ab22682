"""Ownership timeline: who owned each partnership, from when (valid time)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.partnership import Partnership


class OwnershipProjection:
    name = "ownership"
    tables = ("tenures",)
    handles = frozenset({Partnership.Opened.type, Partnership.OwnershipTransferred.type})
    ddl = """
    -- One row per tenure start, in valid time (occurred_at).
    CREATE TABLE IF NOT EXISTS {rm}.tenures (
        partnership_id uuid NOT NULL,
        version        bigint NOT NULL,
        valid_from     timestamptz NOT NULL,
        recorded_at    timestamptz NOT NULL,
        owner_unit     text NOT NULL,
        steward        text NOT NULL,
        reason         text NOT NULL,
        actor          text NOT NULL,
        position       bigint NOT NULL,
        PRIMARY KEY (partnership_id, version)
    );
    CREATE INDEX IF NOT EXISTS tenures_valid_from ON {rm}.tenures (partnership_id, valid_from, version);
    CREATE INDEX IF NOT EXISTS tenures_steward ON {rm}.tenures (steward, valid_from);
    """

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        rows = [
            [
                p.aggregate_id,
                p.version,
                p.occurred_at,
                p.event.meta.recorded_at.isoformat(),
                p.event.owner_unit,
                p.event.steward,
                p.event.reason.value if isinstance(p.event, Partnership.OwnershipTransferred) else "opened",
                p.event.meta.actor,
                p.position,
            ]
            for p in events
            if isinstance(p.event, Partnership.Opened | Partnership.OwnershipTransferred)
        ]
        if rows:
            # One statement and one JSON parameter for the whole batch (no round trip per row).
            await cur.execute(
                sql.SQL(
                    "INSERT INTO {}.tenures (partnership_id, version, valid_from, recorded_at, "
                    "owner_unit, steward, reason, actor, position) "
                    "SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::timestamptz, "
                    "r->>4, r->>5, r->>6, r->>7, (r->>8)::bigint FROM jsonb_array_elements(%s::jsonb) r "
                    "ON CONFLICT DO NOTHING"
                ).format(rm),
                (json.dumps(rows),),
            )
