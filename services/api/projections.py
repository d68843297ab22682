"""Projection queries for dashboards: trust, lifecycle, portfolio, networks, the network plan.

Every answer states the projection's position (the last event applied) and takes
``min_position`` to wait briefly for the caller's own write. Time-dependent answers take
``as_of``; without it, "now" is read here, once, and passed down explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from contract.commands import When
from domain.lifecycle import THRESHOLDS as LIFECYCLE
from domain.lifecycle import FlagName
from domain.network_plan import network_plan, plan_markdown
from domain.values import Importance, Stage
from projections.queries import cells as portfolio
from projections.queries import cursor as cursors
from projections.queries import insights
from projections.queries import network_plan as plan_queries
from projections.queries.board import BoardQuery, board_page, partner_name
from projections.queries.coverage import evaluation_coverage
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.deps import ServicesDep, require
from services.api.freshness import await_position
from services.api.people import resolve_steward
from services.api.problems import Problem, not_found
from services.auth import Principal

router = APIRouter(tags=["projections"])


Dashboard = Annotated[Principal, Depends(require("dashboards:read"))]
AsOf = Annotated[When | None, Query(description="Evaluate as of this moment (default now)")]
MinPosition = Annotated[int | None, Query(ge=0, description="Wait briefly until this event is applied")]
WaitMs = Annotated[int, Query(ge=0, le=10_000)]
Cursor = Annotated[str | None, Query(max_length=2_000, description="next_cursor of the previous page")]


def _bad_cursor(why: str) -> Problem:
    return Problem(
        422,
        "invalid_cursor",
        "Invalid cursor",
        why,
        errors=[{"field": "cursor", "message": why, "type": "invalid_cursor"}],
    )


def _after(cursor: str | None, types: tuple[type, ...], uuid_at: int | None = None) -> list[Any] | None:
    """The key a cursor continues after; a cursor this API did not issue is a 422."""
    if cursor is None:
        return None
    try:
        key = cursors.decode(cursor, types)
        if uuid_at is not None:
            key[uuid_at] = str(UUID(key[uuid_at]))
    except ValueError as error:
        raise _bad_cursor("not a cursor this API issued") from error
    if any(isinstance(value, str) and "\x00" in value for value in key):
        raise _bad_cursor("not a cursor this API issued")
    return key


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
    limit: Annotated[int, Query(ge=1, le=5_000, description="Points per page")] = 500,
    cursor: Cursor = None,
    start: Annotated[When | None, Query(alias="from", description="Points at or after this moment")] = None,
    end: Annotated[When | None, Query(alias="to", description="Points at or before this moment")] = None,
) -> dict[str, Any]:
    """The trust trajectory of one partnership, a page of points at a time, and where it
    stands as of a moment (``current``)."""
    key = _after(cursor, (str, int))
    after = None
    if key is not None:
        try:
            after = (datetime.fromisoformat(key[0]), key[1])
        except ValueError as error:
            raise _bad_cursor("not a cursor this API issued") from error
        if after[0].utcoffset() is None:
            raise _bad_cursor("not a cursor this API issued")
    caught_up = await_position(services, "trust", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "trust", caught_up)
        trajectory = insights.trust_trajectory(conn, rm, partnership_id, _now(as_of), limit, after, start, end)
    if trajectory is None:
        raise not_found("partnership", f"no trust trajectory for {partnership_id}")
    last = trajectory["next_cursor"]
    trajectory["next_cursor"] = cursors.encode([last[0].astimezone(UTC).isoformat(), last[1]]) if last else None
    return {**answer, "partnership_id": partnership_id, **trajectory}


@router.get("/v1/projections/lifecycle")
def get_lifecycle(
    principal: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    stage: Stage | None = None,
    flag: FlagName | None = None,
    owner_unit: str | None = None,
    steward: Annotated[str | None, Query(description="`me` (the token's person) or a steward's name, any case")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000, description="Partnerships per page")] = 100,
    cursor: Cursor = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Partnerships by partner name, a page at a time: stage, since when, transitions, and
    flags with reasons. ``next_cursor`` continues the same question (pass the same as_of
    and filters with it); it is null on the last page."""
    # The cursor carries the last row's id only, never its partner's name: a person's name
    # must not travel in URLs and access logs, where an erasure cannot reach it.
    key = _after(cursor, (str,), uuid_at=0)
    steward_key = resolve_steward(principal, steward)  # by person: "Alice" and "alice" are one
    moment = _now(as_of)
    caught_up = await_position(services, "lifecycle", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "lifecycle", caught_up)
        after = None
        if key:
            name = partner_name(conn, rm, key[0])
            if name is None:
                raise _bad_cursor("not a cursor this API issued")
            after = (name, key[0])
        query = BoardQuery(moment, stage.value if stage else None, flag, steward_key, owner_unit, limit, after)
        trust_rm = active_schema(conn, services.settings.db_schema, "trust")
        rows, last = board_page(conn, rm, trust_rm, query, LIFECYCLE)
    return {
        **answer,
        "as_of": moment,
        "count": len(rows),
        "next_cursor": cursors.encode([last[1]]) if last else None,
        "partnerships": rows,
    }


def _cell_link(now: str, future: str, moment: datetime, after: str | None) -> str:
    query = {"now": now, "future": future, "as_of": moment.astimezone(UTC).isoformat()}
    if after is not None:
        query["cursor"] = cursors.encode([after])
    return "/v1/projections/portfolio/members?" + urlencode(query)


@router.get("/v1/projections/portfolio")
def get_portfolio(
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    since: Annotated[When | None, Query(description="Drift from this moment (default a year before as_of)")] = None,
    members: Annotated[int, Query(ge=0, le=200, description="Members listed per cell (and in rising and drift)")] = 20,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The now × future matrix: every cell's count and first members (``more`` links to
    the rest), the first rising members, and who moved between cells per quarter
    (``drift``: the latest moves, in quarter order; ``drift_count`` all of them), and the
    evaluation coverage against the criteria catalogue in force."""
    moment = _now(as_of)
    caught_up = await_position(services, "portfolio", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "portfolio", caught_up)
        counted = portfolio.counts(conn, rm, moment)
        firsts = portfolio.first_members(conn, rm, moment, members)
        rising = portfolio.rising(conn, rm, moment, members)
        moves = portfolio.moves(conn, rm, since or moment - timedelta(days=365), moment)
        lifecycle_rm = active_schema(conn, services.settings.db_schema, "lifecycle")
        coverage = evaluation_coverage(conn, lifecycle_rm, moment, members)
    cells = []
    for (now, future), count in counted.items():
        shown = firsts[(now, future)]
        more = None
        if count > len(shown):
            more = _cell_link(now, future, moment, shown[-1]["partnership_id"] if shown else None)
        cells.append(
            {"cell": f"{now}/{future}", "now": now, "future": future, "count": count, "members": shown, "more": more}
        )
    return {
        **answer,
        "as_of": moment,
        "cells": cells,
        "rising": rising,
        "rising_count": sum(
            n for (now, future), n in counted.items() if Importance(future).rank > Importance(now).rank
        ),
        # Capped like ``rising``: the answer's size must not follow how many partnerships
        # moved in the window; ``drift_count`` says how many did. The latest moves are
        # the ones a manager looks at first.
        "drift": [
            {
                "quarter": m.quarter,
                "partnership_id": m.partnership_id,
                "partner_name": m.partner_name,
                "from": "/".join(m.before) if m.before else None,
                "to": "/".join(m.after),
            }
            for m in (moves[len(moves) - members :] if members else [])
        ],
        "drift_count": len(moves),
        # Who was never evaluated, or not under the catalogue in force: comparable
        # outcomes need everyone scored on the same criteria.
        "evaluation_coverage": coverage,
    }


@router.get("/v1/projections/portfolio/members")
def get_portfolio_members(
    _: Dashboard,
    services: ServicesDep,
    now: Annotated[Importance, Query(description="The cell's importance now")],
    future: Annotated[Importance, Query(description="The cell's importance in future")],
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1_000, description="Members per page")] = 100,
    cursor: Cursor = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """One cell's members by partnership id, a page at a time."""
    key = _after(cursor, (str,), uuid_at=0)
    moment = _now(as_of)
    caught_up = await_position(services, "portfolio", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "portfolio", caught_up)
        page, last = portfolio.cell_page(conn, rm, moment, (now.value, future.value), limit, key[0] if key else None)
    return {
        **answer,
        "as_of": moment,
        "cell": f"{now.value}/{future.value}",
        "now": now.value,
        "future": future.value,
        "count": len(page),
        "next_cursor": cursors.encode([last]) if last else None,
        "members": page,
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
    """The network plan (JSON, or Markdown for text/markdown): each recommendation beside the decision
    in force at `as_of` (overrides marked), the impact of leaving, and the candidate networks to join."""
    moment = _now(as_of)
    caught_up = await_position(services, "networks", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, "networks", caught_up)
        lifecycle = active_schema(conn, services.settings.db_schema, "lifecycle")  # partners' names
        healths, sections = plan_queries.plan_at(conn, rm, moment, lifecycle)
    if "text/markdown" in request.headers.get("accept", ""):
        return PlainTextResponse(plan_markdown(healths, moment, sections=sections), media_type="text/markdown")
    return {**answer, "as_of": moment, **sections.to_dict()}  # networks with their decisions, to join, leaving
