"""Evaluation coverage as of a moment: which open partnerships were never evaluated, and
which were last evaluated under an older catalogue (or before any existed) than the one
in force. Counted in PostgreSQL; only the first members of each group are listed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.queries.rows import tuples

# Each open partnership (its period in force, not ended) with its latest evaluation by then.
_LATEST = """
WITH current AS (
    SELECT version FROM {rm}.catalogues WHERE effective <= %(t)s ORDER BY effective DESC, version DESC LIMIT 1
), judged AS (
    SELECT pr.partnership_id, pr.partner_name, e.version AS evaluated, e.catalogue_version AS scored
    FROM {rm}.periods pr
    LEFT JOIN LATERAL (
        SELECT version, catalogue_version FROM {rm}.evaluations
        WHERE partnership_id = pr.partnership_id AND at <= %(t)s ORDER BY at DESC, version DESC LIMIT 1
    ) e ON true
    WHERE pr.valid_from <= %(t)s AND (pr.valid_to IS NULL OR pr.valid_to > %(t)s) AND pr.opened_at <= %(t)s
      AND pr.stage <> 'ended'
), grouped AS (
    SELECT partnership_id, partner_name,
        CASE WHEN evaluated IS NULL THEN 'never_evaluated'
             WHEN (SELECT version FROM current) IS NOT NULL
                  AND scored IS DISTINCT FROM (SELECT version FROM current) THEN 'not_under_current'
        END AS gap
    FROM judged
)
"""


def evaluation_coverage(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, members: int
) -> dict[str, Any]:
    """Counts of each gap and its first ``members`` by name, from the lifecycle rows."""
    params = {"t": as_of, "n": members}
    ((current, total, never, outdated),) = tuples(
        conn,
        sql.SQL(
            _LATEST + "SELECT (SELECT version FROM current), count(*), count(*) FILTER (WHERE gap = 'never_evaluated'),"
            " count(*) FILTER (WHERE gap = 'not_under_current') FROM grouped"
        ).format(rm=rm),
        params,
    )
    firsts: dict[str, list[dict[str, str]]] = {"never_evaluated": [], "not_under_current": []}
    for gap, pid, name in tuples(
        conn,
        sql.SQL(
            _LATEST + "SELECT gap, partnership_id::text, partner_name FROM ("
            " SELECT *, row_number() OVER (PARTITION BY gap ORDER BY partner_name, partnership_id) AS n FROM grouped"
            " WHERE gap IS NOT NULL) g WHERE n <= %(n)s ORDER BY gap, partner_name, partnership_id"
        ).format(rm=rm),
        params,
    ):
        firsts[gap].append({"partnership_id": pid, "partner_name": name})
    return {
        "catalogue_version": current,
        "partnerships": total,
        "never_evaluated": {"count": never, "members": firsts["never_evaluated"]},
        "not_under_current": {"count": outdated, "members": firsts["not_under_current"]},
    }
