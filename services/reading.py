"""The application's reads of recorded aggregates and their histories, mixed into
services.application.Verkosto: an aggregate at its latest version, whether one of a
kind exists, its published history a page at a time, what a position holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent

from contract.events import published_event
from domain.base import Aggregate
from services.loading import SnapshotPort


class NotFound(LookupError):
    """No aggregate of the kind asked for has that id; ``noun`` names the kind."""

    code = "not_found"

    def __init__(self, message: str, noun: str = "id") -> None:
        super().__init__(message)
        self.noun = noun


class Reading:
    """Reads go through the recorder (the port to persistence: PostgreSQL in production,
    eventsourcing's in-memory recorder in the unit tests)."""

    recorder: ApplicationRecorder
    mapper: Mapper[UUID]
    load_many: Callable[[set[UUID]], dict[UUID, Aggregate]]  # services/loading.py's
    reveal: Callable[[str, dict[str, Any]], dict[str, Any]]  # services/application.py's

    def stored_events(self, aggregate_ids: Iterable[UUID]) -> list[dict[str, Any]]:
        return self.recorder.events_of(aggregate_ids)  # type: ignore[attr-defined,no-any-return]

    def domain_events(self, aggregate_id: UUID) -> list[Any]:
        """The aggregate's events, validated, in version order."""
        return [self._domain_event(row) for row in self.stored_events([aggregate_id])]

    def _domain_event(self, row: dict[str, Any]) -> Any:
        stored = StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
        return self.mapper.to_domain_event(stored)

    def _folded_event(self, row: dict[str, Any]) -> Any:
        """The event as loading an aggregate folds it: only what ``apply`` keeps unsealed."""
        stored = StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
        return self.mapper.to_folded_event(stored)  # type: ignore[attr-defined]

    def get(self, aggregate_id: UUID, kind: type[Aggregate]) -> Any:
        aggregate = self.load_many({aggregate_id}).get(aggregate_id)
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.__name__.lower()} {aggregate_id}", kind.__name__.lower())
        return aggregate

    def require(self, aggregate_id: UUID, kind: type[Aggregate]) -> None:
        """Raises NotFound unless an aggregate of this kind has this id: one indexed
        lookup of its first event, nothing loaded or unsealed."""
        if isinstance(self.recorder, SnapshotPort):
            topic = self.recorder.first_topic(aggregate_id)
        else:
            rows = self.stored_events([aggregate_id])
            topic = rows[0]["topic"] if rows else None
        if topic is None or not topic.startswith(f"{kind.__module__}:{kind.__qualname__}."):
            raise NotFound(f"no {kind.__name__.lower()} {aggregate_id}", kind.__name__.lower())

    def history(
        self,
        aggregate_id: UUID,
        kind: type[Aggregate],
        *,
        after: int = 0,
        limit: int | None = None,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The aggregate's published events after position ``after`` whose occurred_at is
        in [occurred_from, occurred_to), in recorded order; at most ``limit`` of them."""
        self.require(aggregate_id, kind)
        if isinstance(self.recorder, SnapshotPort):
            rows = self.recorder.history_page(
                aggregate_id, after=after, limit=limit, occurred_from=occurred_from, occurred_to=occurred_to
            )
            events = [published_event(r["topic"], bytes(r["state"]), r["notification_id"], self.reveal) for r in rows]
        else:
            rows = [r for r in self.stored_events([aggregate_id]) if r["notification_id"] > after]
            events = [published_event(r["topic"], bytes(r["state"]), r["notification_id"], self.reveal) for r in rows]
            events = [e for e in events if _within(e, occurred_from, occurred_to)][:limit]
        return events

    def event_at(self, position: int) -> tuple[UUID, int] | None:
        """Which aggregate version was recorded at a global position."""
        row = self.recorder.event_at(position)  # type: ignore[attr-defined]
        return (row["originator_id"], row["originator_version"]) if row else None


def _within(event: dict[str, Any], occurred_from: datetime | None, occurred_to: datetime | None) -> bool:
    occurred = datetime.fromisoformat(str(event["occurred_at"]))
    return (occurred_from is None or occurred >= occurred_from) and (occurred_to is None or occurred < occurred_to)
