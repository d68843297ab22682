"""Conditional GET for the projection reads: an ETag on every answer, 304 when unchanged.

Two kinds of tag, chosen per request:

* ``W/"p-…"`` when the request names its moment (``as_of``) and waits for nothing
  (no ``min_position``): the answer is then a function of the query and of the read
  models' content, and that content is named by every projection's active version
  (a rebuild or an erasure switches it) and position. The tag is computed from those
  few rows *before* the route runs, so a matching If-None-Match is answered 304 without
  reading or computing the answer at all. Every projection's position is included, not
  just the ones a route reads: they all follow the same event stream, so this costs
  hardly any 304s and cannot go stale when a route starts reading one more projection.
* ``W/"b-…"`` otherwise: a hash of the body as sent, less its top-level ``as_of`` (which,
  defaulting to now, differs every time). "Now" moves flags and recommendations without
  any new event, so no position can stand for the answer; the route does its work, and
  only the transfer and the page's re-render are saved.

Tags are weak: equal answers, not byte-identical representations, are what they promise.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from psycopg import sql
from psycopg.rows import dict_row
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.lifecycle import THRESHOLDS as LIFECYCLE
from domain.trust_params import TRUST_MODEL_VERSION
from services.api.deps import ServicesDep
from services.api.projections import Dashboard

PREFIXES = ("/v1/projections/", "/v1/network-plan")
# The rules that turn read models into answers: a deploy that changes them changes the tags,
# so a page left open is not told "unchanged" about an answer the new rules compute anew.
RULES = (TRUST_MODEL_VERSION, repr(LIFECYCLE))
_TAG = "verkosto.etag"  # where the dependency leaves a position tag for the middleware
_IGNORED = frozenset({"wait_ms"})  # parameters that do not change the answer
CACHE_CONTROL = b"private, no-cache"  # may be kept by the asker only, and revalidated each time


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        self.etag = etag


def matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), as GET uses: W/ is ignored on both sides."""
    if not if_none_match:
        return False
    mine = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == mine for t in if_none_match.split(","))


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), default=str).encode()).hexdigest()[:32]


def read_models_version(conn: Any, base: str) -> list[tuple[str, str, int, int]]:
    """(projection, active schema, position, parked events) of every projection: what the
    read models hold."""
    with conn.cursor(row_factory=dict_row) as cur:
        active = cur.execute(
            sql.SQL("SELECT projection, rm_schema FROM {}.rm_active ORDER BY projection").format(sql.Identifier(base))
        ).fetchall()
        if not active:
            return []
        # The parked count too: `projections retry` applies parked events without moving
        # any position, and the answer changes all the same.
        union = sql.SQL(" UNION ALL ").join(
            sql.SQL(
                "SELECT {p} AS projection, (SELECT coalesce(max(position), 0) FROM {rm}.positions) AS position, "
                "(SELECT count(*) FROM {rm}.parked) AS parked"
            ).format(p=sql.Literal(row["projection"]), rm=sql.Identifier(row["rm_schema"]))
            for row in active
        )
        found = {r["projection"]: (int(r["position"]), int(r["parked"])) for r in cur.execute(union).fetchall()}
    return [(r["projection"], r["rm_schema"], *found[r["projection"]]) for r in active]


def position_tag(request: Request, principal: Dashboard, services: ServicesDep) -> None:
    """A route dependency (after authentication: Dashboard is the routes' own, so it runs
    once). Answers 304 before the route's work when the asker's copy is still current."""
    query = request.query_params
    if "as_of" not in query or "min_position" in query:
        return
    with services.pool.connection() as conn:
        version = read_models_version(conn, services.settings.db_schema)
    # "me" means the asker: two people's answers to the same words must not share a tag.
    items = sorted(
        (k, f"me:{principal.person_key}" if v == "me" else v) for k, v in query.multi_items() if k not in _IGNORED
    )
    markdown = "text/markdown" in request.headers.get("accept", "")
    etag = f'W/"p-{_digest(request.url.path, items, markdown, version, RULES)}"'
    request.scope[_TAG] = etag
    if matches(request.headers.get("if-none-match"), etag):
        raise NotModified(etag)


UnchangedSince = Depends(position_tag)


def _body_tag(body: bytes, content_type: str) -> str:
    payload: Any = body
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            parsed.pop("as_of", None)
            payload = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    return f'W/"b-{hashlib.sha256(payload).hexdigest()[:32]}"'


class ConditionalGet:
    """Adds the ETag to a successful read and turns it into a 304 when the asker has it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or not path.startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    await send(message)  # errors and 304s pass as they are
                else:
                    start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._answer(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffered)

    @staticmethod
    async def _answer(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"etag", b"cache-control")]
        content_type = dict(headers).get(b"content-type", b"").decode("latin-1")
        etag = scope.get(_TAG) or _body_tag(body, content_type)
        asked = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
        tagged = [*headers, (b"etag", etag.encode()), (b"cache-control", CACHE_CONTROL)]
        if scope["path"] == "/v1/network-plan":
            tagged.append((b"vary", b"Accept"))  # JSON or Markdown, by what was asked for
        if matches(asked, etag):
            kept = [(k, v) for k, v in tagged if k.lower() not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": tagged})
        await send({"type": "http.response.body", "body": body})


def install(api: FastAPI) -> None:
    """The middleware for every matching path, and the 304 that the dependency raises."""

    async def not_modified(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotModified)
        return Response(status_code=304, headers={"ETag": exc.etag, "Cache-Control": CACHE_CONTROL.decode()})

    api.add_exception_handler(NotModified, not_modified)
    api.add_middleware(ConditionalGet)
