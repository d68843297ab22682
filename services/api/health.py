"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from psycopg import sql

from services.api.deps import ServicesDep
from services.api.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> dict[str, Any]:
    """The database answers and the schema is in place."""
    try:
        with services.pool.connection(timeout=2) as conn:
            conn.execute(
                sql.SQL("SELECT 1 FROM {}.command_log LIMIT 1").format(
                    sql.Identifier(services.settings.db_schema)
                )
            )
    except Exception as error:  # any failure here means "not ready", with the reason
        raise Problem(503, "not_ready", "Not ready", str(error)) from error
    return {"status": "ready"}
