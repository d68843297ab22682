"""A lost database or broker is a 503, said within about a second, never a time-out.

Every error that means a dependency is unreachable (psycopg's OperationalError and
InterfaceError, the pool's PoolTimeout, eventsourcing's versions of them, Kafka errors)
becomes ``503 dependency_unavailable`` problem+json naming the dependency, with
``Retry-After``. The API's pool waits at most ``POOL_WAIT_S`` for a connection, checks a
connection before handing it out, and starts a fresh connection attempt as soon as the
database is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg_pool
from eventsourcing import persistence
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kafka.errors import KafkaError

from services.api.problems import problem_response
from services.eventstore import CONNECT_TIMEOUT_S, POOL_WAIT_S, RECONNECT_TIMEOUT_S
from services.resilience import BROKER, DATABASE, RateLimitedLog, dependency_of

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2
_failures = RateLimitedLog(log)

TITLES = {
    DATABASE: "The database is unavailable",
    BROKER: "The message broker is unavailable",
}


def pool_settings() -> dict[str, Any]:
    """Keyword arguments for the API's psycopg_pool.ConnectionPool."""
    return {
        "timeout": POOL_WAIT_S,
        "reconnect_timeout": RECONNECT_TIMEOUT_S,
        "check": psycopg_pool.ConnectionPool.check_connection,
    }


def connection_kwargs() -> dict[str, Any]:
    return {"connect_timeout": CONNECT_TIMEOUT_S}


class LazyApplication:
    """The application, built on first use: an API started while the database is down
    still starts, answers 503 meanwhile, and builds it once the database is back."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._app: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def unavailable(request: Request, dependency: str, detail: str | None = None) -> JSONResponse:
    return problem_response(
        request,
        503,
        "dependency_unavailable",
        TITLES.get(dependency, "A dependency is unavailable"),
        detail or f"The {dependency} cannot be reached just now; try again in a few seconds.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        dependency=dependency,
    )


def install(api: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        dependency = dependency_of(exc)
        if dependency is None:  # the server answered with an error: ours, not an outage
            log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            return problem_response(request, 500, "internal_error", "Something went wrong on our side")
        _failures.failure(
            dependency,
            "%s %s: the %s is unavailable (%s: %s)",
            request.method,
            request.url.path,
            dependency,
            type(exc).__name__,
            str(exc).strip()[:300],
        )
        return unavailable(request, dependency)

    for error in (
        psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout
        psycopg.InterfaceError,
        persistence.OperationalError,
        persistence.InterfaceError,
        KafkaError,
    ):
        api.add_exception_handler(error, handle)
