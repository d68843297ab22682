"""Network commands and queries."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Response

from contract.commands import body_of, creation_of
from domain.history import network_then
from domain.network import Network
from services.api.bitemporal import AsOf, HistoryPage, KnownAt, history_page, state_then
from services.api.commands import Receipt, bind, record
from services.api.deps import HistoryReader, ServicesDep, Writer

router = APIRouter(prefix="/v1/networks", tags=["networks"])
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
        "members": sorted(str(m) for m in n.members),
        "effort_hours": n.effort_hours,
        "last_outcome": n.last_outcome,
        "started_at": n.started_at,
        "left_reason": n.left_reason,
        "ended": n.ended,
    }


@router.get("/{network_id}/history")
def get_history(network_id: UUID, _: HistoryReader, services: ServicesDep, page: HistoryPage) -> dict[str, Any]:
    """The network's events in recorded order, with both times and who recorded it, a
    page at a time: follow `next_cursor` (null on the last page)."""
    events, next_cursor = history_page(services, network_id, Network, page)
    return {"network_id": network_id, "events": events, "next_cursor": next_cursor}
