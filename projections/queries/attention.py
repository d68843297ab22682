"""A steward's attention list as of a moment, answered from the lifecycle rows.

The steward's partnerships in force then are found through the periods' (steward_key,
partner_name, partnership_id) index, a chunk at a time, and judged exactly as the board
judges them (projections/queries/board.py: facts, trust and flags); a few more queries per
chunk read what attention needs besides (how often each was segmented, its last
evaluation), and the rules in domain/attention.py rank the result. The cost follows the
steward's portfolio, not the organisation's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from domain.attention import THRESHOLDS as ATTENTION
from domain.attention import AttentionFacts, AttentionItem, AttentionThresholds, Catalogue, LastEvaluation, attention
from domain.lifecycle import THRESHOLDS as LIFECYCLE
from domain.lifecycle import LifecycleThresholds, cell_of
from projections.queries.board import BoardQuery, candidates, judge
from projections.queries.board_facts import operating_model_at
from projections.queries.board_filters import prefilter_params
from projections.queries.rows import tuples

CHUNK = 500
_OPEN = "x.stage <> 'ended'"  # an ended partnership asks for nothing


def catalogue_at(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> Catalogue | None:
    """The criteria catalogue in force at a moment (as evaluation coverage reads it)."""
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT version, effective FROM {}.catalogues WHERE effective <= %s ORDER BY effective DESC, version DESC "
            "LIMIT 1"
        ).format(rm),
        (as_of,),
    )
    return Catalogue(int(rows[0][0]), rows[0][1].astimezone(UTC)) if rows else None


def evaluation_and_segmentations(
    conn: psycopg.Connection[Any], rm: sql.Identifier, ids: list[str], as_of: datetime
) -> dict[str, tuple[int, LastEvaluation | None]]:
    """Per partnership: how many segmentations took effect by then, and its last evaluation."""
    answer: dict[str, tuple[int, LastEvaluation | None]] = {}
    for pid, segmentations, at, version, catalogue in tuples(
        conn,
        sql.SQL(
            "SELECT u.pid::text,"
            " (SELECT count(*) FROM {rm}.segments g WHERE g.partnership_id = u.pid AND g.at <= %(t)s),"
            " e.at, e.version, e.catalogue_version FROM unnest(%(ids)s::uuid[]) u(pid) LEFT JOIN LATERAL ("
            "  SELECT at, version, catalogue_version FROM {rm}.evaluations WHERE partnership_id = u.pid AND at <= %(t)s"
            "  ORDER BY at DESC, version DESC LIMIT 1) e ON true"
        ).format(rm=rm),
        {"ids": ids, "t": as_of},
    ):
        last = LastEvaluation(at.astimezone(UTC), int(version), catalogue) if at is not None else None
        answer[pid] = (int(segmentations), last)
    return answer


def steward_attention(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    steward: str,
    as_of: datetime,
    owner_unit: str | None = None,
    lifecycle: LifecycleThresholds = LIFECYCLE,
    t: AttentionThresholds = ATTENTION,
) -> list[AttentionItem]:
    """The ranked attention list of one steward (a name or person key) as of a moment,
    over their open partnerships (of ``owner_unit`` only, if given)."""
    model = operating_model_at(conn, rm, as_of)
    catalogue = catalogue_at(conn, rm, as_of)
    params = prefilter_params(as_of, model, None, lifecycle)
    query = BoardQuery(as_of, steward=steward, owner_unit=owner_unit)
    found: list[AttentionFacts] = []
    after = None
    while True:
        rows = candidates(conn, rm, trust_rm, query, after, CHUNK, params, prefilter=_OPEN)
        extra = evaluation_and_segmentations(conn, rm, [r["pid"] for r in rows], as_of) if rows else {}
        for judged in judge(conn, rm, trust_rm, rows, as_of, model, None, lifecycle):
            facts = judged.facts
            segmentations, last = extra[facts.partnership_id]
            found.append(
                AttentionFacts(facts, tuple(judged.flags), cell_of(facts, model), segmentations, last, catalogue)
            )
        if len(rows) < CHUNK:
            break
        after = (rows[-1]["partner_name"], rows[-1]["pid"])
    return attention(found, as_of, t)


def stewards_at(conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime) -> list[tuple[str, int]]:
    """Each steward name, as typed, of the open partnerships in force at a moment, with how
    many it stewards: one grouped query (names, not keys, so rows written before the key
    existed still count)."""
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT steward, count(*) FROM {}.periods"
            " WHERE valid_from <= %(t)s AND (valid_to IS NULL OR valid_to > %(t)s)"
            " AND opened_at <= %(t)s AND stage <> 'ended' GROUP BY steward ORDER BY steward"
        ).format(rm),
        {"t": as_of},
    )
    return [(steward, int(n)) for steward, n in rows]
