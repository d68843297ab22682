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

from domain.lifecycle import (
    Flag,
    LifecycleThresholds,
    PartnershipFacts,
    lifecycle_flags,
)
from domain.operating_model import OperatingModel
from domain.people import person_key
from domain.values import Importance, Stage
from projections.queries.board_facts import in_force, operating_model_at, trust_now_and_peak, window
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
    steward: str | None = None  # a steward's name or key: matched by person_key
    owner_unit: str | None = None
    limit: int = 100
    after: Key | None = None


_CANDIDATES = """
SELECT * FROM (
    SELECT pr.partnership_id, pr.partnership_id::text AS pid, pr.partner_name, pr.owner_unit, pr.steward,
        pr.steward_key, pr.stage,
        pr.stage_since, pr.opened_at, pr.segment_now, pr.segment_future, pr.left_at,
        CASE WHEN pa.last_contact_at IS NULL OR pa.last_contact_at <= %(t)s THEN pa.last_contact_at
        ELSE (SELECT max(c.at) FROM {rm}.contacts c WHERE c.partnership_id = pr.partnership_id AND c.at <= %(t)s)
        END AS last_contact_at
    FROM {rm}.periods pr JOIN {rm}.partners pa ON pa.partnership_id = pr.partnership_id
    WHERE pr.valid_from <= %(t)s AND (pr.valid_to IS NULL OR pr.valid_to > %(t)s) AND pr.opened_at <= %(t)s
      AND (%(stage)s::text IS NULL OR pr.stage = %(stage)s)
      AND (%(steward)s::text IS NULL OR pr.steward_key = %(steward)s)
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
    """How many '++' partnerships each steward (of ``stewards``, or every one; by person
    key) looks after as of a moment: one grouped query."""
    only = sql.SQL("AND steward_key = ANY(%(stewards)s)") if stewards is not None else sql.SQL("")
    rows = tuples(
        conn,
        sql.SQL(
            "SELECT steward_key, count(*) FROM {}.periods WHERE valid_from <= %(t)s "
            "AND (valid_to IS NULL OR valid_to > %(t)s) AND opened_at <= %(t)s AND segment_now = '++' {} "
            "GROUP BY steward_key"
        ).format(rm, only),
        {"t": as_of, "stewards": stewards},
    )
    return Counter({steward: int(n) for steward, n in rows})


def candidates(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    q: BoardQuery,
    after: Key | None,
    n: int,
    params: dict[str, Any],
    prefilter: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``n`` partnerships in force at ``q.as_of`` after the key, in board order, that
    pass the query's filters (its flag's necessary condition, or ``prefilter``)."""
    if prefilter is None:
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
        "steward": person_key(q.steward) if q.steward is not None else None,
        "unit": q.owner_unit,
        "after_name": after[0] if after else None,
        "after_id": after[1] if after else None,
        "n": n,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, args).fetchall()


@dataclass(frozen=True)
class Judged:
    """A candidate as the domain rules see it: its facts, trust now, and exact flags."""

    facts: PartnershipFacts
    trust: float | None
    flags: list[Flag]


def judge(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    trust_rm: sql.Identifier,
    rows: list[dict[str, Any]],
    as_of: datetime,
    operating_model: OperatingModel,
    very_high: Counter[str] | None,
    t: LifecycleThresholds,
) -> list[Judged]:
    """Each candidate's facts, trust and exact flags, as the domain rules decide them;
    ``very_high`` (by person key) counted here for the candidates' stewards if not given."""
    if not rows:
        return []
    ids = [r["pid"] for r in rows]
    if very_high is None:
        very_high = very_high_by_steward(conn, rm, as_of, sorted({r["steward_key"] for r in rows}))
    trust = trust_now_and_peak(conn, trust_rm, ids, as_of)
    facts_window = window(conn, rm, ids, as_of - timedelta(days=max(t.window_days, 2 * t.trend_days)) - SLACK, as_of)
    held = in_force(conn, rm, ids, as_of)
    judged: list[Judged] = []
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
            activities=tuple(facts_window.activities.get(pid, ())),
            evaluations=tuple(facts_window.evaluations.get(pid, ())),
            steward_left_at=_utc(r["left_at"]),
            interests=tuple(facts_window.interests.get(pid, ())),
            **held[pid],
        )
        now, peak = trust.get(pid, (None, None))
        # The rule looks the steward up by name; the count is their person's.
        theirs = {facts.steward: very_high[r["steward_key"]]}
        judged.append(Judged(facts, now, lifecycle_flags(facts, as_of, operating_model, now, peak, theirs, t)))
    return judged


def _answer(judged: Judged) -> dict[str, Any]:
    """A judged candidate as the board serves it (transitions are added per page)."""
    facts, now = judged.facts, judged.trust
    now_ = facts.segment_now.value if facts.segment_now is not None else None
    future = facts.segment_future.value if facts.segment_future is not None else None
    return {
        "partnership_id": facts.partnership_id,
        "partner_name": facts.partner_name,
        "owner_unit": facts.owner_unit,
        "steward": facts.steward,
        "stage": facts.stage.value,
        "since": facts.stage_since,
        "last_contact_at": facts.last_contact_at,
        "trust": round(now, 6) if now is not None else None,
        "segment": {"now": now_, "future": future} if now_ is not None and future is not None else None,
        "roles": list(facts.roles),
        "transitions": [],
        "flags": [
            {"name": flag.name, "reasons": list(flag.reasons), "evidence": list(flag.evidence)} for flag in judged.flags
        ],
    }


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
    very_high = very_high_by_steward(conn, rm, as_of) if q.flag == "steward_overloaded" else None
    operating_model = operating_model_at(conn, rm, as_of)
    params = prefilter_params(as_of, operating_model, very_high, t)
    page: list[dict[str, Any]] = []
    after, chunk, more = q.after, q.limit + 1, False
    seen = matched = 0
    while not more:
        found = candidates(conn, rm, trust_rm, q, after, chunk, params)
        if not found:
            break
        evaluated = judge(conn, rm, trust_rm, found, as_of, operating_model, very_high, t)
        for row in map(_answer, evaluated):
            seen += 1
            if q.flag is None or any(f["name"] == q.flag for f in row["flags"]):
                matched += 1
                if len(page) == q.limit:
                    more = True  # one more match exists: the page is not the last
                    break
                page.append(row)
        if len(found) < chunk:
            break
        after = (found[-1]["partner_name"], found[-1]["pid"])
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
