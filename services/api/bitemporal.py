"""`as_of` and `known_at`: an aggregate's state at a moment, by what was recorded by
another, the same way for partnerships and networks (answered from the nearest
checkpoint, services/history_checkpoints.py); and their histories, a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query

from contract.commands import When
from domain.base import Aggregate
from services import history_checkpoints
from services.api.deps import Services
from services.api.problems import not_found

AsOf = Annotated[When | None, Query(description="The state at this moment (valid time)")]
KnownAt = Annotated[When | None, Query(description="By what had been recorded at this moment")]
Fold = Callable[..., dict[str, Any] | None]  # (events, as_of, known_at, start=None)


def state_then(
    services: Services,
    aggregate_id: UUID,
    as_of: datetime | None,
    known_at: datetime | None,
    kind: type[Aggregate],
    fold: Fold,
    noun: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)  # read once here; the domain only ever gets explicit times
    as_of, known_at = as_of or now, known_at or now
    # From the nearest checkpoint where that gives the same answer, else a full replay;
    # NotFound (a 404) when there is no such aggregate.
    view = history_checkpoints.state_then(services.app, aggregate_id, kind, fold, as_of, known_at)
    if view is None:
        raise not_found(
            noun,
            f"{noun} {aggregate_id} did not exist at {as_of.isoformat()} "
            f"by what was recorded at {known_at.isoformat()}",
            title="Not known then",
        )
    return {"id": aggregate_id, "as_of": as_of, "known_at": known_at, **view}


MAX_PAGE = 5_000


@dataclass(frozen=True)
class Page:
    limit: int
    after: int  # the position the cursor names: the page starts after it
    occurred_from: datetime | None
    occurred_to: datetime | None


def _page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many events")] = 500,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page")
    ] = None,
    occurred_from: Annotated[When | None, Query(alias="from", description="Events that occurred at or after")] = None,
    occurred_to: Annotated[When | None, Query(alias="to", description="Events that occurred before")] = None,
) -> Page:
    return Page(limit, int(cursor) if cursor else 0, occurred_from, occurred_to)


HistoryPage = Annotated[Page, Depends(_page)]


def history_page(
    services: Services, aggregate_id: UUID, kind: type[Aggregate], page: Page
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the aggregate's events and the cursor of the next (None after the last).
    The cursor is opaque to clients; it is the last position returned, so a page is a
    keyset range on the store's (originator_id, notification_id) index and events
    recorded meanwhile never shift it."""
    events = services.app.history(
        aggregate_id,
        kind,
        after=page.after,
        limit=page.limit + 1,  # one more than asked tells whether another page follows
        occurred_from=page.occurred_from,
        occurred_to=page.occurred_to,
    )
    if len(events) <= page.limit:
        return events, None
    events = events[: page.limit]
    return events, str(events[-1]["position"])
