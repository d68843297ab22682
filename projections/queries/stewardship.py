"""Stewardship for auditors: what a steward looked after at a moment, and what happened
after each steward left (a partnership cannot be bequeathed, so the successor's first
contact is the thing to look for).

Answered from the lifecycle projection's rows (partners, contacts, transitions): the cost
follows the handovers asked about, not the length of the partnerships' histories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


def held_by(
    conn: psycopg.Connection[Any],
    ownership: sql.Identifier,
    lifecycle: sql.Identifier,
    steward: str,
    at: datetime,
    known_at: datetime | None,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT t.partnership_id, t.owner_unit, t.valid_from AS since, t.reason, "
                "p.partner_name FROM ("
                " SELECT DISTINCT ON (partnership_id) partnership_id, owner_unit, steward, valid_from, reason"
                " FROM {o}.tenures WHERE valid_from <= %(at)s"
                " AND (%(known)s::timestamptz IS NULL OR recorded_at <= %(known)s::timestamptz)"
                " ORDER BY partnership_id, valid_from DESC, version DESC"
                ") t LEFT JOIN {l}.partners p ON p.partnership_id = t.partnership_id "
                # The database's own collation, as this report has always sorted names.
                'WHERE t.steward = %(steward)s ORDER BY p.partner_name COLLATE "default", t.partnership_id'
            ).format(o=ownership, l=lifecycle),
            {"at": at, "known": known_at, "steward": steward},
        ).fetchall()
    return rows


def _iso(moment: datetime) -> str:
    """A moment as the event's valid time is published (UTC ISO 8601)."""
    return moment.astimezone(UTC).isoformat()


def handovers(
    conn: psycopg.Connection[Any], ownership: sql.Identifier, lifecycle: sql.Identifier
) -> list[dict[str, Any]]:
    """Every handover because a steward left, with who left, who took over, and since then:
    contacts, the first contact, and stage moves."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT partnership_id, valid_from, recorded_at, steward, owner_unit, version, "
                "lag(steward) OVER (PARTITION BY partnership_id ORDER BY valid_from, version) AS previous, "
                "reason FROM {}.tenures ORDER BY partnership_id, valid_from, version"
            ).format(ownership)
        ).fetchall()
        left = [r for r in rows if r["reason"] == "steward_left"]
        asked = {"ids": [r["partnership_id"] for r in left], "since": [r["valid_from"] for r in left]}
        # Per handover (its ordinal n): the partner's name and the contacts since it.
        since = cur.execute(
            sql.SQL(
                "SELECT h.n, p.partner_name, c.contacts, c.first_at "
                "FROM unnest(%(ids)s::uuid[], %(since)s::timestamptz[]) WITH ORDINALITY h(pid, since, n) "
                "LEFT JOIN {l}.partners p ON p.partnership_id = h.pid "
                "CROSS JOIN LATERAL (SELECT count(*) AS contacts, min(at) AS first_at FROM {l}.contacts "
                " WHERE partnership_id = h.pid AND at >= h.since) c"
            ).format(l=lifecycle),
            asked,
        ).fetchall()
        moves = cur.execute(
            sql.SQL(
                "SELECT h.n, t.at, t.previous, t.stage, t.reason "
                "FROM unnest(%(ids)s::uuid[], %(since)s::timestamptz[]) WITH ORDINALITY h(pid, since, n) "
                "JOIN {l}.transitions t ON t.partnership_id = h.pid AND t.at >= h.since "
                "ORDER BY h.n, t.at, t.version"
            ).format(l=lifecycle),
            asked,
        ).fetchall()
    found = {r["n"]: r for r in since}
    moved: dict[int, list[dict[str, Any]]] = {}
    for m in moves:
        moved.setdefault(m["n"], []).append(
            {"at": _iso(m["at"]), "from": m["previous"], "to": m["stage"], "reason": m["reason"]}
        )
    report = []
    for n, row in enumerate(left, start=1):
        facts = found[n]
        report.append(
            {
                "partnership_id": row["partnership_id"],
                "partner_name": facts["partner_name"],
                "handed_over_at": row["valid_from"],
                "recorded_at": row["recorded_at"],
                "steward_who_left": row["previous"],
                "successor": row["steward"],
                "owner_unit": row["owner_unit"],
                "contacts_since": facts["contacts"],
                "first_contact_since": _iso(facts["first_at"]) if facts["first_at"] else None,
                "stage_moves_since": moved.get(n, []),
            }
        )
    return sorted(report, key=lambda r: (r["handed_over_at"], str(r["partnership_id"])))
