"""Finding partnerships and networks: search by name (accents, case and a typo or two do
not matter), filters, sort and cursor paging, from the directory read model
(projections/directory.py; the search itself: projections/queries/directory.py).

The directory is a projection, so it follows the writes a moment behind: an answer is
the directory as it stands (``position`` says how far it got; ``min_position`` waits
briefly for the caller's own write). That holds for ``possible_duplicates`` too, the
near-namesakes an opening answers with: a partnership opened a moment before may not be
among them yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from domain.lifecycle import THRESHOLDS as LIFECYCLE
from domain.lifecycle import FlagName
from domain.people import person_key
from domain.values import Importance, NetworkActivity, NetworkPurpose, NetworkRole, Role, Stage
from projections.queries.directory import (
    MAX_LIMIT,
    NETWORKS,
    PARTNERSHIPS,
    BadQuery,
    Keep,
    page,
    similar_partnerships,
)
from projections.queries.directory_filters import NetworkFilters, PartnershipFilters
from projections.queries.directory_flags import Flagged
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.commands import Receipt
from services.api.deps import Services, ServicesDep
from services.api.freshness import await_position
from services.api.problems import Problem
from services.api.projections import Dashboard, MinPosition, WaitMs

log = logging.getLogger(__name__)
router = APIRouter(tags=["directory"])
PROJECTION = "directory"

Q = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="Name search: accent-, case- and typo-tolerant; also a part"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page")]
Cursor = Annotated[str | None, Query(max_length=2_000, description="next_cursor of the previous page")]
Ended = Annotated[bool, Query(description="Ended ones too (a partnership merged into another has ended)")]


class Duplicate(BaseModel):
    id: UUID
    name: str
    similarity: float


class OpenedReceipt(Receipt):
    possible_duplicates: list[Duplicate] | None = Field(
        None,
        description="Partnerships whose partner names closely match, from the directory as it stands "
        "(it follows writes a moment behind); null if it could not be read.",
    )


def _bad(error: BadQuery) -> Problem:
    """A malformed cursor is a 400; any other question a listing cannot answer is shaped
    like an invalid parameter."""
    if error.field == "cursor":
        return Problem(400, "invalid_cursor", "Invalid cursor", str(error), field="cursor")
    field = f"query.{error.field}"
    errors = [{"field": field, "message": str(error), "type": "invalid_parameter"}]
    detail = f"{field}: {error}"
    return Problem(422, "validation_failed", "The request is not valid", detail, field=field, errors=errors)


def _answer(
    conn: Any, rm: Any, caught_up: bool, filters: dict[str, Any], rows: list[Any], cursor: str | None
) -> dict[str, Any]:
    return {
        "projection": PROJECTION,
        "position": position(conn, rm),
        "caught_up": caught_up,
        "filters": filters,
        "count": len(rows),
        "items": rows,
        "next_cursor": cursor,
    }


def _similarity(row: dict[str, Any]) -> dict[str, float]:
    return {} if row["similarity"] is None else {"similarity": float(row["similarity"])}


def _partnership(row: dict[str, Any]) -> dict[str, Any]:
    now, future = row["segment_now"], row["segment_future"]
    return {
        "id": row["id"],
        "partner_name": row["partner_name"],
        "kind": row["kind"],
        "roles": row["roles"],
        "owner_unit": row["owner_unit"],
        "steward": row["steward"],
        "stage": row["stage"],
        "segment": {"now": now, "future": future} if now is not None else None,
        "opened_at": row["opened_at"],
        "ended": row["ended"],
        "merged_into": row["merged_into"],
        **_similarity(row),
    }


@router.get("/v1/partnerships")
def list_partnerships(
    principal: Dashboard,
    services: ServicesDep,
    q: Q = None,
    steward: Annotated[str | None, Query(max_length=200, description="A steward's name, or `me`")] = None,
    unit: Annotated[str | None, Query(max_length=200, description="The owner unit")] = None,
    stage: Stage | None = None,
    segment_now: Annotated[Importance | None, Query(description="Importance now (URL-encode + as %2B)")] = None,
    segment_future: Annotated[Importance | None, Query(description="Importance in future")] = None,
    role: Role | None = None,
    flag: Annotated[FlagName | None, Query(description="A lifecycle flag it carries now")] = None,
    include_ended: Ended = False,
    sort: Literal["name", "opened_at", "relevance"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Partnerships by partner name, a page at a time. `sort`: `relevance` (the default
    with `q`: names beginning with it first, then by similarity), `name` (the default
    without) or `opened_at` (oldest first). A steward is matched however their name is
    typed; `me` is the caller. The segment is two filters, `segment_now` and
    `segment_future`, each optional (either alone, or both for one cell). `flag` keeps
    those the lifecycle board flags as of now. Pass the same parameters with
    `next_cursor` (null on the last page)."""
    mine = principal.name if steward == "me" else steward
    filters = PartnershipFilters(
        person_key(mine) if mine is not None else None,
        unit,
        stage.value if stage else None,
        segment_now.value if segment_now else None,
        segment_future.value if segment_future else None,
        role.value if role else None,
        include_ended,
    )
    echo: dict[str, Any] = {
        "q": q,
        "steward": steward,
        "unit": unit,
        "stage": filters.stage,
        "segment_now": filters.segment_now,
        "segment_future": filters.segment_future,
        "role": filters.role,
        "flag": flag,
        "include_ended": include_ended,
        "limit": limit,
    }
    caught_up = await_position(services, PROJECTION, min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, PROJECTION)
        keep: Keep | None = None
        if flag is not None:
            echo["as_of"] = now = datetime.now(UTC)  # flags are judged as of now, once for every chunk
            lifecycle, trust = (active_schema(conn, services.settings.db_schema, n) for n in ("lifecycle", "trust"))
            keep = Flagged(conn, lifecycle, trust, flag, now, LIFECYCLE)
        try:
            rows, next_cursor = page(conn, rm, PARTNERSHIPS, q, filters, sort, limit, cursor, keep)
        except BadQuery as error:
            raise _bad(error) from error
        echo["sort"] = sort or ("relevance" if q is not None else "name")
        return _answer(conn, rm, caught_up, echo, [_partnership(r) for r in rows], next_cursor)


@router.get("/v1/partnerships/similar")
def get_similar_partnerships(
    _: Dashboard,
    services: ServicesDep,
    name: Annotated[str, Query(min_length=1, max_length=200, description="The partner name about to be opened")],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """Partnerships whose partner names closely match `name` (trigram similarity at
    least 0.3), most similar first: ask before opening one."""
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, PROJECTION)
        found = similar_partnerships(conn, rm, name, limit)
        return {
            "projection": PROJECTION,
            "position": position(conn, rm),
            "name": name,
            "items": [{"id": pid, "name": partner, "similarity": s} for pid, partner, s in found],
        }


@router.get("/v1/networks")
def list_networks(
    _: Dashboard,
    services: ServicesDep,
    q: Q = None,
    role: NetworkRole | None = None,
    activity: NetworkActivity | None = None,
    purpose: NetworkPurpose | None = None,
    include_ended: Annotated[bool, Query(description="Networks we left too")] = False,
    sort: Literal["name", "joined_at", "relevance"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Networks by name, a page at a time, searched and sorted as partnerships are
    (`joined_at` for the opening)."""
    filters = NetworkFilters(
        role.value if role else None,
        activity.value if activity else None,
        purpose.value if purpose else None,
        include_ended,
    )
    echo = {"q": q, **filters.__dict__, "limit": limit, "sort": sort or ("relevance" if q is not None else "name")}
    caught_up = await_position(services, PROJECTION, min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, PROJECTION)
        try:
            rows, next_cursor = page(conn, rm, NETWORKS, q, filters, sort, limit, cursor)
        except BadQuery as error:
            raise _bad(error) from error
        items = [
            {
                "id": r["id"],
                "name": r["name"],
                "role": r["role"],
                "activity": r["activity"],
                "purposes": r["purposes"],
                "joined_at": r["joined_at"],
                "ended": r["ended"],
                **_similarity(r),
            }
            for r in rows
        ]
        return _answer(conn, rm, caught_up, echo, items, next_cursor)


def with_possible_duplicates(services: Services, receipt: Receipt, partner_name: str) -> OpenedReceipt:
    """The receipt of an opening, with the partnerships whose names closely match (itself
    left out). Advisory: the opening is recorded whatever this finds, or if it cannot look."""
    duplicates: list[Duplicate] | None = None
    try:
        with services.pool.connection() as conn:
            rm = active_schema(conn, services.settings.db_schema, PROJECTION)
            found = similar_partnerships(conn, rm, partner_name, exclude=str(receipt.id))
        duplicates = [Duplicate(id=UUID(pid), name=name, similarity=s) for pid, name, s in found]
    except (LookupError, psycopg.Error) as error:
        log.warning("possible duplicates not looked up: %s", type(error).__name__)
    return OpenedReceipt(**receipt.model_dump(), possible_duplicates=duplicates)
