"""`min_position`: let a caller wait briefly until a projection has applied its own write."""

from __future__ import annotations

import time

from projections.queries.reading import applied
from projections.registry import active_schema
from services.api.deps import Services

POLL_S = 0.01


def await_position(services: Services, projection: str, min_position: int | None, wait_ms: int) -> bool:
    """True once the event at ``min_position`` is applied (or none was asked for).

    Each poll borrows a pooled connection only briefly: a waiting caller must not hold
    one of the few connections every other request needs."""
    if min_position is None:
        return True
    written = services.app.event_at(min_position)
    if written is None:
        return True  # nothing was recorded there, so there is nothing to wait for
    aggregate_id, version = written
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        with services.pool.connection() as conn:
            rm = active_schema(conn, services.settings.db_schema, projection)
            if applied(conn, rm, aggregate_id)[0] >= version:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
