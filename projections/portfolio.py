"""Segment portfolio: each partnership's segmentations in valid time."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.partnership import Partnership
from domain.portfolio import Segmentation
from domain.values import Importance
from projections.documents import DocumentProjection


def fold_portfolio(doc: dict[str, Any] | None, published: Published) -> dict[str, Any] | None:
    event = published.event
    if isinstance(event, Partnership.Opened):
        return {"partner_name": event.partner.name, "segmentations": []}
    if doc is not None and isinstance(event, Partnership.Segmented):
        entry = [published.occurred_at, published.version, event.segment.now.value, event.segment.future.value]
        doc["segmentations"] = sorted([*doc["segmentations"], entry])
    return doc


def histories(docs: Mapping[str, dict[str, Any]]) -> dict[str, list[Segmentation]]:
    return {
        pid: [
            Segmentation(pid, doc["partner_name"], datetime.fromisoformat(at), Importance(now), Importance(future))
            for at, _version, now, future in doc["segmentations"]
        ]
        for pid, doc in docs.items()
    }


# One row per segmentation, with the moment the next one replaced it, so "the cell as of
# T" is a range test. partner_name sorts by code point, as Python sorts strings.
ROWS_DDL = """
CREATE TABLE IF NOT EXISTS {rm}.segmentations (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    valid_to       timestamptz,
    now            text NOT NULL,
    future         text NOT NULL,
    partner_name   text COLLATE "C" NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS segmentations_cell ON {rm}.segmentations (now, future, partnership_id);
CREATE INDEX IF NOT EXISTS segmentations_at ON {rm}.segmentations (at);
-- A partnership's segmentations in valid time: the one in force before a moment is one seek.
CREATE INDEX IF NOT EXISTS segmentations_history ON {rm}.segmentations (partnership_id, at, version);
CREATE TABLE IF NOT EXISTS {rm}.partner_names (
    partnership_id uuid PRIMARY KEY,
    partner_name   text COLLATE "C" NOT NULL
);
"""


class PortfolioProjection:
    """Segmentations as rows (the API reads these), next to the per-partnership document."""

    name = "portfolio"

    def __init__(self) -> None:
        self.documents = DocumentProjection(self.name, (Partnership.Opened, Partnership.Segmented), fold_portfolio)
        self.handles = self.documents.handles
        self.tables: tuple[str, ...] = (*self.documents.tables, "partner_names", "segmentations")
        self.ddl = self.documents.ddl + ROWS_DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        await self.documents.apply(cur, rm, events)
        names = [[p.aggregate_id, p.event.partner.name] for p in events if isinstance(p.event, Partnership.Opened)]
        rows = [
            [p.aggregate_id, p.version, p.occurred_at, p.event.segment.now.value, p.event.segment.future.value]
            for p in events
            if isinstance(p.event, Partnership.Segmented)
        ]
        # Whole-batch statements: one JSON parameter each, whatever the batch's size.
        if names:
            await cur.execute(
                sql.SQL(
                    "INSERT INTO {}.partner_names SELECT (r->>0)::uuid, r->>1 "
                    "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
                ).format(rm),
                (json.dumps(names),),
            )
        if not rows:
            return
        ids = list({row[0] for row in rows})
        await cur.execute(
            sql.SQL(
                "INSERT INTO {rm}.segmentations (partnership_id, version, at, now, future, partner_name) "
                "SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz, r->>3, r->>4, n.partner_name "
                "FROM jsonb_array_elements(%s::jsonb) r "
                "JOIN {rm}.partner_names n ON n.partnership_id = (r->>0)::uuid ON CONFLICT DO NOTHING"
            ).format(rm=rm),
            (json.dumps(rows),),
        )
        # A back-dated segmentation ends its predecessor early: recompute the spans.
        await cur.execute(
            sql.SQL(
                "UPDATE {rm}.segmentations s SET valid_to = n.valid_to FROM ("
                " SELECT partnership_id, version,"
                " lead(at) OVER (PARTITION BY partnership_id ORDER BY at, version) AS valid_to"
                " FROM {rm}.segmentations WHERE partnership_id = ANY(%s::uuid[])"
                ") n WHERE s.partnership_id = n.partnership_id AND s.version = n.version"
                " AND s.valid_to IS DISTINCT FROM n.valid_to"
            ).format(rm=rm),
            (ids,),
        )


def portfolio_projection() -> PortfolioProjection:
    return PortfolioProjection()
