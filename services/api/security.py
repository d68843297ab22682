"""Security headers on every response, and no token in the access log.

The headers are added by a pure ASGI wrapper around the whole application, outside even
Starlette's error middleware, so JSON answers, problem+json, 404s, 500s, static files
and the docs all carry them. The policy allows this origin only: the dashboards and
/docs ship their scripts and styles as files, with no inline script, handler or style
attribute.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NAMES = frozenset(name for name, _ in HEADERS)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message = {**message, "headers": [*kept, *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Any query parameter named like a token (token=, access_token=, …; also percent-encoded
# inside another parameter), up to the next separator. Applied to the access log's
# arguments, so a token that still arrives in a URL (an old bookmark, a pasted link)
# never reaches logs/api.log.
_TOKEN_IN_QUERY = re.compile(r"(token(?:=|%3D))[^&;#\s\"]*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log(logger: logging.Logger | None = None) -> None:
    """Adds the filter to uvicorn's access logger (once); uvicorn's own logging setup,
    which runs later, keeps filters already on a logger."""
    target = logger or logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in target.filters):
        target.addFilter(RedactTokens())


def install(api: FastAPI) -> None:
    redact_access_log()
    # Outermost, around the stack Starlette builds on first call (which begins with its
    # error middleware: a plain add_middleware would miss the 500 answers it makes).
    build = api.build_middleware_stack

    def build_with_headers() -> Any:
        return SecurityHeaders(build())

    api.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
