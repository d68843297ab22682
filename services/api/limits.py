"""Limits at the door: the size and shape of a request are checked before any route
reads it, so one hostile request cannot exhaust memory or reach the database.

A pure ASGI middleware: it reads at most ``max_body_bytes`` (413 beyond, whatever the
Content-Length claims), refuses NUL in the path or query (PostgreSQL text cannot hold
it), and parses a JSON body once to bound its nesting and member count and to answer
malformed JSON with 422 ``validation_failed`` like any other invalid input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from services.api.problems import problem_response
from services.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refusal(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.field = status, code, title, detail, field


def check_url(scope: Scope) -> None:
    if "\x00" in unquote(scope.get("path", "")):
        raise _invalid("path", "must not contain the NUL character (U+0000)")
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query.lower():
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                raise _invalid(f"query.{name.replace(chr(0), '')}", "must not contain the NUL character (U+0000)")


def check_json_shape(body: Any, max_depth: int, max_items: int) -> None:
    """Walks the parsed body without recursion, counting depth and members."""
    items = 0
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise _invalid("body", f"nests deeper than {max_depth} levels")
            items += len(value)
            if items > max_items:
                raise _invalid("body", f"has more than {max_items} members and items")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _invalid(field: str, message: str) -> Refusal:
    return Refusal(422, "validation_failed", "The request is not valid", f"{field}: {message}", field)


def _is_json(scope: Scope) -> bool:
    # The first Content-Type, as Starlette reads it: a second one must not smuggle JSON
    # past the checks under another name.
    types = [value for name, value in scope.get("headers") or [] if name == b"content-type"]
    content_type = (types[0] if types else b"").split(b";")[0].strip().lower()
    return content_type in (b"", b"application/json") or content_type.endswith(b"+json")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.max_depth = settings.max_json_depth
        self.max_items = settings.max_json_items

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
            if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
                await self.app(scope, receive, send)
                return
            body = await self.read_body(scope, receive)
            if body and _is_json(scope):
                self.check_json(body)
        except Refusal as refusal:
            await self.refuse(scope, receive, send, refusal)
            return
        await self.app(scope, _replay(body, receive), send)

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise self.too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self.too_large()  # stop reading: the rest is never buffered
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def check_json(self, body: bytes) -> None:
        try:
            parsed = json.loads(body)
        except RecursionError:
            raise _invalid("body", f"nests deeper than {self.max_depth} levels") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise _invalid("body", f"is not valid JSON: {str(error)[:200]}") from None
        check_json_shape(parsed, self.max_depth, self.max_items)

    def too_large(self) -> Refusal:
        return Refusal(
            413,
            "payload_too_large",
            "The request body is too large",
            f"bodies are limited to {self.max_bytes} bytes",
        )

    async def refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        extra: dict[str, Any] = {}
        if refusal.field is not None:
            extra = {
                "field": refusal.field,
                "errors": [{"field": refusal.field, "message": refusal.detail.split(": ", 1)[-1], "type": "limit"}],
            }
        # Closing the connection tells a client still sending a huge body to stop.
        headers = {"Connection": "close"} if refusal.status == 413 else None
        response = problem_response(
            Request(scope), refusal.status, refusal.code, refusal.title, refusal.detail, headers, **extra
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the real channel (so disconnects still arrive)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install(api: Any, settings: Settings) -> None:
    api.add_middleware(RequestLimits, settings=settings)
