"""Searching the event store as an auditor: by actor, type, source, aggregate and both
time axes, in stable global order, a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from contract.events import topics_of
from services.privacy import KeyStore, published_page
from services.store_search import SearchStore


@dataclass(frozen=True)
class EventQuery:
    actor: str | None = None
    type: str | None = None
    source: str | None = None
    aggregate_id: UUID | None = None
    aggregate_type: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None


def topics_for(query: EventQuery) -> list[str] | None:
    if query.type is None and query.aggregate_type is None:
        return None
    return topics_of(query.type, query.aggregate_type)


def search_kwargs(query: EventQuery) -> dict[str, Any]:
    """The query's filters as SearchStore.search's keyword arguments."""
    return {
        "topics": topics_for(query),
        "aggregate_id": query.aggregate_id,
        "actor": query.actor,
        "source": query.source,
        "occurred_from": query.occurred_from,
        "occurred_to": query.occurred_to,
        "recorded_from": query.recorded_from,
        "recorded_to": query.recorded_to,
    }


def search(
    conn: Any,
    schema: str,
    query: EventQuery,
    after: int = 0,
    limit: int = 100,
    reveal: Any = None,
    keys: KeyStore | None = None,
) -> list[dict[str, Any]]:
    """A page of matching events, personal fields revealed by ``reveal``; ``keys``, the
    store it unseals with, is asked for every subject of the page in one query first (a
    page of ownership transfers names many people: one round trip each, otherwise)."""
    rows = SearchStore(schema).search(conn, after=after, limit=limit, **search_kwargs(query))
    return published_page(rows, reveal, keys)


def search_all(
    conn: Any, schema: str, query: EventQuery, page: int = 1000, reveal: Any = None, keys: KeyStore | None = None
) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        events = search(conn, schema, query, after, page, reveal, keys)
        yield from events
        if len(events) < page:
            return
        after = events[-1]["position"]
