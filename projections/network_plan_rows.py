"""The organisation's part of the network plan as rows, beside the networks' documents.

Candidates (``network_considered``) and decisions (``plan_decided``) are one row per event,
keyed by the organisation's version and carrying the moment each applies from (``at``,
its ``occurred_at``). What holds at T is then the latest row at or before T per candidate
or network, in (valid time, version) order, as the aggregate reads its own events, so
``as_of`` answers the decisions of the time and a back-dated event lands where it applies.

They live in the networks projection, not one of their own: the plan reads networks,
candidates and decisions at one position, so a decision is never shown beside a network
state the projection has not reached yet (or the other way round).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.organisation import Organisation
from projections.documents import DocumentProjection

PLAN_TYPES = (Organisation.NetworkConsidered, Organisation.PlanDecided)
PLAN_TABLES = ("network_candidates", "plan_decisions")

PLAN_DDL = """
CREATE TABLE IF NOT EXISTS {rm}.network_candidates (
    candidate_id uuid NOT NULL,
    version      bigint NOT NULL,  -- the organisation's, which recorded it
    at           timestamptz NOT NULL,  -- from when it applies (occurred_at)
    name         text NOT NULL,
    purposes     text[] NOT NULL,
    requirements jsonb NOT NULL,
    note         text,
    PRIMARY KEY (candidate_id, version)
);
CREATE TABLE IF NOT EXISTS {rm}.plan_decisions (
    network_id uuid NOT NULL,  -- a network's id, or a candidate's (join)
    version    bigint NOT NULL,
    at         timestamptz NOT NULL,
    decision   text NOT NULL,
    rationale  text NOT NULL,
    decider    text NOT NULL,
    actor      text NOT NULL,  -- who sent it, as the event's meta says
    PRIMARY KEY (network_id, version)
);
"""

_INSERT_CANDIDATES = """
INSERT INTO {rm}.network_candidates (candidate_id, version, at, name, purposes, requirements, note)
SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz, r->>3,
    ARRAY(SELECT jsonb_array_elements_text(r->4)), r->5, r->>6
FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING
"""
_INSERT_DECISIONS = """
INSERT INTO {rm}.plan_decisions (network_id, version, at, decision, rationale, decider, actor)
SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz, r->>3, r->>4, r->>5, r->>6
FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING
"""


async def apply_plan_rows(cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
    """One statement per table for the whole batch, however many events it holds."""
    candidates: list[list[Any]] = []
    decisions: list[list[Any]] = []
    for p in events:
        e = p.event
        if isinstance(e, Organisation.NetworkConsidered):
            purposes = [purpose.value for purpose in e.purposes]
            requirements = e.requirements.model_dump(mode="json")
            candidates.append([str(e.candidate_id), p.version, p.occurred_at, e.name, purposes, requirements, e.note])
        elif isinstance(e, Organisation.PlanDecided):
            row = [str(e.network_id), p.version, p.occurred_at, e.decision.value, e.rationale, e.decider]
            decisions.append([*row, e.meta.actor])
    if candidates:
        await cur.execute(sql.SQL(_INSERT_CANDIDATES).format(rm=rm), (json.dumps(candidates),))
    if decisions:
        await cur.execute(sql.SQL(_INSERT_DECISIONS).format(rm=rm), (json.dumps(decisions),))


class NetworksProjection:
    """The networks' documents and the organisation's plan rows, as one projection."""

    def __init__(self, documents: DocumentProjection) -> None:
        self.name = documents.name
        self.documents = documents
        self.handles = documents.handles | {t.type for t in PLAN_TYPES}
        self.tables: tuple[str, ...] = (*documents.tables, *PLAN_TABLES)
        self.ddl = documents.ddl + PLAN_DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        await self.documents.apply(cur, rm, events)  # it skips the organisation's events
        await apply_plan_rows(cur, rm, events)
