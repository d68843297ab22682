"""Network commands and queries, and the networks a partnership is a member of."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response

from contract.commands import When, body_of, creation_of
from domain.history import network_then
from domain.network import Network
from domain.partnership import Partnership
from projections.queries.insights import member_networks
from projections.queries.ownership import owners
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.bitemporal import AsOf, HistoryPage, KnownAt, history_page, state_then
from services.api.commands import Receipt, bind, record
from services.api.deps import HistoryReader, ServicesDep, Writer
from services.api.freshness import await_position
from services.api.projections import MinPosition, WaitMs

router = APIRouter(prefix="/v1/networks", tags=["networks"])
# Under the partnerships' prefix, but answered from the networks' read model.
partnership_router = APIRouter(prefix="/v1/partnerships", tags=["networks"])
JoinNetwork = creation_of(Network)
NetworkEventBody = body_of(Network)


@router.post("", status_code=201)
def join_network(body: JoinNetwork, principal: Writer, services: ServicesDep, response: Response) -> Receipt:
    """Record that we joined a network, why, in what role and how actively."""
    receipt = record(services, principal, body, response)
    response.headers["Location"] = f"/v1/networks/{receipt.id}"
    return receipt


@router.post("/{network_id}/events", status_code=201)
def record_event(
    network_id: UUID,
    body: Annotated[NetworkEventBody, Body()],
    principal: Writer,
    services: ServicesDep,
    response: Response,
) -> Receipt:
    """Record something that happened in a network (discriminated by `type`)."""
    return record(services, principal, bind(body, "network_id", network_id), response)


@router.get("/{network_id}")
def get_network(
    network_id: UUID,
    _: HistoryReader,
    services: ServicesDep,
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> dict[str, Any]:
    """The network's state: now, or as it was at `as_of` by what was known at `known_at`."""
    if as_of is not None or known_at is not None:
        return state_then(services, network_id, as_of, known_at, Network, network_then, "network")
    n: Network = services.app.get(network_id, Network)
    return {
        "id": n.id,
        "version": n.version,
        "name": n.name,
        "purposes": list(n.purposes),
        "role": n.role,
        "activity": n.activity,
        "best_before": n.best_before,
        "owner_unit": n.owner_unit,
        "steward": n.steward,
        "members": sorted(str(m) for m in n.members),
        "effort_hours": n.effort_hours,
        "last_outcome": n.last_outcome,
        "started_at": n.started_at,
        "left_reason": n.left_reason,
        "activation_open": n.activation_open,
        "ended": n.ended,
    }


@router.get("/{network_id}/history")
def get_history(network_id: UUID, _: HistoryReader, services: ServicesDep, page: HistoryPage) -> dict[str, Any]:
    """The network's events in recorded order, with both times and who recorded it, a
    page at a time: follow `next_cursor` (null on the last page)."""
    events, next_cursor = history_page(services, network_id, Network, page)
    return {"network_id": network_id, "events": events, "next_cursor": next_cursor}


@router.get("/{network_id}/owners")
def get_owners(
    network_id: UUID,
    _: HistoryReader,
    services: ServicesDep,
    at: Annotated[When | None, Query(description="Who owned it at this moment")] = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The ownership timeline from the projection, or the owner at one moment: as the
    partnerships' owners are answered. A network joined before joins named an owner has
    none until its first transfer."""
    services.app.require(network_id, Network)  # NotFound: a 404; nothing replayed
    caught_up = await_position(services, "ownership", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, "ownership")
        answer = owners(conn, rm, "network", network_id, at, known_at)
    return {**answer, "caught_up": caught_up}


@partnership_router.get("/{partnership_id}/networks")
def get_partnership_networks(
    partnership_id: UUID,
    _: HistoryReader,
    services: ServicesDep,
    as_of: Annotated[When | None, Query(description="Member at this moment (valid time); default now")] = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The networks we are in that the partnership is a member of, now or at `as_of`, by
    name, with when its membership began (null if added before that was kept)."""
    services.app.require(partnership_id, Partnership)  # NotFound: a 404
    caught_up = await_position(services, "networks", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, "networks")
        networks = member_networks(conn, rm, partnership_id, as_of)
        reached = position(conn, rm)
    answer: dict[str, Any] = {"partnership_id": partnership_id, "position": reached, "caught_up": caught_up}
    if as_of is not None:
        answer["as_of"] = as_of
    return {**answer, "networks": networks}
