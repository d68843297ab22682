"""`POST /v1/imports`: onboarding partnerships from a CSV body (services/importer.py), the
same import `verkosto import partnerships` runs.

The body is the file itself (Content-Type text/csv): python-multipart is not installed,
so multipart uploads are not read. Bodies are also bounded by the API's general limit
(``max_body_bytes``, services/api/limits.py), which answers 413 before this route when
it is the smaller one.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from domain.values import Stage
from services.api.deps import Services, ServicesDep, Writer
from services.api.directory import Duplicate
from services.api.problems import Problem
from services.importer import MalformedCsv, Planned, Report, import_partnerships, similar_in

router = APIRouter(tags=["imports"])
MAX_IMPORT_BYTES = 5 * 1024 * 1024
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})


class ImportedRow(BaseModel):
    row: int
    partner: str
    partnership_id: UUID
    stage: Stage
    segment: dict[str, str] | None


class RefusedRow(BaseModel):
    row: int
    column: str | None
    reason: str
    message: str
    matches: list[Duplicate] | None = None  # with possible_duplicate


class ImportAnswer(BaseModel):
    dry_run: bool
    created: list[ImportedRow]  # in a dry run: what would be
    already_imported: list[ImportedRow]
    refused: list[RefusedRow]
    events_recorded: int


def _row(p: Planned) -> ImportedRow:
    v = p.values
    segment = (
        {"now": v.segment_now.value, "future": v.segment_future.value} if v.segment_now and v.segment_future else None
    )
    return ImportedRow(row=p.row, partner=v.partner, partnership_id=p.partnership_id, stage=v.stage, segment=segment)


def answer(report: Report) -> ImportAnswer:
    return ImportAnswer(
        dry_run=report.dry_run,
        created=[_row(p) for p in report.created],
        already_imported=[_row(p) for p in report.already_imported],
        refused=[
            RefusedRow(
                row=r.row,
                column=r.column,
                reason=r.reason,
                message=r.message,
                matches=[Duplicate(id=i, name=n, similarity=s) for i, n, s in r.matches] if r.matches else None,
            )
            for r in report.refused
        ],
        events_recorded=report.events,
    )


def _import(services: Services, data: bytes, actor: str, dry_run: bool, allow_similar: bool) -> Report:
    if allow_similar:
        return import_partnerships(services.app, data, actor, dry_run=dry_run)
    with services.pool.connection() as conn:  # a lost database: a 503 (services/api/outage.py)
        try:
            similar = similar_in(conn, services.settings.db_schema)
        except LookupError as error:  # no directory read model (not migrated)
            detail = "the directory read model is missing; migrate, or import with allow_similar=true"
            raise Problem(503, "duplicate_check_unavailable", "The duplicate check cannot be made", detail) from error
        return import_partnerships(services.app, data, actor, dry_run=dry_run, similar=similar)


def _invalid_csv(message: str) -> Problem:
    # Shaped like any other invalid body (services/api/problems.py).
    errors = [{"field": "body", "message": message, "type": "malformed_csv"}]
    return Problem(
        422, "validation_failed", "The request is not valid", f"body: {message}", field="body", errors=errors
    )


@router.post(
    "/v1/imports",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_csv(
    request: Request,
    principal: Writer,
    services: ServicesDep,
    dry_run: Annotated[bool, Query(description="List what would be created; record nothing")] = False,
    allow_similar: Annotated[bool, Query(description="Import rows like an existing partner's name too")] = False,
) -> ImportAnswer:
    """Import partnerships, one a CSV row (columns: see `verkosto import partnerships --help`):
    each opened back-dated to `since` and placed at its stage with reason `imported`. The
    same file twice records nothing more. Refused rows come back with their line and
    reason; the rest are imported."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in CSV_TYPES:
        raise Problem(415, "unsupported_media_type", "Send the file as text/csv", f"not {content_type or 'none'}")
    data = await request.body()
    if len(data) > MAX_IMPORT_BYTES:
        detail = f"imports are limited to {MAX_IMPORT_BYTES} bytes; split the file"
        raise Problem(413, "payload_too_large", "The request body is too large", detail)
    try:
        report = await run_in_threadpool(_import, services, data, principal.name, dry_run, allow_similar)
    except MalformedCsv as error:
        raise _invalid_csv(f"the file {error}") from error
    return answer(report)
