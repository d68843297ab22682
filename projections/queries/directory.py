"""Finding partnerships and networks in the directory (projections/directory.py), a page
at a time.

Search (``q``): the query is normalised as names are (domain/names.py). A name matches
if its trigram similarity to the query reaches ``SIMILAR`` (pg_trgm's 0.3: a typo or two
in a short name), or if it contains the query (a query shorter than three characters:
if a word of the name begins with it). Candidates come from the trigram index only:
the names sharing a trigram with the query, with how many (similarity = shared /
(|name| + |query| - shared)) and whether they hold every trigram a name containing the
query must (``substring_trigrams``); the substring itself is then checked on those.

Orders, each ending in the id so it is total: ``name`` (the normalised name), the
opening (``opened_at``; ``joined_at`` for networks; oldest first) and ``relevance``
(with ``q`` only, its default: names beginning with the query first, then by
similarity, then by name). A cursor names the sort and the last row's id (with relevance
also its score), never a name: a person's name must not travel in URLs and logs, where
an erasure cannot reach it. It is a keyset: rows written between two pages neither
repeat nor vanish from the pages still to come.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.names import SIMILAR, normalise, substring_trigrams, trigrams, word_start_only
from projections.queries import cursor as cursors
from projections.queries.directory_filters import NetworkFilters, PartnershipFilters

MAX_LIMIT = 200
MAX_CHUNK = 5_000
Keep = Callable[[list[str]], set[str]]  # of some ids, those a page may show (a flag filter)


class BadQuery(ValueError):
    """A question this listing cannot answer, and the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Listing:
    table: str
    id: str
    trigrams: str
    since: str  # when it began: the column, and the name of that sort


PARTNERSHIPS = Listing("partnerships", "partnership_id", "partnership_trigrams", "opened_at")
NETWORKS = Listing("networks", "network_id", "network_trigrams", "joined_at")


@dataclass(frozen=True)
class Search:
    key: str  # the query normalised
    grams: list[str]
    required: list[str]  # held by every name that contains the query
    needle: str  # what the name (after a leading space) must contain

    @classmethod
    def of(cls, q: str) -> Search:
        key = normalise(q)
        if not key:
            raise BadQuery("q", "has no letter or digit to search by")
        needle = f" {key}" if word_start_only(key) else key
        return cls(key, sorted(trigrams(key)), sorted(substring_trigrams(key)), needle)

    def params(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "grams": self.grams,
            "nq": len(self.grams),
            "required": self.required,
            "nr": len(self.required),
            "needle": self.needle,
            "similar": SIMILAR,
        }


# The names sharing a trigram with the query, scored; {match} keeps those that match.
_SEARCHED = """
SELECT d.*, d.{id}::text AS id, sim.similarity, sim.similarity + CASE WHEN starts_with(d.name_key, %(key)s)
    THEN 1 ELSE 0 END AS relevance
FROM (
    SELECT t.{id}, count(*) AS shared, count(*) FILTER (WHERE t.trigram = ANY(%(required)s::text[])) AS held
    FROM {rm}.{trigrams} t WHERE t.trigram = ANY(%(grams)s::text[]) GROUP BY t.{id}
) s JOIN {rm}.{table} d USING ({id})
CROSS JOIN LATERAL (SELECT round(s.shared::numeric / (d.trigram_count + %(nq)s - s.shared), 6) AS similarity) sim
WHERE {match}
"""
_MATCH = "(sim.similarity >= %(similar)s OR (s.held = %(nr)s AND strpos(' ' || d.name_key, %(needle)s) > 0))"
_ALL = (
    "SELECT d.*, d.{id}::text AS id, NULL::numeric AS similarity, NULL::numeric AS relevance "
    "FROM {rm}.{table} d WHERE true"
)


def _order(listing: Listing, sort: str) -> tuple[str, str]:
    """(ORDER BY, keyset condition) of a sort: every column ascending in the keyset."""
    if sort == "name":
        return "d.name_key, d.{id}", '(d.name_key, d.{id}) > (%(after_key)s::text COLLATE "C", %(after_id)s::uuid)'
    if sort == listing.since:
        return "d.{since}, d.{id}", "(d.{since}, d.{id}) > (%(after_since)s::timestamptz, %(after_id)s::uuid)"
    return (
        "relevance DESC, d.name_key, d.{id}",
        "(-(sim.similarity + CASE WHEN starts_with(d.name_key, %(key)s) THEN 1 ELSE 0 END), d.name_key, d.{id}) > "
        '(-%(after_relevance)s::numeric, %(after_key)s::text COLLATE "C", %(after_id)s::uuid)',
    )


def check_sort(listing: Listing, sort: str | None, searched: bool) -> str:
    """The sort asked for, or the default; BadQuery for one this listing has not."""
    chosen = sort or ("relevance" if searched else "name")
    if chosen not in ("name", listing.since, "relevance"):
        raise BadQuery("sort", f"is one of name, {listing.since}, relevance")
    if chosen == "relevance" and not searched:
        raise BadQuery("sort", "relevance needs q")
    return chosen


def _after(
    conn: psycopg.Connection[Any], rm: sql.Identifier, listing: Listing, sort: str, cursor: str
) -> dict[str, Any]:
    """The keyset a cursor continues after; BadQuery unless this API issued it for this sort."""
    key: list[Any] | None = None
    for types in ((str, str), (str, str, str)):
        try:
            key = cursors.decode(cursor, types)
            break
        except ValueError:
            continue
    if key is None or key[0] != sort or (len(key) == 3) != (sort == "relevance"):
        raise BadQuery("cursor", "not a cursor this API issued for this sort")
    try:
        after_id = str(UUID(key[1]))
        relevance = Decimal(key[2]) if sort == "relevance" else None
    except (ValueError, InvalidOperation) as error:
        raise BadQuery("cursor", "not a cursor this API issued") from error
    if relevance is not None and not (relevance.is_finite() and 0 <= relevance <= 2):
        raise BadQuery("cursor", "not a cursor this API issued")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT name_key, {since} AS since FROM {rm}.{t} WHERE {id} = %s").format(
                since=sql.Identifier(listing.since),
                rm=rm,
                t=sql.Identifier(listing.table),
                id=sql.Identifier(listing.id),
            ),
            (after_id,),
        ).fetchone()
    if row is None:
        raise BadQuery("cursor", "not a cursor this API issued")
    return {
        "after_id": after_id,
        "after_key": row["name_key"],
        "after_since": row["since"],
        "after_relevance": relevance,
    }


def _cursor(sort: str, row: dict[str, Any]) -> str:
    return cursors.encode([sort, row["id"], *([str(row["relevance"])] if sort == "relevance" else [])])


def _fetch(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    listing: Listing,
    search: Search | None,
    where: list[str],
    params: dict[str, Any],
    sort: str,
    after: dict[str, Any] | None,
    n: int,
) -> list[dict[str, Any]]:
    order, keyset = _order(listing, sort)
    text = (_SEARCHED.replace("{match}", _MATCH) if search else _ALL) + "".join(f" AND {w}" for w in where)
    text += (f" AND {keyset}" if after else "") + f" ORDER BY {order} LIMIT %(n)s"
    names = {"id": listing.id, "since": listing.since, "table": listing.table, "trigrams": listing.trigrams}
    query = sql.SQL(text).format(rm=rm, **{k: sql.Identifier(v) for k, v in names.items()})
    args = {**params, **(search.params() if search else {}), **(after or {}), "n": n}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, args).fetchall()


def page(
    conn: psycopg.Connection[Any],
    rm: sql.Identifier,
    listing: Listing,
    q: str | None,
    filters: PartnershipFilters | NetworkFilters,
    sort: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    keep: Keep | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of rows matching ``q`` and the filters, and the cursor to the next page
    (None: the last). ``keep`` narrows each chunk of candidates further, in order, until
    the page is full. BadQuery: a question this listing cannot answer."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery("limit", f"is between 1 and {MAX_LIMIT}")
    search = Search.of(q) if q is not None else None
    where, params = filters.where()
    chosen = check_sort(listing, sort, search is not None)
    after = _after(conn, rm, listing, chosen, cursor) if cursor is not None else None
    found: list[dict[str, Any]] = []
    chunk, more, seen, matched = limit + 1, False, 0, 0
    while True:
        rows = _fetch(conn, rm, listing, search, where, params, chosen, after, chunk)
        kept = rows if keep is None else [r for r in rows if r["id"] in keep([r["id"] for r in rows])]
        seen, matched = seen + len(rows), matched + len(kept)
        for row in kept:
            if len(found) == limit:
                more = True  # one more match exists: the page is not the last
                break
            found.append(row)
        if more or len(rows) < chunk:
            break
        last = rows[-1]
        after = {
            "after_id": last["id"],
            "after_key": last["name_key"],
            "after_since": last[listing.since],
            "after_relevance": last["relevance"],
        }
        # Enough candidates for the rest of the page at the rate seen so far, plus a margin.
        chunk = max(50, min(MAX_CHUNK, math.ceil((limit + 1 - len(found)) * seen / max(matched, 1) * 1.25)))
    return found, _cursor(chosen, found[-1]) if more else None


def similar_partnerships(
    conn: psycopg.Connection[Any], rm: sql.Identifier, name: str, limit: int = 5, exclude: str | None = None
) -> list[tuple[str, str, float]]:
    """(id, partner name, similarity) of the partnerships whose names are most like
    ``name`` (at least ``SIMILAR``), merged ones left out, most similar first."""
    try:
        search = Search.of(name)
    except BadQuery:
        return []  # nothing to compare by (an erased name, punctuation only)
    query = sql.SQL(_SEARCHED.replace("{match}", "sim.similarity >= %(similar)s")).format(
        rm=rm,
        id=sql.Identifier("partnership_id"),
        table=sql.Identifier("partnerships"),
        trigrams=sql.Identifier("partnership_trigrams"),
    ) + sql.SQL(
        " AND d.merged_into IS NULL AND (%(exclude)s::uuid IS NULL OR d.partnership_id <> %(exclude)s::uuid)"
        " ORDER BY sim.similarity DESC, d.name_key, d.partnership_id LIMIT %(n)s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, {**search.params(), "exclude": exclude, "n": limit}).fetchall()
    return [(r["id"], r["partner_name"], float(r["similarity"])) for r in rows]
