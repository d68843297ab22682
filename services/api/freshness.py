"""`min_position`: let a caller wait briefly until a projection has applied its own write."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from projections.reading import wait_until_applied
from services.api.deps import Services


def await_position(
    services: Services, conn: psycopg.Connection[Any], rm: sql.Identifier, min_position: int | None, wait_ms: int
) -> bool:
    """True once the event at ``min_position`` is applied (or none was asked for)."""
    if min_position is None:
        return True
    written = services.app.event_at(min_position)
    if written is None:
        return True  # nothing was recorded there, so there is nothing to wait for
    aggregate_id, version = written
    return wait_until_applied(conn, rm, aggregate_id, version, wait_ms / 1000)
