"""What the board's rules read about the partnerships on a page, a few queries per page
whatever its size: trust now and at its peak, the facts of the last windows, what is in
force (roles, segmentations, stage move, last contact) and the operating model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from domain import trust as model
from domain.lifecycle import Activity, Evaluation, Interest, Segmentation
from domain.operating_model import DEFAULT_MODEL, OperatingModel
from domain.values import Importance
from projections.queries.rows import tuples


def trust_now_and_peak(
    conn: psycopg.Connection[Any], trust_rm: sql.Identifier, ids: list[str], as_of: datetime
) -> dict[str, tuple[float | None, float | None]]:
    """(trust now, the highest trust recorded by then) per partnership, as
    insights.trust_at and insights.trust_peak read them."""
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT u.pid::text, s.state, "
            # The last point by then only matters before the state's own moment.
            "CASE WHEN s.state IS NULL OR (s.state->>'as_of')::timestamptz > %(t)s THEN "
            "(SELECT p.trust FROM {r}.trust_points p WHERE p.partnership_id = u.pid AND p.at <= %(t)s "
            " ORDER BY p.at DESC, p.version DESC LIMIT 1) END, "
            # Every point is at or before the state's moment: after it, the kept peak.
            "CASE WHEN s.peak IS NOT NULL AND (s.state->>'as_of')::timestamptz <= %(t)s THEN s.peak ELSE "
            "(SELECT max(p.trust) FROM {r}.trust_points p WHERE p.partnership_id = u.pid AND p.at <= %(t)s) END "
            "FROM unnest(%(ids)s::uuid[]) u(pid) LEFT JOIN {r}.trust_state s ON s.partnership_id = u.pid"
        ).format(r=trust_rm),
        {"ids": ids, "t": as_of},
    )
    answer: dict[str, tuple[float | None, float | None]] = {}
    for pid, state_json, at_now, peak in rows:
        state = model.TrustState.from_dict(state_json) if state_json is not None else None
        now = model.decay(state, as_of).trust if state is not None and as_of >= state.as_of else at_now
        answer[pid] = (now, peak)
    return answer


@dataclass
class _Window:
    """Per partnership: the facts the rules read from the last windows, in recorded order
    (the order the fold summed them in: float sums depend on it)."""

    activities: dict[str, list[Activity]]
    evaluations: dict[str, list[Evaluation]]
    interests: dict[str, list[Interest]]


def window(
    conn: psycopg.Connection[Any], rm: sql.Identifier, ids: list[str], since: datetime, as_of: datetime
) -> _Window:
    """Activities, evaluations and interest signals after ``since`` up to ``as_of``: one query."""
    window = _Window({}, {}, {})
    for pid, kind, at, ours, theirs, value, version in tuples(
        conn,
        sql.SQL(
            "SELECT partnership_id::text, 'a', at, our_hours, their_hours, NULL::float8, version FROM {rm}.activities "
            "WHERE partnership_id = ANY(%(ids)s::uuid[]) AND at > %(since)s AND at <= %(t)s "
            "UNION ALL SELECT partnership_id::text, 'e', at, NULL, NULL, outcome, version FROM {rm}.evaluations "
            "WHERE partnership_id = ANY(%(ids)s::uuid[]) AND at > %(since)s AND at <= %(t)s "
            "UNION ALL SELECT partnership_id::text, 'i', at, NULL, NULL, inbound::int, version FROM {rm}.interests "
            "WHERE partnership_id = ANY(%(ids)s::uuid[]) AND at > %(since)s AND at <= %(t)s "
            "ORDER BY 1, 7"
        ).format(rm=rm),
        {"ids": ids, "since": since, "t": as_of},
    ):
        at = at.astimezone(UTC)
        if kind == "a":
            window.activities.setdefault(pid, []).append(Activity(at, ours, theirs, version))
        elif kind == "e":
            window.evaluations.setdefault(pid, []).append(Evaluation(at, value, version))
        else:
            window.interests.setdefault(pid, []).append(Interest(at, bool(value), version))
    return window


_IN_FORCE = """
SELECT u.pid::text,
    (SELECT r.roles FROM {rm}.role_facts r WHERE r.partnership_id = u.pid AND r.at <= %(t)s
     ORDER BY r.at DESC, r.version DESC LIMIT 1),
    (SELECT array_agg(ARRAY[g.now, g.future, g.version::text]) FROM (
        SELECT now, future, version FROM {rm}.segments WHERE partnership_id = u.pid AND at <= %(t)s
        ORDER BY at DESC, version DESC LIMIT 2) g),
    (SELECT s.version FROM {rm}.transitions s WHERE s.partnership_id = u.pid AND s.at <= %(t)s
     ORDER BY s.at DESC, s.version DESC LIMIT 1),
    (SELECT c.version FROM {rm}.contacts c WHERE c.partnership_id = u.pid AND c.at <= %(t)s
     ORDER BY c.at DESC, c.version DESC LIMIT 1),
    (SELECT g.at FROM {rm}.segments g WHERE g.partnership_id = u.pid AND g.at <= %(t)s
     ORDER BY g.at DESC, g.version DESC LIMIT 1),
    (SELECT f.version FROM {rm}.tenure_facts f WHERE f.partnership_id = u.pid AND f.at <= %(t)s
     ORDER BY f.at DESC, f.version DESC LIMIT 1),
    (SELECT f.version FROM {rm}.tenure_facts f WHERE f.partnership_id = u.pid AND f.steward_left AND f.at <= %(t)s
     ORDER BY f.at DESC, f.version DESC LIMIT 1)
FROM unnest(%(ids)s::uuid[]) u(pid)
"""


def _segmentation(row: list[str]) -> Segmentation:
    return Segmentation(Importance(row[0]), Importance(row[1]), int(row[2]))


def in_force(
    conn: psycopg.Connection[Any], rm: sql.Identifier, ids: list[str], as_of: datetime
) -> dict[str, dict[str, Any]]:
    """Per partnership as of a moment: its roles, the segmentation in force (its version
    and moment) and the one before, and the versions of its stage move, last contact,
    tenure and last handover because a steward left."""
    answer: dict[str, dict[str, Any]] = {}
    for pid, roles, segments, stage_version, contact_version, segment_at, tenure_version, left_version in tuples(
        conn, sql.SQL(_IN_FORCE).format(rm=rm), {"ids": ids, "t": as_of}
    ):
        segments = segments or []
        answer[pid] = {
            "roles": tuple(roles or ()),
            "segment_version": int(segments[0][2]) if segments else 0,
            "segment_at": segment_at.astimezone(UTC) if segment_at is not None else None,
            "previous_segment": _segmentation(segments[1]) if len(segments) > 1 else None,
            "stage_version": stage_version or 0,
            "last_contact_version": contact_version or 0,
            "tenure_version": tenure_version or 0,
            "steward_left_version": left_version or 0,
        }
    return answer


def operating_model_at(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> OperatingModel:
    """The operating model in force at a moment (the shipped default before any)."""
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT cells FROM {}.operating_models WHERE effective <= %s ORDER BY effective DESC, version DESC LIMIT 1"
        ).format(rm),
        (as_of,),
    )
    return OperatingModel.model_validate({"cells": rows[0][0]}) if rows else DEFAULT_MODEL
