"""`as_of` and `known_at`: an aggregate's state at a moment, by what was recorded by
another, the same way for partnerships and networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query

from contract.commands import When
from services.api.deps import Services
from services.api.problems import not_found

AsOf = Annotated[When | None, Query(description="The state at this moment (valid time)")]
KnownAt = Annotated[When | None, Query(description="By what had been recorded at this moment")]
Fold = Callable[[Sequence[Any], datetime, datetime], dict[str, Any] | None]


def state_then(
    services: Services,
    aggregate_id: UUID,
    as_of: datetime | None,
    known_at: datetime | None,
    created: type,
    fold: Fold,
    noun: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)  # read once here; the domain only ever gets explicit times
    as_of, known_at = as_of or now, known_at or now
    events = services.app.domain_events(aggregate_id)
    if not events or not isinstance(events[0], created):
        raise not_found(noun, f"no {noun} {aggregate_id}")
    view = fold(events, as_of, known_at)
    if view is None:
        raise not_found(
            noun,
            f"{noun} {aggregate_id} did not exist at {as_of.isoformat()} "
            f"by what was recorded at {known_at.isoformat()}",
            title="Not known then",
        )
    return {"id": aggregate_id, "as_of": as_of, "known_at": known_at, **view}
