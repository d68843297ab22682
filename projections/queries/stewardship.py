"""Stewardship for auditors: what a steward looked after at a moment, and what happened
after each steward left (a partnership cannot be bequeathed, so the successor's first
contact is the thing to look for)."""

from __future__ import annotations

from datetime import datetime
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
                "d.doc ->> 'partner_name' AS partner_name FROM ("
                " SELECT DISTINCT ON (partnership_id) partnership_id, owner_unit, steward, valid_from, reason"
                " FROM {o}.tenures WHERE valid_from <= %(at)s"
                " AND (%(known)s::timestamptz IS NULL OR recorded_at <= %(known)s::timestamptz)"
                " ORDER BY partnership_id, valid_from DESC, version DESC"
                ") t LEFT JOIN {l}.documents d ON d.aggregate_id = t.partnership_id "
                "WHERE t.steward = %(steward)s ORDER BY partner_name, t.partnership_id"
            ).format(o=ownership, l=lifecycle),
            {"at": at, "known": known_at, "steward": steward},
        ).fetchall()
    return rows


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
        docs = {
            r["aggregate_id"]: r["doc"]
            for r in cur.execute(
                sql.SQL("SELECT aggregate_id, doc FROM {}.documents WHERE aggregate_id = ANY(%s)").format(lifecycle),
                ([r["partnership_id"] for r in left],),
            ).fetchall()
        }
    report = []
    for row in left:
        doc = docs.get(row["partnership_id"], {})
        since = row["valid_from"]
        contacts = sorted(c for c in doc.get("contacts_at", []) if datetime.fromisoformat(c) >= since)
        moves = [t for t in doc.get("transitions", []) if datetime.fromisoformat(t[0]) >= since]
        report.append(
            {
                "partnership_id": row["partnership_id"],
                "partner_name": doc.get("partner_name"),
                "handed_over_at": since,
                "recorded_at": row["recorded_at"],
                "steward_who_left": row["previous"],
                "successor": row["steward"],
                "owner_unit": row["owner_unit"],
                "contacts_since": len(contacts),
                "first_contact_since": contacts[0] if contacts else None,
                "stage_moves_since": [{"at": at, "from": prev, "to": to, "reason": why} for at, prev, to, why in moves],
            }
        )
    return sorted(report, key=lambda r: (r["handed_over_at"], str(r["partnership_id"])))
