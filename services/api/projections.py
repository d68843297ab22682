"""Projection queries for dashboards: trust, lifecycle, portfolio, networks, the network plan.

Every answer states the projection's position (the last event applied) and takes
``min_position`` to wait briefly for the caller's own write. Time-dependent answers take
``as_of``; without it, "now" is read here, once, and passed down explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from contract.commands import When
from domain.lifecycle import THRESHOLDS as LIFECYCLE
from domain.network_plan import network_plan, plan_markdown
from domain.portfolio import drift, matrix
from domain.values import Importance
from projections.queries import insights
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.deps import ServicesDep, require
from services.api.freshness import await_position
from services.api.problems import not_found
from services.auth import Principal

router = APIRouter(tags=["projections"])
Dashboard = Annotated[Principal, Depends(require("dashboards:read"))]
AsOf = Annotated[When | None, Query(description="Evaluate as of this moment (default now)")]
MinPosition = Annotated[int | None, Query(ge=0, description="Wait briefly until this event is applied")]
WaitMs = Annotated[int, Query(ge=0, le=10_000)]


def _now(as_of: datetime | None) -> datetime:
    return as_of or datetime.now(UTC)


def _freshness(services: ServicesDep, conn: Any, name: str, caught_up: bool) -> tuple[Any, dict[str, Any]]:
    rm = active_schema(conn, services.settings.db_schema, name)
    return rm, {"projection": name, "position": position(conn, rm), "caught_up": caught_up}


@router.get("/v1/projections/trust/{partnership_id}")
def get_trust(
    partnership_id: UUID,
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The trust trajectory of one partnership, and where it stands as of a moment."""
    caught_up = await_position(services, "trust", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "trust", caught_up)
        trajectory = insights.trust_trajectory(conn, rm, partnership_id, _now(as_of))
    if trajectory is None:
        raise not_found("partnership", f"no trust trajectory for {partnership_id}")
    return {**answer, "partnership_id": partnership_id, **trajectory}


@router.get("/v1/projections/lifecycle")
def get_lifecycle(
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    stage: str | None = None,
    flag: str | None = None,
    owner_unit: str | None = None,
    steward: str | None = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Every partnership's stage, since when, its transitions, and flags with reasons."""
    moment = _now(as_of)
    caught_up = await_position(services, "lifecycle", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "lifecycle", caught_up)
        trust_rm = active_schema(conn, services.settings.db_schema, "trust")
        rows = insights.lifecycle(conn, rm, trust_rm, moment, LIFECYCLE)
    rows = [
        r
        for r in rows
        if (stage is None or r["stage"] == stage)
        and (flag is None or any(f["name"] == flag for f in r["flags"]))
        and (owner_unit is None or r["owner_unit"] == owner_unit)
        and (steward is None or r["steward"] == steward)
    ]
    return {**answer, "as_of": moment, "count": len(rows), "partnerships": rows}


@router.get("/v1/projections/portfolio")
def get_portfolio(
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    since: Annotated[When | None, Query(description="Drift from this moment (default a year before as_of)")] = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The now × future matrix with members per cell, and who moved per quarter."""
    moment = _now(as_of)
    caught_up = await_position(services, "portfolio", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "portfolio", caught_up)
        histories = insights.segment_histories(conn, rm)
    cells = matrix(histories, moment)
    rising = [
        {**member, "cell": cell}
        for cell, members in cells.items()
        for member in members
        if Importance(cell.split("/")[1]).rank > Importance(cell.split("/")[0]).rank
    ]
    moves = drift(histories, since or moment - timedelta(days=365), moment)
    return {
        **answer,
        "as_of": moment,
        "cells": [
            {
                "cell": cell,
                "now": cell.split("/")[0],
                "future": cell.split("/")[1],
                "count": len(members),
                "members": members,
            }
            for cell, members in cells.items()
        ],
        "rising": rising,
        "drift": [
            {
                "quarter": m.quarter,
                "partnership_id": m.partnership_id,
                "partner_name": m.partner_name,
                "from": "/".join(m.before) if m.before else None,
                "to": "/".join(m.after),
            }
            for m in moves
        ],
    }


def _network_healths(
    services: ServicesDep, as_of: datetime | None, min_position: int | None, wait_ms: int
) -> tuple[dict[str, Any], list[Any]]:
    moment = _now(as_of)
    caught_up = await_position(services, "networks", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "networks", caught_up)
        healths = network_plan(insights.network_facts_all(conn, rm), moment)
    return {**answer, "as_of": moment}, healths


@router.get("/v1/projections/networks")
def get_networks(
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Each network's purposes, role, activity, effort, outcome, efficiency and recommendation."""
    answer, healths = _network_healths(services, as_of, min_position, wait_ms)
    return {**answer, "networks": [h.to_dict() for h in healths]}


@router.get("/v1/network-plan", response_model=None)
def get_network_plan(
    request: Request,
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any] | PlainTextResponse:
    """The organisation's network plan: JSON, or Markdown when asked for text/markdown."""
    answer, healths = _network_healths(services, as_of, min_position, wait_ms)
    if "text/markdown" in request.headers.get("accept", ""):
        return PlainTextResponse(plan_markdown(healths, answer["as_of"]), media_type="text/markdown")
    return {**answer, "networks": [h.to_dict() for h in healths]}
