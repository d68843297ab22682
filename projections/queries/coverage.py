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
    # One statement: ``grouped`` is referenced twice, so PostgreSQL computes it once.
    params = {"t": as_of, "n": members}
    rows = tuples(
        conn,
        sql.SQL(
            _LATEST + ", ranked AS ("
            " SELECT gap, partnership_id, partner_name,"
            " row_number() OVER (PARTITION BY gap ORDER BY partner_name, partnership_id) AS n"
            " FROM grouped WHERE gap IS NOT NULL) "
            "SELECT 0 AS part, NULL AS gap, 0::bigint AS n, NULL AS pid, NULL AS name,"
            " (SELECT version FROM current) AS current,"
            " count(*) AS total, count(*) FILTER (WHERE gap = 'never_evaluated') AS never,"
            " count(*) FILTER (WHERE gap = 'not_under_current') AS outdated FROM grouped "
            "UNION ALL SELECT 1, gap, n, partnership_id::text, partner_name, NULL, NULL, NULL, NULL FROM ranked"
            " WHERE n <= %(n)s ORDER BY 1, 2, 3"
        ).format(rm=rm),
        params,
    )
    _, _, _, _, _, current, total, never, outdated = rows[0]
    firsts: dict[str, list[dict[str, str]]] = {"never_evaluated": [], "not_under_current": []}
    for _, gap, _, pid, name, *_ in rows[1:]:
        firsts[gap].append({"partnership_id": pid, "partner_name": name})
    return {
        "catalogue_version": current,
        "partnerships": total,
        "never_evaluated": {"count": never, "members": firsts["never_evaluated"]},
        "not_under_current": {"count": outdated, "members": firsts["not_under_current"]},
    }
