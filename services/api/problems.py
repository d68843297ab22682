"""RFC 9457 problem details, each with a stable ``code`` integrators can branch on."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.values import printable
from services.application import NotFound

MEDIA_TYPE = "application/problem+json"
MAX_ERRORS = 20  # an error body stays small however wrong the request was
MAX_MESSAGE = 300
log = logging.getLogger(__name__)


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII-escaped, so nothing a client sent (a lone surrogate, say) can make the
        # error itself fail to encode.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


# Why the application refused a command, by its stable ``code`` (domain.errors and
# services.application), as an HTTP status and title: the one place they are mapped.
UNKNOWN_ID = (404, "Unknown id")
REFUSED = (409, "Refused by a rule or a concurrent change")
UNRECORDABLE = (422, "The command cannot be recorded")
REFUSALS: dict[str, tuple[int, str]] = {
    "not_found": UNKNOWN_ID,
    "invalid_command": UNRECORDABLE,
    "already_exists": REFUSED,
    "version_conflict": REFUSED,
    "concurrent_write": REFUSED,
    "domain_rule": REFUSED,
    "aggregate_ended": REFUSED,
    "illegal_stage_transition": REFUSED,
    "stage_out_of_order": REFUSED,
    "invalid_outcome_factor": REFUSED,
    "occurred_before_start": REFUSED,
    "occurred_in_future": REFUSED,
    "nothing_changed": REFUSED,
    "membership": REFUSED,
    # The criteria catalogue and evaluations against it: rules of the organisation's state.
    "criteria": REFUSED,
    "too_many_criteria": REFUSED,
    "invalid_catalogue": REFUSED,
    "unknown_criterion": REFUSED,
    "criteria_not_scored": REFUSED,
    "scored_and_skipped": REFUSED,
    # Retractions, corrections and merges: the event or partnership named must allow it.
    "unknown_event": UNKNOWN_ID,
    "correction": REFUSED,
    "not_correctable": REFUSED,
    "already_retracted": REFUSED,
    "merge": REFUSED,
    # Networks: a member must be a partnership we know that had not ended by then; what
    # names a member must name a current one; a need is met only for an open activation.
    "unknown_member": UNKNOWN_ID,
    "member_ended": REFUSED,
    "not_a_member": REFUSED,
    "activation": UNRECORDABLE,
    "no_open_activation": REFUSED,
    # Network plan decisions: join names a candidate, the others a network we are in.
    "plan_decision": REFUSED,
    "not_a_candidate": REFUSED,
    "not_our_network": REFUSED,
}
DEFAULT_REFUSAL = REFUSED  # a domain rule added without a row here is still a 409


def refusal_status(code: str) -> tuple[int, str]:
    """The HTTP status and title for a refusal's code."""
    return REFUSALS.get(code, DEFAULT_REFUSAL)


def refused(code: str, message: str, details: dict[str, Any] | None = None) -> Problem:
    """The problem for a command the application refused."""
    status, title = refusal_status(code)
    extra = dict(details or {})
    if status == 422:  # shaped like any other invalid request
        extra["errors"] = [{"field": "body", "message": message, "type": code}]
    return Problem(status, code, title, message, **extra)


def not_found(noun: str, detail: str, title: str | None = None) -> Problem:
    """The problem for an id that names nothing (of that kind)."""
    status, _ = refusal_status("not_found")
    return Problem(status, "not_found", title or f"Unknown {noun}", detail)


def problem_response(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # A dict key in the path may be whatever the client sent, NUL included.
    return printable(".".join(str(part) for part in loc))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        # Any route that loads an aggregate by id: no try/except in the routers.
        return await _problem(request, not_found(exc.noun, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        every = exc.errors()
        errors = [
            {
                "field": _field(e["loc"])[:MAX_MESSAGE],
                "message": printable(str(e["msg"]))[:MAX_MESSAGE],
                "type": e["type"],
            }
            for e in every[:MAX_ERRORS]
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        extra: dict[str, Any] = {"field": first["field"], "errors": errors}
        if len(every) > MAX_ERRORS:
            extra["errors_omitted"] = len(every) - MAX_ERRORS
        return problem_response(
            request,
            422,
            "validation_failed",
            "The request is not valid",
            f"{first['field']}: {first['message']}",
            **extra,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Still problem+json, and nothing internal leaks to the client; the log has it.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal_error", "Something went wrong on our side")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body": invalid input like any other.
            return problem_response(
                request,
                422,
                "validation_failed",
                "The request is not valid",
                f"body: {exc.detail}",
                field="body",
                errors=[{"field": "body", "message": str(exc.detail), "type": "body_unreadable"}],
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)
