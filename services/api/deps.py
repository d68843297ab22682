"""Typed dependencies: what a route needs, named once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from services.api.problems import Problem
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


def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Problem(401, "unauthenticated", "A bearer token is required", headers=_CHALLENGE)
    with services.pool.connection() as conn:
        principal = authenticate(conn, services.settings.db_schema, credentials.credentials)
    if principal is None:
        raise Problem(401, "invalid_token", "The token is not valid", headers=_CHALLENGE)
    return principal


def require(scope: str) -> Callable[..., Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows(scope):
            raise Problem(403, "insufficient_scope", f"This needs the '{scope}' scope", scope=scope)
        return principal

    return check


Writer = Annotated[Principal, Depends(require("events:write"))]
HistoryReader = Annotated[Principal, Depends(require("history:read"))]
