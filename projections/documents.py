"""Projections that keep one JSON document per aggregate, folded event by event.

The fold functions are plain and deterministic, so a rebuild from the event store lands
on byte-identical documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.base import DomainEvent

Fold = Callable[[dict[str, Any] | None, Published], dict[str, Any] | None]


class DocumentProjection:
    table = "documents"

    def __init__(self, name: str, types: tuple[type[DomainEvent], ...], fold: Fold) -> None:
        self.name = name
        self.types = types  # the event classes that change the document; others are skipped
        self.handles = frozenset(t.type for t in types)
        self.fold = fold
        self.tables = (self.table,)
        self.ddl = f"""
        CREATE TABLE IF NOT EXISTS {{rm}}.{self.table} (
            aggregate_id uuid PRIMARY KEY,
            doc          jsonb NOT NULL,
            position     bigint NOT NULL
        );
        """

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        mine = [p for p in events if isinstance(p.event, self.types)]
        if not mine:
            return
        ids = list({p.aggregate_id for p in mine})
        await cur.execute(
            sql.SQL("SELECT aggregate_id::text, doc FROM {}.{} WHERE aggregate_id = ANY(%s::uuid[])").format(
                rm, sql.Identifier(self.table)
            ),
            (ids,),
        )
        docs: dict[str, dict[str, Any] | None] = {row[0]: row[1] for row in await cur.fetchall()}
        positions: dict[str, int] = {}
        for published in mine:
            key = published.aggregate_id
            docs[key] = self.fold(docs.get(key), published)
            positions[key] = published.position
        changed = [key for key in positions if docs.get(key) is not None]
        if not changed:
            return
        # One statement, one JSON parameter for the whole batch: row-by-row upserts, or
        # arrays of JSON text (escaped element by element), would dominate catch-up.
        rows = _canonical([[key, docs[key], positions[key]] for key in changed])
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.{} (aggregate_id, doc, position) "
                "SELECT (r->>0)::uuid, r->1, (r->>2)::bigint FROM jsonb_array_elements(%s::jsonb) r "
                "ON CONFLICT (aggregate_id) DO UPDATE SET doc = EXCLUDED.doc, position = EXCLUDED.position"
            ).format(rm, sql.Identifier(self.table)),
            (rows,),
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
