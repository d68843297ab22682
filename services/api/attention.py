"""Attention this week: what a steward should do, ranked, each item with its reason,
due date and evidence (domain/attention.py), computed from the lifecycle rows for that
steward's partnerships only (projections/queries/attention.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from projections.queries.attention import steward_attention
from projections.queries.reading import position
from projections.registry import active_schema
from services.api import people
from services.api.deps import ServicesDep
from services.api.freshness import await_position
from services.api.people import Dashboard, resolve_steward
from services.api.projections import AsOf, MinPosition, WaitMs

router = APIRouter(tags=["people"])


@router.get("/v1/attention")
def get_attention(
    principal: Dashboard,
    services: ServicesDep,
    steward: Annotated[
        str, Query(max_length=200, description="`me` (the token's person) or a steward's name, in any case")
    ] = "me",
    unit: Annotated[str | None, Query(description="Only partnerships this unit owns")] = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1_000, description="Items listed, most urgent first")] = 100,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The steward's attention list as of a moment: overdue items first, then by kind, then
    by due date; ``total`` counts every item, ``items`` lists the first ``limit``."""
    key = resolve_steward(principal, steward)
    moment = as_of or datetime.now(UTC)
    caught_up = await_position(services, "lifecycle", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, "lifecycle")
        trust_rm = active_schema(conn, services.settings.db_schema, "trust")
        items = steward_attention(conn, rm, trust_rm, key, moment, unit)
        at = position(conn, rm)
    return {
        "projection": "lifecycle",
        "position": at,
        "caught_up": caught_up,
        "as_of": moment,
        "steward": key,
        "total": len(items),
        "count": min(limit, len(items)),
        "items": [item.to_dict() for item in items[:limit]],
    }


# Who `me` is and which stewards exist: served beside the lists they are asked about.
router.include_router(people.router)
