"""`POST /v1/imports/calendar`: a calendar system posts ICS, and meetings with known
partners become contacts (services/calendar_capture.py, what `verkosto import calendar`
runs). Nothing of the invitation is kept but who of ours took part, when, and which
partner.

The body is the ICS itself (Content-Type text/calendar); bodies are also bounded by the
API's general limit (``max_body_bytes``, services/api/limits.py), which answers 413
before this route when it is the smaller one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from services.api.deps import Services, ServicesDep, Writer
from services.api.problems import Problem
from services.calendar_capture import MalformedIcs, Ours, Report, capture, matcher_in

router = APIRouter(tags=["imports"])
MAX_ICS_BYTES = 5 * 1024 * 1024
ICS_TYPES = frozenset({"text/calendar", "application/ics", "text/plain"})


class SkippedMeeting(BaseModel):
    uid: str
    start: datetime | None
    reason: str


class RefusedContact(BaseModel):
    uid: str
    partnership_id: UUID
    code: str
    message: str


class CalendarAnswer(BaseModel):
    """Counts of contacts (a meeting with two partners is two), but ``meetings`` (events
    in the file) and ``unmatched`` (meetings of ours with no known open partnership)."""

    dry_run: bool
    meetings: int
    recorded: int  # in a dry run: would be
    moved: int
    cancelled: int  # in a dry run: would be
    unchanged: int
    already_recorded: int  # in a dry run only: whether they moved is found when recording
    unmatched: int
    skipped: list[SkippedMeeting]
    refused: list[RefusedContact]


def answer(report: Report) -> CalendarAnswer:
    return CalendarAnswer(
        dry_run=report.dry_run,
        meetings=report.meetings,
        recorded=report.recorded,
        moved=report.moved,
        cancelled=report.cancelled,
        unchanged=report.unchanged,
        already_recorded=report.already_recorded,
        unmatched=report.unmatched,
        skipped=[SkippedMeeting(uid=s.uid, start=s.start, reason=s.reason) for s in report.skipped],
        refused=[RefusedContact(**r._asdict()) for r in report.refused],
    )


def _invalid(field: str, message: str, kind: str) -> Problem:
    # Shaped like any other invalid request (services/api/problems.py).
    errors = [{"field": field, "message": message, "type": kind}]
    return Problem(
        422, "validation_failed", "The request is not valid", f"{field}: {message}", field=field, errors=errors
    )


def _capture(services: Services, data: bytes, ours: Ours, actor: str, dry_run: bool) -> Report:
    with services.pool.connection() as conn:  # a lost database: a 503 (services/api/outage.py)
        try:
            return capture(
                services.app, data, ours, actor, matcher_in(conn, services.settings.db_schema), dry_run=dry_run
            )
        except LookupError as error:  # no directory read model (not migrated)
            detail = "the directory read model is missing; migrate first"
            raise Problem(503, "partner_match_unavailable", "Partners cannot be matched", detail) from error


@router.post(
    "/v1/imports/calendar",
    openapi_extra={"requestBody": {"required": True, "content": {"text/calendar": {"schema": {"type": "string"}}}}},
)
async def import_calendar(
    request: Request,
    principal: Writer,
    services: ServicesDep,
    our_domain: Annotated[list[str], Query(min_length=1, description="A mail domain of ours (and those below it)")],
    timezone: Annotated[str, Query(max_length=100, description="Zone of floating times and all-day dates")] = "UTC",
    dry_run: Annotated[bool, Query(description="Say what would be recorded; record nothing")] = False,
) -> CalendarAnswer:
    """Record meetings with known partners from an iCalendar file as contacts (channel
    meeting): one of ours took part, and another attendee is in a domain the partner
    named or has exactly its name. Keyed by UID: the same invitation twice records once,
    a moved one is corrected, a cancelled one retracted. Kept: when, which partner, the
    names of ours who took part. Dropped: every address, the other attendees, the title,
    description and location. Meetings not yet happened are skipped, with the reason."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ICS_TYPES:
        raise Problem(415, "unsupported_media_type", "Send the file as text/calendar", f"not {content_type or 'none'}")
    for field, zone in (("query.our_domain", "UTC"), ("query.timezone", timezone)):
        try:
            ours = Ours.of(our_domain, zone)
        except ValueError as error:
            raise _invalid(field, str(error), "invalid_option") from error
    data = await request.body()
    if len(data) > MAX_ICS_BYTES:
        detail = f"calendar imports are limited to {MAX_ICS_BYTES} bytes; split the file"
        raise Problem(413, "payload_too_large", "The request body is too large", detail)
    try:
        report = await run_in_threadpool(_capture, services, data, ours, principal.name, dry_run)
    except MalformedIcs as error:
        raise _invalid("body", f"the file {error}", "malformed_ics") from error
    return answer(report)
