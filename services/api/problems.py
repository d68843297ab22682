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
        self, status: int, code: str, title: str, detail: str | None = None,
        headers: dict[str, str] | None = None, **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    request: Request, status: int, code: str, title: str, detail: str | None = None,
    headers: dict[str, str] | None = None, **extra: Any,
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
        return problem_response(
            request, exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        every = exc.errors()
        errors = [
            {"field": _field(e["loc"])[:MAX_MESSAGE], "message": printable(str(e["msg"]))[:MAX_MESSAGE], "type": e["type"]}
            for e in every[:MAX_ERRORS]
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        extra: dict[str, Any] = {"field": first["field"], "errors": errors}
        if len(every) > MAX_ERRORS:
            extra["errors_omitted"] = len(every) - MAX_ERRORS
        return problem_response(
            request, 422, "validation_failed", "The request is not valid",
            f"{first['field']}: {first['message']}", **extra,
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
                request, 422, "validation_failed", "The request is not valid",
                f"body: {exc.detail}", field="body",
                errors=[{"field": "body", "message": str(exc.detail), "type": "body_unreadable"}],
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)
