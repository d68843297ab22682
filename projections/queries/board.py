"""The lifecycle board as of a moment, one page at a time, answered from indexed rows.

PostgreSQL finds the partnerships (their period in force at ``as_of``), filters and sorts
them by (partner_name, partnership_id) and walks a keyset cursor; the flags, which are
rules in the domain, are computed here for the rows on the page only. A ``flag`` filter
narrows the candidates in SQL by a necessary condition of that flag, then keeps the
candidates whose exact flags include it, in cursor order, until the page is full.

The answer is the one ``insights.lifecycle`` gives for the same question (the reference:
the published events folded in Python, projections/lifecycle.fold_all); tests hold the
two equal.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain import trust as model
from domain.lifecycle import Activity, LifecycleThresholds, PartnershipFacts, lifecycle_flags
from domain.values import Importance, Stage
from projections.queries.board_filters import PREFILTERS, prefilter_params
from projections.queries.rows import tuples

Key = tuple[str, str]  # (partner_name, partnership_id): the board's order and its cursor
SLACK = timedelta(seconds=1)  # windows read a little wider; the exact rule decides
MAX_CHUNK = 5_000


@dataclass(frozen=True)
class BoardQuery:
    as_of: datetime
    stage: str | None = None
    flag: str | None = None
    steward: str | None = None
    owner_unit: str | None = None
    limit: int = 100
    after: Key | None = None


_CANDIDATES = """
SELECT * FROM (
    SELECT pr.partnership_id, pr.partnership_id::text AS pid, pr.partner_name, pr.owner_unit, pr.steward, pr.stage,
        pr.stage_since, pr.opened_at, pr.segment_now, pr.segment_future, pr.left_at,
        CASE WHEN pa.last_contact_at IS NULL OR pa.last_contact_at <= %(t)s THEN pa.last_contact_at
        ELSE (SELECT max(c.at) FROM {rm}.contacts c WHERE c.partnership_id = pr.partnership_id AND c.at <= %(t)s)
        END AS last_contact_at
    FROM {rm}.periods pr JOIN {rm}.partners pa ON pa.partnership_id = pr.partnership_id
    WHERE pr.valid_from <= %(t)s AND (pr.valid_to IS NULL OR pr.valid_to > %(t)s) AND pr.opened_at <= %(t)s
      AND (%(stage)s::text IS NULL OR pr.stage = %(stage)s)
      AND (%(steward)s::text IS NULL OR pr.steward = %(steward)s)
      AND (%(unit)s::text IS NULL OR pr.owner_unit = %(unit)s)
      AND {keyset}
) x WHERE {prefilter}
ORDER BY x.partner_name, x.partnership_id LIMIT %(n)s
"""


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def very_high_by_steward(
    conn: psycopg.Connection[Any], rm: sql.Identifier, as_of: datetime, stewards: list[str] | None = None
) -> Counter[str]:
    """How many '++' partnerships each steward (of ``stewards``, or every one) looks after
    as of a moment: one grouped query."""
    only = sql.SQL("AND steward = ANY(%(stewards)s)") if stewards is not None else sql.SQL("")
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT steward, count(*) FROM {}.periods WHERE valid_from <= %(t)s "
            "AND (valid_to IS NULL OR valid_to > %(t)s) AND opened_at <= %(t)s AND segment_now = '++' {} "
            "GROUP BY steward"
        ).format(rm, only),
        {"t": as_of, "stewards": stewards},
    )
    return Counter({steward: int(n) for steward, n in rows})


def _candidates(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    q: BoardQuery,
    after: Key | None,
    n: int,
    params: dict[str, Any],
) -> list[dict[str, Any]]:
    prefilter = "true" if q.flag is None else PREFILTERS.get(q.flag, "false")
    # Spelled out only when there is a cursor, so the planner sees a plain index range.
    keyset = (
        '(pr.partner_name, pr.partnership_id) > (%(after_name)s::text COLLATE "C", %(after_id)s::uuid)'
        if after
        else "true"
    )
    text = _CANDIDATES.replace("{prefilter}", prefilter).replace("{keyset}", keyset)
    query = sql.SQL(text).format(rm=rm, trust=trust_rm)
    args = {
        **params,
        "stage": q.stage,
        "steward": q.steward,
        "unit": q.owner_unit,
        "after_name": after[0] if after else None,
        "after_id": after[1] if after else None,
        "n": n,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, args).fetchall()


def _trust(
    conn: psycopg.Connection[Any], trust_rm: sql.Identifier, ids: list[str], as_of: datetime, before: datetime
) -> dict[str, tuple[float | None, float | None]]:
    """(trust now, trust ``before``) per partnership, as insights.trust_at reads them."""
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT u.pid::text, s.state, "
            # The last point by then only matters before the state's own moment.
            "CASE WHEN s.state IS NULL OR (s.state->>'as_of')::timestamptz > %(t)s THEN "
            "(SELECT p.trust FROM {r}.trust_points p WHERE p.partnership_id = u.pid AND p.at <= %(t)s "
            " ORDER BY p.at DESC, p.version DESC LIMIT 1) END, "
            "(SELECT p.trust FROM {r}.trust_points p WHERE p.partnership_id = u.pid AND p.at <= %(b)s "
            " ORDER BY p.at DESC, p.version DESC LIMIT 1) "
            "FROM unnest(%(ids)s::uuid[]) u(pid) LEFT JOIN {r}.trust_state s ON s.partnership_id = u.pid"
        ).format(r=trust_rm),
        {"ids": ids, "t": as_of, "b": before},
    )
    answer: dict[str, tuple[float | None, float | None]] = {}
    for pid, state_json, at_now, at_before in rows:
        state = model.TrustState.from_dict(state_json) if state_json is not None else None
        now = model.decay(state, as_of).trust if state is not None and as_of >= state.as_of else at_now
        answer[pid] = (now, at_before)
    return answer


def _window(
    conn: psycopg.Connection[Any], rm: sql.Identifier, ids: list[str], since: datetime, as_of: datetime
) -> tuple[dict[str, list[Activity]], dict[str, list[tuple[datetime, float]]]]:
    """Activities and evaluations after ``since`` up to ``as_of``, in recorded order (the
    order the fold summed them in: float sums depend on it). One query for both."""
    activities: dict[str, list[Activity]] = {}
    evaluations: dict[str, list[tuple[datetime, float]]] = {}
    for pid, at, ours, theirs, outcome, _version in tuples(
        conn,
        sql.SQL(
            "SELECT partnership_id::text, at, our_hours, their_hours, NULL::float8, version FROM {rm}.activities "
            "WHERE partnership_id = ANY(%(ids)s::uuid[]) AND at > %(since)s AND at <= %(t)s "
            "UNION ALL SELECT partnership_id::text, at, NULL, NULL, outcome, version FROM {rm}.evaluations "
            "WHERE partnership_id = ANY(%(ids)s::uuid[]) AND at > %(since)s AND at <= %(t)s "
            "ORDER BY 1, 6"
        ).format(rm=rm),
        {"ids": ids, "since": since, "t": as_of},
    ):
        if outcome is None:
            activities.setdefault(pid, []).append(Activity(at.astimezone(UTC), ours, theirs))
        else:
            evaluations.setdefault(pid, []).append((at.astimezone(UTC), outcome))
    return activities, evaluations


def _evaluate(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    rows: list[dict[str, Any]],
    as_of: datetime,
    very_high: Counter[str] | None,
    t: LifecycleThresholds,
) -> list[dict[str, Any]]:
    """Each candidate with its exact flags and trust, as the domain rules decide them;
    ``very_high`` counted here for the candidates' stewards if not given."""
    if not rows:
        return []
    ids = [r["pid"] for r in rows]
    if very_high is None:
        very_high = very_high_by_steward(conn, rm, as_of, sorted({r["steward"] for r in rows}))
    trust = _trust(conn, trust_rm, ids, as_of, as_of - timedelta(days=t.trend_days))
    activities, evaluations = _window(conn, rm, ids, as_of - timedelta(days=t.window_days) - SLACK, as_of)
    answered = []
    for r in rows:
        pid = r["pid"]
        now_, future = r["segment_now"], r["segment_future"]
        facts = PartnershipFacts(
            partnership_id=pid,
            partner_name=r["partner_name"],
            owner_unit=r["owner_unit"],
            steward=r["steward"],
            stage=Stage(r["stage"]),
            stage_since=r["stage_since"].astimezone(UTC),
            opened_at=r["opened_at"].astimezone(UTC),
            last_contact_at=_utc(r["last_contact_at"]),
            segment_now=Importance(now_) if now_ is not None else None,
            segment_future=Importance(future) if future is not None else None,
            activities=tuple(activities.get(pid, ())),
            evaluations=tuple(evaluations.get(pid, ())),
            steward_left_at=_utc(r["left_at"]),
        )
        now, before = trust.get(pid, (None, None))
        flags = lifecycle_flags(facts, as_of, now, before, very_high, t)
        answered.append(
            {
                "partnership_id": pid,
                "partner_name": facts.partner_name,
                "owner_unit": facts.owner_unit,
                "steward": facts.steward,
                "stage": facts.stage.value,
                "since": facts.stage_since,
                "last_contact_at": facts.last_contact_at,
                "trust": round(now, 6) if now is not None else None,
                "segment": {"now": now_, "future": future} if now_ is not None and future is not None else None,
                "transitions": [],
                "flags": [{"name": flag.name, "reasons": list(flag.reasons)} for flag in flags],
            }
        )
    return answered


def _add_transitions(
    conn: psycopg.Connection[Any], rm: sql.Identifier, rows: list[dict[str, Any]], as_of: datetime
) -> None:
    by_id = {r["partnership_id"]: r for r in rows}
    for pid, at, previous, stage, reason in tuples(
        conn,
        sql.SQL(
            "SELECT partnership_id::text, at, previous, stage, reason FROM {}.transitions "
            "WHERE partnership_id = ANY(%s::uuid[]) AND at <= %s ORDER BY partnership_id, version"
        ).format(rm),
        (list(by_id), as_of),
    ):
        by_id[pid]["transitions"].append(
            {"at": at.astimezone(UTC).isoformat(), "from": previous, "to": stage, "reason": reason}
        )


def board_page(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    q: BoardQuery,
    t: LifecycleThresholds,
) -> tuple[list[dict[str, Any]], Key | None]:
    """One page of the board and the key to continue after it (None on the last page)."""
    as_of = q.as_of
    # Every steward's count only when it decides which rows are candidates.
    very_high = very_high_by_steward(conn, rm, as_of) if q.flag == "needs_handover" else None
    params = prefilter_params(as_of, very_high, t)
    page: list[dict[str, Any]] = []
    after, chunk, more = q.after, q.limit + 1, False
    seen = matched = 0
    while not more:
        candidates = _candidates(conn, rm, trust_rm, q, after, chunk, params)
        if not candidates:
            break
        evaluated = _evaluate(conn, rm, trust_rm, candidates, as_of, very_high, t)
        for row in evaluated:
            seen += 1
            if q.flag is None or any(f["name"] == q.flag for f in row["flags"]):
                matched += 1
                if len(page) == q.limit:
                    more = True  # one more match exists: the page is not the last
                    break
                page.append(row)
        if len(candidates) < chunk:
            break
        after = (candidates[-1]["partner_name"], candidates[-1]["pid"])
        # Enough candidates for the rest of the page at the rate seen so far, plus a margin.
        wanted = (q.limit + 1 - len(page)) * seen / max(matched, 1) * 1.25
        chunk = max(50, min(MAX_CHUNK, math.ceil(wanted)))
    if page:
        _add_transitions(conn, rm, page, as_of)
    last = (page[-1]["partner_name"], page[-1]["partnership_id"]) if more and page else None
    return page, last


def partner_name(conn: psycopg.Connection[Any], rm: sql.Identifier, partnership_id: str) -> str | None:
    """The name the board sorts a partnership by (a cursor names the id alone)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT partner_name FROM {}.partners WHERE partnership_id = %s").format(rm), (partnership_id,)
        ).fetchone()
    return None if row is None else str(row["partner_name"])
