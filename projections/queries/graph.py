"""The graph read model asked about moments: who was a member of which network at T.

An edge (network, partnership) holds at T when one of its membership intervals contains T
(``valid_from <= T < valid_to``, from the interval index) and the partnership had not
ended by T (its end is kept on its node: see projections/graph.py). A network is a node
at T from joining until leaving, with or without members; a partnership is a node at T
when it has at least one edge then (partners in no network say nothing about networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.queries.rows import tuples

# Memberships m with partnership node p (LEFT JOINed: a partnership whose own events are
# not applied yet is a member all the same) holding at q.t.
_EDGES_AT = """
FROM {rm}.memberships m
LEFT JOIN {rm}.nodes p ON p.node_id = m.partnership_id
WHERE tstzrange(m.valid_from, m.valid_to) @> q.t AND (p.ended_at IS NULL OR p.ended_at > q.t)
"""


Edge = tuple[str, str]  # (network id, partnership id)


def edges_at(conn: psycopg.Connection[Any], rm: sql.Identifier, moments: Sequence[datetime]) -> list[set[Edge]]:
    """For each moment, its (network id, partnership id) edges: one statement for all."""
    query = sql.SQL(
        "SELECT DISTINCT q.i, m.network_id::text, m.partnership_id::text "
        "FROM unnest(%s::timestamptz[]) WITH ORDINALITY q(t, i) "
        "CROSS JOIN LATERAL (SELECT m.network_id, m.partnership_id " + _EDGES_AT + ") m"
    ).format(rm=rm)
    found: list[set[Edge]] = [set() for _ in moments]
    for i, network_id, partnership_id in tuples(conn, query, (list(moments),)):
        found[i - 1].add((network_id, partnership_id))
    return found


def networks_at(conn: psycopg.Connection[Any], rm: sql.Identifier, moments: Sequence[datetime]) -> list[set[str]]:
    """For each moment, the networks we were in then (joined, not yet left)."""
    query = sql.SQL(
        "SELECT q.i, n.node_id::text FROM unnest(%s::timestamptz[]) WITH ORDINALITY q(t, i) "
        "JOIN {rm}.nodes n ON n.kind = 'network' AND n.since <= q.t AND (n.ended_at IS NULL OR n.ended_at > q.t)"
    ).format(rm=rm)
    found: list[set[str]] = [set() for _ in moments]
    for i, network_id in tuples(conn, query, (list(moments),)):
        found[i - 1].add(network_id)
    return found


def names(conn: psycopg.Connection[Any], rm: sql.Identifier, ids: Sequence[str]) -> dict[str, str]:
    """The names of these nodes (an id with no node yet is left out)."""
    query = sql.SQL("SELECT node_id::text, name FROM {}.nodes WHERE node_id = ANY(%s::uuid[])").format(rm)
    return {node_id: name for node_id, name in tuples(conn, query, (list(ids),))}


def graph_at(conn: psycopg.Connection[Any], rm: sql.Identifier, moment: datetime, partners: bool) -> dict[str, Any]:
    """The graph at ``moment``: nodes (networks, then partnerships, each by name then id),
    edges with the start of the interval holding then, and for each pair of networks the
    partnerships in both. ``partners`` False: the networks, and how many partnerships
    each pair shares, only (the one-mode view a drawing of the networks needs)."""
    params = {"t": moment}
    edges = tuples(
        conn,
        sql.SQL(
            "SELECT m.network_id::text, m.partnership_id::text, min(m.valid_from) "
            "FROM (SELECT %(t)s::timestamptz AS t) q CROSS JOIN LATERAL (SELECT m.network_id, m.partnership_id, "
            "m.valid_from " + _EDGES_AT + ") m GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(rm=rm),
        params,
    )
    members: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for network_id, partnership_id, _ in edges:
        members.setdefault(partnership_id, []).append(network_id)
        counts[network_id] = counts.get(network_id, 0) + 1
    networks = tuples(
        conn,
        sql.SQL(
            "SELECT node_id::text, name, since FROM {rm}.nodes WHERE kind = 'network' AND since <= %(t)s "
            "AND (ended_at IS NULL OR ended_at > %(t)s) ORDER BY name, node_id"
        ).format(rm=rm),
        params,
    )
    nodes: list[dict[str, Any]] = [
        {"id": i, "kind": "network", "name": name, "since": since, "members": counts.get(i, 0)}
        for i, name, since in networks
    ]
    if partners:
        nodes += _partnership_nodes(conn, rm, members)
    pairs: dict[tuple[str, str], list[str]] = {}
    for partnership_id in sorted(members):
        of = sorted(members[partnership_id])
        for a, first in enumerate(of):
            for second in of[a + 1 :]:
                pairs.setdefault((first, second), []).append(partnership_id)
    return {
        "nodes": nodes,
        "edges": [{"network_id": n, "partnership_id": p, "since": since} for n, p, since in edges] if partners else [],
        "shared_members": [
            {"networks": [a, b], "count": len(shared), **({"partnerships": shared} if partners else {})}
            for (a, b), shared in sorted(pairs.items())
        ],
    }


def _partnership_nodes(
    conn: psycopg.Connection[Any], rm: sql.Identifier, members: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The partnerships with an edge, by name then id; one whose own events are not
    applied yet is there all the same, with no name."""
    query = sql.SQL(
        "SELECT node_id::text, name, partner_kind, since FROM {}.nodes WHERE node_id = ANY(%s::uuid[])"
    ).format(rm)
    known = {row[0]: row[1:] for row in tuples(conn, query, (list(members),))}
    unknown = (None, None, None)
    rows = [(i, *(known.get(i) or unknown)) for i in members]
    return [
        {
            "id": i,
            "kind": "partnership",
            "name": name,
            "partner_kind": kind,
            "since": since,
            "networks": len(members[i]),
        }
        for i, name, kind, since in sorted(rows, key=lambda row: (row[1] or "", row[0]))
    ]
