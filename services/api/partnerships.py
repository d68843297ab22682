"""Partnership commands and queries."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response

from contract.commands import When, body_of, creation_of
from domain.history import partnership_then
from domain.partnership import Partnership
from projections.queries.ownership import owners
from projections.registry import active_schema
from services.api.bitemporal import AsOf, HistoryPage, KnownAt, history_page, state_then
from services.api.commands import Receipt, bind, record
from services.api.deps import HistoryReader, ServicesDep, Writer
from services.api.directory import OpenedReceipt, with_possible_duplicates
from services.api.freshness import await_position

router = APIRouter(prefix="/v1/partnerships", tags=["partnerships"])
OpenPartnership = creation_of(Partnership)
PartnershipEventBody = body_of(Partnership)


def load(services: ServicesDep, partnership_id: UUID) -> Partnership:
    partnership: Partnership = services.app.get(partnership_id, Partnership)  # NotFound: a 404 (problems.py)
    return partnership


@router.post("", status_code=201)
def open_partnership(
    body: OpenPartnership, principal: Writer, services: ServicesDep, response: Response
) -> OpenedReceipt:
    """Open a partnership with a partner, owned by a unit and looked after by a steward."""
    receipt = record(services, principal, body, response)
    response.headers["Location"] = f"/v1/partnerships/{receipt.id}"
    return with_possible_duplicates(services, receipt, body.partner.name)


@router.post("/{partnership_id}/events", status_code=201)
def record_event(
    partnership_id: UUID,
    body: Annotated[PartnershipEventBody, Body()],
    principal: Writer,
    services: ServicesDep,
    response: Response,
) -> Receipt:
    """Record something that happened in a partnership (discriminated by `type`)."""
    return record(services, principal, bind(body, "partnership_id", partnership_id), response)


@router.get("/{partnership_id}")
def get_partnership(
    partnership_id: UUID,
    _: HistoryReader,
    services: ServicesDep,
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> dict[str, Any]:
    """The partnership's state: now, or as it was at `as_of` by what was known at `known_at`."""
    if as_of is not None or known_at is not None:
        return state_then(services, partnership_id, as_of, known_at, Partnership, partnership_then, "partnership")
    p = load(services, partnership_id)
    return {
        "id": p.id,
        "version": p.version,
        "partner": p.partner.model_dump(mode="json"),
        "owner_unit": p.owner_unit,
        "steward": p.steward,
        "stage": p.stage,
        "stage_since": p.stage_since,
        "segment": p.segment.model_dump(mode="json") if p.segment else None,
        "contacts": p.contacts,
        "last_contact_at": p.last_contact_at,
        "interest_signals": p.interest_signals,
        "joint_activities": p.joint_activities,
        "last_outcome": p.last_outcome,
        "started_at": p.started_at,
        "ended": p.ended,
    }


@router.get("/{partnership_id}/history")
def get_history(partnership_id: UUID, _: HistoryReader, services: ServicesDep, page: HistoryPage) -> dict[str, Any]:
    """The partnership's events in recorded order, with both times and who recorded it,
    a page at a time: follow `next_cursor` (null on the last page)."""
    events, next_cursor = history_page(services, partnership_id, Partnership, page)
    return {"partnership_id": partnership_id, "events": events, "next_cursor": next_cursor}


@router.get("/{partnership_id}/owners")
def get_owners(
    partnership_id: UUID,
    _: HistoryReader,
    services: ServicesDep,
    at: Annotated[When | None, Query(description="Who owned it at this moment")] = None,
    known_at: KnownAt = None,
    min_position: Annotated[
        int | None, Query(ge=0, description="Wait briefly until the projection has applied this")
    ] = None,
    wait_ms: Annotated[int, Query(ge=0, le=10_000)] = 3_000,
) -> dict[str, Any]:
    """The ownership timeline from the projection, or the owner at one moment."""
    services.app.require(partnership_id, Partnership)  # NotFound: a 404; nothing replayed
    caught_up = await_position(services, "ownership", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, "ownership")
        answer = owners(conn, rm, "partnership", partnership_id, at, known_at)
    # Keys in the order integrators have always seen them.
    return {"partnership_id": partnership_id, "position": answer.pop("position"), "caught_up": caught_up} | answer
