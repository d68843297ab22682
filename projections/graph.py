"""The graph over time: networks and partnerships (the two sides of a bipartite graph) and
who was a member of which network when, in valid time.

``nodes``: one row per network (its name, joined, left) and per partnership (the
partner's name and kind, opened, ended or merged away). ``membership_events``: every
member_added and member_removed as a fact. ``memberships``: one row per member_added,
the interval ``[valid_from, valid_to)`` it opened, closed by the network's next
member_removed of the same partnership (in version order, as the aggregate pairs them)
or by the network leaving, whichever takes effect first. A back-dated event lands where
it took effect: a batch recomputes its networks' intervals from the facts, so the rows
depend on which facts there are, never on the order they arrived in. An interval that a
back-dated removal or leaving closes before it opened held at no moment and is not kept.

A partnership's ending (stage_changed to ended, or partnership_merged) closes its open
intervals too, but it is kept on the partnership's node and applied when reading
(projections/queries/graph.py: an edge holds at T while its interval holds and the
partnership has not ended by T). Writing it into the intervals would make rows of one
aggregate depend on another's events: projector processes (and a rebuild's workers) apply
different aggregates in concurrent transactions, and under READ COMMITTED neither sees the
other's uncommitted half, so the outcome would depend on timing. Here each row is written
by its own aggregate's events only.

Names are stored as the events carry them, like every read model's: erasing a person
partner destroys their key and rebuilds every projection in the catalogue (this one
included), which then holds "[erased]" (services/erasure.py).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.network import Network
from domain.partnership import Partnership
from domain.values import Stage

N, P = Network, Partnership
EVENT_TYPES = (N.Joined, N.MemberAdded, N.MemberRemoved, N.Left, P.Opened, P.StageChanged, P.MergedInto)

DDL = """
CREATE TABLE IF NOT EXISTS {rm}.nodes (
    node_id       uuid PRIMARY KEY,
    kind          text NOT NULL,               -- network | partnership
    name          text COLLATE "C" NOT NULL,   -- sorted by code point, as Python sorts
    partner_kind  text,                        -- organisation | person | group
    since         timestamptz NOT NULL,        -- joined, opened
    ended_at      timestamptz,                 -- left; ended or merged away
    ended_by      text,                        -- network_left | stage_changed | partnership_merged
    ended_version bigint
);
CREATE INDEX IF NOT EXISTS nodes_by_name ON {rm}.nodes (kind, name, node_id);
CREATE TABLE IF NOT EXISTS {rm}.membership_events (
    network_id     uuid NOT NULL,
    version        bigint NOT NULL,
    partnership_id uuid NOT NULL,
    added          boolean NOT NULL,
    at             timestamptz NOT NULL,
    PRIMARY KEY (network_id, version)
);
CREATE INDEX IF NOT EXISTS membership_events_pair ON {rm}.membership_events (network_id, partnership_id, version);
-- [valid_from, valid_to): valid_to NULL while the network's own events leave it open.
CREATE TABLE IF NOT EXISTS {rm}.memberships (
    network_id     uuid NOT NULL,
    partnership_id uuid NOT NULL,
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz CHECK (valid_to > valid_from),
    added_version  bigint NOT NULL,
    closed_version bigint,
    closed_by      text,                       -- member_removed | network_left
    PRIMARY KEY (network_id, added_version)
);
-- "As of T" is a range containment test, answered from this index.
CREATE INDEX IF NOT EXISTS memberships_valid ON {rm}.memberships USING gist (tstzrange(valid_from, valid_to));
CREATE INDEX IF NOT EXISTS memberships_partnership ON {rm}.memberships (partnership_id);
"""
TABLES = ("nodes", "membership_events", "memberships")

# The intervals of the given networks, recomputed from their facts. Each member_added is
# closed by the first member_removed of the same pair after it in version order (the
# aggregate refuses a second add before a removal, so they alternate), or by the
# network's leaving if that takes effect first.
_INTERVALS = """
INSERT INTO {rm}.memberships
    (network_id, partnership_id, valid_from, valid_to, added_version, closed_version, closed_by)
SELECT network_id, partnership_id, valid_from, valid_to, added_version, closed_version, closed_by FROM (
    SELECT network_id, partnership_id, valid_from, added_version,
        CASE WHEN removed THEN removed_at ELSE left_at END AS valid_to,
        CASE WHEN removed THEN removed_version ELSE left_version END AS closed_version,
        CASE WHEN removed THEN 'member_removed' WHEN left_at IS NOT NULL THEN 'network_left' END AS closed_by
    FROM (
        SELECT a.network_id, a.partnership_id, a.at AS valid_from, a.version AS added_version,
            r.at AS removed_at, r.version AS removed_version, n.ended_at AS left_at, n.ended_version AS left_version,
            r.at IS NOT NULL AND (n.ended_at IS NULL OR r.at <= n.ended_at) AS removed
        FROM {rm}.membership_events a
        LEFT JOIN LATERAL (
            SELECT at, version FROM {rm}.membership_events r
            WHERE r.network_id = a.network_id AND r.partnership_id = a.partnership_id AND NOT r.added
                AND r.version > a.version
            ORDER BY r.version LIMIT 1
        ) r ON true
        LEFT JOIN {rm}.nodes n ON n.node_id = a.network_id
        WHERE a.added AND a.network_id = ANY(%(ids)s::uuid[])
    ) closing
) intervals
WHERE valid_to IS NULL OR valid_to > valid_from
"""


def _rows(events: list[Published]) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(new nodes, ends of nodes, membership facts) the events say, as JSON-ready rows."""
    nodes: list[list[Any]] = []
    ends: list[list[Any]] = []
    facts: list[list[Any]] = []
    for p in events:
        event, at = p.event, p.occurred_at
        if isinstance(event, N.Joined):
            nodes.append([p.aggregate_id, "network", event.name, None, at])
        elif isinstance(event, P.Opened):
            nodes.append([p.aggregate_id, "partnership", event.partner.name, event.partner.kind.value, at])
        elif isinstance(event, N.MemberAdded | N.MemberRemoved):
            added = isinstance(event, N.MemberAdded)
            facts.append([p.aggregate_id, p.version, str(event.partnership_id), added, at])
        elif isinstance(event, N.Left):
            ends.append([p.aggregate_id, at, "network_left", p.version])
        elif isinstance(event, P.StageChanged) and event.stage == Stage.ENDED:
            ends.append([p.aggregate_id, at, "stage_changed", p.version])
        elif isinstance(event, P.MergedInto):
            ends.append([p.aggregate_id, at, "partnership_merged", p.version])
    return nodes, ends, facts


class GraphProjection:
    name = "graph"
    handles = frozenset(t.type for t in EVENT_TYPES)
    tables: tuple[str, ...] = TABLES
    ddl = DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        """A fixed number of statements per batch: one JSON parameter per table, then the
        touched networks' intervals recomputed in one delete and one insert."""
        nodes, ends, facts = _rows(events)
        if nodes:
            await cur.execute(
                sql.SQL(
                    "INSERT INTO {}.nodes (node_id, kind, name, partner_kind, since) "
                    "SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, (r->>4)::timestamptz "
                    "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
                ).format(rm),
                (json.dumps(nodes),),
            )
        if ends:
            # Ended is final for both aggregates: one end per node, whatever the batch.
            await cur.execute(
                sql.SQL(
                    "UPDATE {}.nodes n SET ended_at = (r->>1)::timestamptz, ended_by = r->>2, "
                    "ended_version = (r->>3)::bigint FROM jsonb_array_elements(%s::jsonb) r "
                    "WHERE n.node_id = (r->>0)::uuid"
                ).format(rm),
                (json.dumps(ends),),
            )
        if facts:
            await cur.execute(
                sql.SQL(
                    "INSERT INTO {}.membership_events (network_id, version, partnership_id, added, at) "
                    "SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::uuid, (r->>3)::boolean, (r->>4)::timestamptz "
                    "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
                ).format(rm),
                (json.dumps(facts),),
            )
        network_ids = {row[0] for row in facts} | {row[0] for row in ends if row[2] == "network_left"}
        if network_ids:
            ids = sorted(network_ids)
            delete = sql.SQL("DELETE FROM {}.memberships WHERE network_id = ANY(%s::uuid[])").format(rm)
            await cur.execute(delete, (ids,))
            await cur.execute(sql.SQL(_INTERVALS).format(rm=rm), {"ids": ids})


def graph_projection() -> GraphProjection:
    return GraphProjection()
