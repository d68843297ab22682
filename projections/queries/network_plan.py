"""The network plan's decision sections from the networks projection: the candidates and
decisions as they stood at ``as_of``, the networks' members, and the partners' names."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.network_candidates import EntryRequirements
from domain.network_health import THRESHOLDS, NetworkHealth
from domain.network_plan import network_plan
from domain.network_plan_sections import Candidate, Decision, PlanSections, plan_sections
from projections.queries.insights import network_facts_all


def candidates(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> list[Candidate]:
    """Every consideration that applied by ``as_of``; the domain picks the one in force."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT candidate_id::text, version, at, name, purposes, requirements, note "
                "FROM {}.network_candidates WHERE at <= %s ORDER BY candidate_id, at, version"
            ).format(rm),
            (as_of,),
        ).fetchall()
    return [
        Candidate(
            candidate_id=r["candidate_id"],
            name=r["name"],
            purposes=tuple(r["purposes"]),
            requirements=EntryRequirements.model_validate(r["requirements"]),
            note=r["note"],
            considered_at=r["at"],
            version=r["version"],
        )
        for r in rows
    ]


def decisions(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> list[Decision]:
    """Every decision that applied by ``as_of``; the domain picks the one in force."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT network_id::text, version, at, decision, rationale, decider, actor "
                "FROM {}.plan_decisions WHERE at <= %s ORDER BY network_id, at, version"
            ).format(rm),
            (as_of,),
        ).fetchall()
    return [
        Decision(
            network_id=r["network_id"],
            decision=r["decision"],
            rationale=r["rationale"],
            decider=r["decider"],
            actor=r["actor"],
            decided_at=r["at"],
            version=r["version"],
        )
        for r in rows
    ]


def members(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> dict[str, list[str]]:
    """Each network's member partnerships at ``as_of`` (valid time), from its membership
    spans ([partnership, added at, removed at or None]). A document folded before spans
    were kept has only its current members, until the projection is rebuilt."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT aggregate_id::text AS id, doc->'members' AS members, doc->'memberships' AS spans "
                "FROM {}.documents"
            ).format(rm)
        ).fetchall()
    return {r["id"]: _current(r["members"]) if r["spans"] is None else _at(r["spans"], as_of) for r in rows}


def _current(members: list[str] | None) -> list[str]:
    return list(members or [])


def _at(spans: list[list[Any]], as_of: datetime) -> list[str]:
    when = datetime.fromisoformat
    held = {pid for pid, added, removed in spans if when(added) <= as_of and (removed is None or as_of < when(removed))}
    return sorted(held)


def partner_names(conn: psycopg.Connection[Any], lifecycle: sql.Identifier, ids: Sequence[str]) -> dict[str, str]:
    """Partners' names from the lifecycle projection, for the partnerships named."""
    if not ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT partnership_id::text AS id, partner_name FROM {}.partners "
                "WHERE partnership_id = ANY(%s::uuid[])"
            ).format(lifecycle),
            (list(ids),),
        ).fetchall()
    return {r["id"]: r["partner_name"] for r in rows}


def sections_at(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    healths: Sequence[NetworkHealth],
    as_of: datetime,
    lifecycle: sql.Identifier | None = None,
    window_days: int = THRESHOLDS.window_days,
) -> PlanSections:
    """The plan's decision sections for ``healths`` (the plan as of ``as_of``); partners are
    named from ``lifecycle`` when given."""
    membership, found, decided = members(conn, rm, as_of), candidates(conn, rm, as_of), decisions(conn, rm, as_of)
    sections = plan_sections(healths, found, decided, membership, as_of, window_days=window_days)
    # Only the partners the plan names (those leaving would cut off) are looked up.
    named = sorted({pid for impact in sections.leaving for pid, _ in impact.sole_members})
    if lifecycle is None or not named:
        return sections
    names = partner_names(conn, lifecycle, named)
    return plan_sections(healths, found, decided, membership, as_of, names, window_days)


def plan_at(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, lifecycle: sql.Identifier | None = None
) -> tuple[list[NetworkHealth], PlanSections]:
    """The network plan as of ``as_of`` and its decision sections, from one connection."""
    healths = network_plan(network_facts_all(conn, rm), as_of)
    return healths, sections_at(conn, rm, healths, as_of, lifecycle)
