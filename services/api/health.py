"""Liveness and readiness.

``/readyz`` names each dependency it needs: ``{"status": "ready", "checks": {"database":
{"ok": true, "detail": …}, "broker": {…}}}``, or ``503 dependency_unavailable``
problem+json with the same ``checks`` when one of them is gone. Both checks are bounded
(about a second each) and the broker's is cached for two seconds, so a load balancer
polling it costs next to nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg import sql

from services.api.deps import ServicesDep
from services.api.outage import RETRY_AFTER_S
from services.api.problems import problem_response
from services.eventstore import POOL_WAIT_S

router = APIRouter(tags=["health"])
BROKER_TIMEOUT_S = 1.0
BROKER_CACHE_S = 2.0
_broker_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_broker_lock = threading.Lock()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def check_database(services: Any) -> dict[str, Any]:
    try:
        with services.pool.connection(timeout=POOL_WAIT_S) as conn:
            conn.execute(
                sql.SQL("SELECT 1 FROM {}.command_log LIMIT 1").format(sql.Identifier(services.settings.db_schema))
            )
    except Exception as error:  # any failure here means "not ready", with the reason
        return {"ok": False, "detail": f"{type(error).__name__}: {str(error).strip()[:300]}"}
    return {"ok": True, "detail": "answers, and the schema is in place"}


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for entry in bootstrap.split(","):
        entry = entry.strip().rsplit("://", 1)[-1]
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        servers.append((host.strip("[]") or "127.0.0.1", int(port or 9092)))
    return servers


def check_broker(bootstrap: str | None) -> dict[str, Any]:
    """A TCP connection to any bootstrap server within a second; cached for two."""
    if not bootstrap:
        return {"ok": False, "detail": "VERKOSTO_KAFKA_BOOTSTRAP is not set"}
    now = time.monotonic()
    with _broker_lock:
        cached = _broker_cache.get(bootstrap)
        if cached is not None and now - cached[0] < BROKER_CACHE_S:
            return cached[1]
    failures = []
    result: dict[str, Any] | None = None
    for host, port in _servers(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=BROKER_TIMEOUT_S):
                result = {"ok": True, "detail": f"{host}:{port} accepts connections"}
                break
        except OSError as error:
            failures.append(f"{host}:{port}: {error.strerror or error}")
    if result is None:
        result = {"ok": False, "detail": "; ".join(failures) or "no bootstrap servers"}
    with _broker_lock:
        _broker_cache[bootstrap] = (time.monotonic(), result)
    return result


@router.get("/readyz", response_model=None)
def readyz(request: Request, services: ServicesDep) -> dict[str, Any] | JSONResponse:
    """The database answers with the schema in place, and the broker accepts connections."""
    checks = {
        "database": check_database(services),
        "broker": check_broker(services.settings.kafka_bootstrap),
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    if down:
        return problem_response(
            request,
            503,
            "dependency_unavailable",
            "Not ready",
            f"Unavailable: {', '.join(down)}",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            dependency=down[0],
            checks=checks,
        )
    return {"status": "ready", "checks": checks}
