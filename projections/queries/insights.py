"""The read side of the projections: stored facts in, answers as of a moment out."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain import trust as model
from domain.lifecycle import LifecycleThresholds, lifecycle_flags
from domain.operating_model import DEFAULT_MODEL, OperatingModel
from domain.people import person_key
from domain.portfolio import Segmentation
from projections.lifecycle import facts_of
from projections.networks import membership, network_facts
from projections.portfolio import histories
from projections.queries.reading import read_documents


def _points(conn: psycopg.Connection[Any], rm: sql.Identifier, pid: UUID | None = None) -> list[dict[str, Any]]:
    where = sql.SQL("WHERE partnership_id = %s") if pid else sql.SQL("")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT partnership_id::text AS partnership_id, version, at, inbound_interest, outbound_interest, "
                "mutual_interest, trust, attention, phase, moved_by, model_version, position "
                "FROM {}.trust_points {} ORDER BY partnership_id, at, version"
            ).format(rm, where),
            (pid,) if pid else (),
        ).fetchall()


def _states(conn: psycopg.Connection[Any], rm: sql.Identifier) -> dict[str, model.TrustState]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL("SELECT partnership_id::text, state FROM {}.trust_state").format(rm)).fetchall()
    return {r["partnership_id"]: model.TrustState.from_dict(r["state"]) for r in rows}


def trust_at(points: list[dict[str, Any]], state: model.TrustState | None, moment: datetime) -> float | None:
    """Trust at a moment: decayed from the latest state when the moment is after it; else
    the last point recorded at or before the moment."""
    if state is not None and moment >= state.as_of:
        return model.decay(state, moment).trust
    earlier = [p for p in points if p["at"] <= moment]
    return earlier[-1]["trust"] if earlier else None


_POINT = (
    "SELECT partnership_id::text AS partnership_id, version, at, inbound_interest, outbound_interest, "
    "mutual_interest, trust, attention, phase, moved_by, model_version, position FROM {}.trust_points "
)


def trust_trajectory(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    pid: UUID,
    as_of: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any] | None:
    """Where trust stands as of a moment (``current``), and one page of the points up to
    then, between ``start`` and ``end`` (inclusive), ordered by (at, version);
    ``next_cursor`` is the (at, version) to continue after, None on the last page."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT state FROM {}.trust_state WHERE partnership_id = %s").format(rm), (pid,)
        ).fetchone()
        if row is None:
            return None
        state = model.TrustState.from_dict(row["state"])
        keyset = sql.SQL("AND (at, version) > (%(after_at)s, %(after_v)s) ") if after else sql.SQL("")
        points = cur.execute(
            sql.SQL(
                _POINT + "WHERE partnership_id = %(pid)s AND at <= %(upto)s "
                "AND (%(start)s::timestamptz IS NULL OR at >= %(start)s) {} ORDER BY at, version LIMIT %(n)s"
            ).format(rm, keyset),
            {
                "pid": pid,
                "upto": min(as_of, end) if end is not None else as_of,
                "start": start,
                "after_at": after[0] if after else None,
                "after_v": after[1] if after else None,
                "n": limit + 1,
            },
        ).fetchall()
        current: dict[str, Any] | None
        if as_of >= state.as_of:
            current = model.point(model.decay(state, as_of), ()).to_dict()
        else:
            current = cur.execute(
                sql.SQL(
                    _POINT + "WHERE partnership_id = %s AND at <= %s ORDER BY at DESC, version DESC LIMIT 1"
                ).format(rm),
                (pid, as_of),
            ).fetchone()
    page = points[:limit]
    last = (page[-1]["at"], page[-1]["version"]) if len(points) > limit else None
    return {
        "model_version": model.TRUST_MODEL_VERSION,
        "as_of": as_of,
        "current": current,
        "count": len(page),
        "next_cursor": last,
        "points": page,
    }


def trust_inputs(
    conn: psycopg.Connection[Any], trust_rm: sql.Identifier
) -> tuple[dict[str, model.TrustState], dict[str, list[dict[str, Any]]]]:
    """Every partnership's latest trust state and its points in (at, version) order: what
    ``lifecycle`` reads trust from."""
    points_by: dict[str, list[dict[str, Any]]] = {}
    for point in _points(conn, trust_rm):
        points_by.setdefault(point["partnership_id"], []).append(point)
    return _states(conn, trust_rm), points_by


def trust_peak(points: list[dict[str, Any]], moment: datetime) -> float | None:
    """The highest trust recorded at or before a moment (decay only lowers trust, so no
    moment between points is higher)."""
    earlier = [p["trust"] for p in points if p["at"] <= moment]
    return max(earlier) if earlier else None


def lifecycle(
    docs: dict[str, dict[str, Any]],
    states: dict[str, model.TrustState],
    points_by: dict[str, list[dict[str, Any]]],
    as_of: datetime,
    t: LifecycleThresholds,
    operating_model: OperatingModel = DEFAULT_MODEL,
) -> list[dict[str, Any]]:
    """The reference answer of the whole board, folded in Python from per-partnership
    documents (``projections.lifecycle.fold_partnership``, keyed by partnership id) and
    the trust read model (``trust_inputs``), judged against ``operating_model`` (the one
    in force at ``as_of``). The API answers from projections/queries/board.py; tests hold
    the two equal. Nothing stores the documents: whoever asks folds them from the events."""
    facts = {
        pid: facts_of(pid, doc, as_of) for pid, doc in docs.items() if datetime.fromisoformat(doc["opened_at"]) <= as_of
    }
    # Per person, however each partnership's steward is typed ("Alice" and "alice" are one).
    very_high = Counter(person_key(f.steward) for f in facts.values() if f.segment_now and f.segment_now.value == "++")
    rows = []
    for pid, f in sorted(facts.items(), key=lambda item: (item[1].partner_name, item[0])):
        now = trust_at(points_by.get(pid, []), states.get(pid), as_of)
        peak = trust_peak(points_by.get(pid, []), as_of)
        held = {f.steward: very_high[person_key(f.steward)]}
        flags = lifecycle_flags(f, as_of, operating_model, now, peak, held, t)
        doc = docs[pid]
        rows.append(
            {
                "partnership_id": pid,
                "partner_name": f.partner_name,
                "owner_unit": f.owner_unit,
                "steward": f.steward,
                "stage": f.stage.value,
                "since": f.stage_since,
                "last_contact_at": f.last_contact_at,
                "trust": round(now, 6) if now is not None else None,
                "segment": {"now": f.segment_now.value, "future": f.segment_future.value}
                if f.segment_now and f.segment_future
                else None,
                "roles": list(f.roles),
                "transitions": [
                    {"at": at, "from": previous, "to": stage, "reason": reason}
                    for at, previous, stage, reason, _ in doc["transitions"]
                    if datetime.fromisoformat(at) <= as_of
                ],
                "flags": [asdict(flag) for flag in flags],
            }
        )
    return rows


def segment_histories(conn: psycopg.Connection[Any], rm: sql.Identifier) -> dict[str, list[Segmentation]]:
    return histories(read_documents(conn, rm))


def network_facts_all(conn: psycopg.Connection[Any], rm: sql.Identifier) -> list[Any]:
    return [network_facts(nid, doc) for nid, doc in read_documents(conn, rm).items()]


def member_networks(
    conn: psycopg.Connection[Any], rm: sql.Identifier, partnership_id: UUID, as_of: datetime | None
) -> list[dict[str, Any]]:
    """The networks the partnership is a member of, now (``as_of`` None) or at ``as_of``
    in valid time, of those we were in then; by name. Only the documents that ever
    counted it as a member are read."""
    pid = str(partnership_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "SELECT aggregate_id::text AS id, doc FROM {}.documents WHERE doc->'members' ? %(pid)s "
                "OR EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(doc->'memberships', '[]')) m "
                "WHERE m->>0 = %(pid)s)"
            ).format(rm),
            {"pid": pid},
        ).fetchall()
    found = [m for row in rows if (m := membership(row["id"], row["doc"], pid, as_of)) is not None]
    return sorted(found, key=lambda m: (m["name"], m["network_id"]))
