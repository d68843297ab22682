"""Typed dependencies: what a route needs, named once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from services.api import throttle
from services.api.problems import Problem
from services.api.sessions import COOKIE as SESSION_COOKIE
from services.api.sessions import CSRF_HEADER, authenticate_session, cookie_write_allowed
from services.application import Verkosto
from services.auth import Principal, authenticate
from services.settings import Settings


@dataclass
class Services:
    settings: Settings
    app: Verkosto
    pool: ConnectionPool  # read models and tokens


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# A browser sends cookies with any form a foreign site makes it post, so a session's
# cookie counts for a write only with the proof that our own page sent it (CSRF; see
# services/api/sessions.py); reads need none.
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _session_cookie(request: Request) -> str | None:
    session_id = request.cookies.get(SESSION_COOKIE) or None
    if session_id is None or request.method in _SAFE_METHODS:
        return session_id
    if not cookie_write_allowed(request, session_id):
        raise Problem(
            403,
            "csrf",
            "Not sent by this site's own page",
            f"A write riding on a dashboard session must come from this site with the page's {CSRF_HEADER} "
            "header; other clients send their bearer token.",
        )
    return session_id


def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The bearer header, or else a dashboard session's cookie (see services/api/sessions.py).
    session_id = _session_cookie(request) if credentials is None else None
    if credentials is None and session_id is None:
        raise Problem(401, "unauthenticated", "A bearer token is required", headers=_CHALLENGE)
    with services.pool.connection() as conn:
        if credentials is not None:
            principal = authenticate(conn, services.settings.db_schema, credentials.credentials)
        else:
            principal = authenticate_session(conn, services.settings.db_schema, session_id)
    if principal is None:
        if credentials is not None:  # a stale session cookie must still get its 401 (sign in again)
            throttle.failed(request)  # 429 once this address has sent too many bad tokens
        raise Problem(401, "invalid_token", "The token is not valid", headers=_CHALLENGE)
    return principal


def require(scope: str) -> Callable[..., Principal]:
    # Security (not Depends) puts the scope into each operation's OpenAPI security requirement;
    # a default, not Annotated, because string annotations cannot see the local `scope`.
    def check(principal: Principal = Security(get_principal, scopes=[scope])) -> Principal:
        if not principal.allows(scope):
            raise Problem(403, "insufficient_scope", f"This needs the '{scope}' scope", scope=scope)
        return principal

    return check


Writer = Annotated[Principal, Depends(require("events:write"))]
HistoryReader = Annotated[Principal, Depends(require("history:read"))]
