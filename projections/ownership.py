"""Ownership timelines: who owned each partnership and each network, from when (valid time).

One table per kind of aggregate, of the same shape, so the stewardship audit reads
partnerships alone and one query (projections/queries/ownership.py) answers both.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.network import Network
from domain.partnership import Partnership

# The table of each kind's tenures, and the column naming its aggregate.
TENURE_TABLES = {"partnership": ("tenures", "partnership_id"), "network": ("network_tenures", "network_id")}

# What starts a tenure, per table: a creation (reason "opened") or a transfer.
_STARTS: dict[str, tuple[type[Any], type[Any]]] = {
    "tenures": (Partnership.Opened, Partnership.OwnershipTransferred),
    "network_tenures": (Network.Joined, Network.OwnershipTransferred),
}

_TABLE_DDL = """
    -- One row per tenure start, in valid time (occurred_at).
    CREATE TABLE IF NOT EXISTS {{rm}}.{table} (
        {key} uuid NOT NULL,
        version        bigint NOT NULL,
        valid_from     timestamptz NOT NULL,
        recorded_at    timestamptz NOT NULL,
        owner_unit     text NOT NULL,
        steward        text NOT NULL,
        reason         text NOT NULL,
        actor          text NOT NULL,
        position       bigint NOT NULL,
        PRIMARY KEY ({key}, version)
    );
    CREATE INDEX IF NOT EXISTS {table}_valid_from ON {{rm}}.{table} ({key}, valid_from, version);
    CREATE INDEX IF NOT EXISTS {table}_steward ON {{rm}}.{table} (steward, valid_from);
"""


class OwnershipProjection:
    name = "ownership"
    tables = ("tenures", "network_tenures")
    handles = frozenset(cls.type for starts in _STARTS.values() for cls in starts)
    ddl = "".join(_TABLE_DDL.format(table=table, key=key) for table, key in TENURE_TABLES.values())

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        for table, key in TENURE_TABLES.values():
            rows = [_row(p) for p in events if isinstance(p.event, _STARTS[table]) and p.event.owner_unit is not None]
            if rows:
                # One statement and one JSON parameter for the whole batch (no round trip per row).
                await cur.execute(
                    sql.SQL(
                        "INSERT INTO {}.{} ({}, version, valid_from, recorded_at, "
                        "owner_unit, steward, reason, actor, position) "
                        "SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::timestamptz, "
                        "r->>4, r->>5, r->>6, r->>7, (r->>8)::bigint FROM jsonb_array_elements(%s::jsonb) r "
                        "ON CONFLICT DO NOTHING"
                    ).format(rm, sql.Identifier(table), sql.Identifier(key)),
                    (json.dumps(rows),),
                )


def _row(p: Published) -> list[Any]:
    # A network joined before joins named an owner starts no tenure (filtered above).
    transferred = isinstance(p.event, Partnership.OwnershipTransferred | Network.OwnershipTransferred)
    created = "joined" if isinstance(p.event, Network.Joined) else "opened"
    return [
        p.aggregate_id,
        p.version,
        p.occurred_at,
        p.event.meta.recorded_at.isoformat(),
        p.event.owner_unit,
        p.event.steward,
        p.event.reason.value if transferred else created,
        p.event.meta.actor,
        p.position,
    ]
