"""Audit queries: searching every recorded event, and who has been asking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, field_validator

from contract.commands import When
from domain.values import check_storable
from projections.queries.stewardship import handovers, held_by
from projections.registry import active_schema
from services.api.deps import HistoryReader, ServicesDep, require
from services.audit.search import EventQuery, search
from services.auth import Principal
from services.erasure import erase_subject

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Admin = Annotated[Principal, Depends(require("admin"))]


def log_read(services: ServicesDep, principal: Principal, request: Request) -> None:
    with services.pool.connection() as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.audit_reads (actor, path, query) VALUES (%s, %s, %s)").format(
                sql.Identifier(services.settings.db_schema)
            ),
            (principal.name, request.url.path, Jsonb(dict(request.query_params))),
        )


@router.get("/events")
def search_events(
    request: Request,
    principal: HistoryReader,
    services: ServicesDep,
    actor: str | None = None,
    type: str | None = None,
    source: str | None = None,  # noqa: A002
    aggregate_id: UUID | None = None,
    aggregate_type: str | None = None,
    occurred_from: When | None = None,
    occurred_to: When | None = None,
    recorded_from: When | None = None,
    recorded_to: When | None = None,
    after: Annotated[int, Query(ge=0, description="Cursor: the last position of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Recorded events matching every filter given, in global order, a page at a time."""
    log_read(services, principal, request)
    query = EventQuery(
        actor, type, source, aggregate_id, aggregate_type, occurred_from, occurred_to, recorded_from, recorded_to
    )
    with services.pool.connection() as conn:
        events = search(conn, services.settings.db_schema, query, after, limit, services.app.reveal, services.app.keys)
    cursor = events[-1]["position"] if len(events) == limit else None
    return {"events": events, "next_cursor": cursor}


@router.get("/stewards/{steward}")
def steward_holdings(
    steward: str,
    request: Request,
    principal: HistoryReader,
    services: ServicesDep,
    at: Annotated[When | None, Query(description="The moment (valid time); default now")] = None,
    known_at: Annotated[When | None, Query(description="By what had been recorded at this moment")] = None,
) -> dict[str, Any]:
    """The partnerships a steward looked after at a moment."""
    log_read(services, principal, request)
    moment = at or datetime.now(UTC)
    with services.pool.connection() as conn:
        held = held_by(conn, *_schemas(services, conn), steward, moment, known_at)
    return {"steward": steward, "at": moment, "known_at": known_at, "partnerships": held}


@router.get("/handovers")
def handover_report(request: Request, principal: HistoryReader, services: ServicesDep) -> dict[str, Any]:
    """Partnerships whose steward left, who took over, and what happened next."""
    log_read(services, principal, request)
    with services.pool.connection() as conn:
        return {"handovers": handovers(conn, *_schemas(services, conn))}


def _schemas(services: ServicesDep, conn: Any) -> tuple[sql.Identifier, sql.Identifier]:
    base = services.settings.db_schema
    return active_schema(conn, base, "ownership"), active_schema(conn, base, "lifecycle")


class Erasure(BaseModel):
    subject: str = Field(
        pattern=r"^(person:.+|(partnership|network):[0-9a-fA-F-]{36})$",
        max_length=220,
        description="person:<name>, partnership:<id> or network:<id>",
    )

    @field_validator("subject")
    @classmethod
    def _subject_names_something(cls, subject: str) -> str:
        kind, _, name = subject.partition(":")
        if kind == "person":
            return f"person:{check_storable(name)}"
        return f"{kind}:{UUID(name)}"  # a malformed id is a ValueError: 422, not 500


@router.post("/erasures", status_code=200)
def erase_person(body: Erasure, _: Admin, services: ServicesDep) -> dict[str, Any]:
    """Erase one data subject: their key is destroyed and every read model rebuilt."""
    erase_subject(services.settings.require_database_url(), services.settings.db_schema, body.subject)
    return {"subject": "[erased]", "erased": True}


@router.get("/reads")
def audit_reads(
    _: Admin,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Who read the audit endpoints, what they asked and when (admin only)."""
    with services.pool.connection() as conn:
        reads = conn.execute(
            sql.SQL("SELECT id, at, actor, path, query FROM {}.audit_reads WHERE id > %s ORDER BY id LIMIT %s").format(
                sql.Identifier(services.settings.db_schema)
            ),
            (after, limit),
        ).fetchall()
    return {"reads": reads, "next_cursor": reads[-1]["id"] if len(reads) == limit else None}
