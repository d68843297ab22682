"""Searching the event store as an auditor: by actor, type, source, aggregate and both
time axes, in stable global order, a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg import sql

from services.published import EVENT_TYPES, published_event


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
    return [
        get_topic(cls) for cls, (aggregate_type, name) in EVENT_TYPES.items()
        if query.type in (None, name) and query.aggregate_type in (None, aggregate_type)
    ]


def search(
    conn: Any, schema: str, query: EventQuery, after: int = 0, limit: int = 100, reveal: Any = None
) -> list[dict[str, Any]]:
    # The metadata lives in the stored JSON, read through stored_meta (services/schema.sql)
    # so that one event jsonb cannot hold never breaks a search. A full scan is fine at
    # today's volumes; expression indexes on meta fields are the next step when it is not.
    topics = topics_for(query)
    rows = conn.execute(
        sql.SQL(
            "SELECT notification_id, topic, state FROM ("
            " SELECT notification_id, topic, state, originator_id, "
            " {schema}.stored_meta(state) AS meta FROM {schema}.verkosto_events"
            " WHERE notification_id > %(after)s"
            "   AND (%(topics)s::text[] IS NULL OR topic = ANY(%(topics)s::text[]))"
            "   AND (%(aggregate)s::uuid IS NULL OR originator_id = %(aggregate)s::uuid)"
            ") e WHERE (%(actor)s::text IS NULL OR meta ->> 'actor' = %(actor)s::text)"
            " AND (%(source)s::text IS NULL OR meta ->> 'source' = %(source)s::text)"
            " AND (%(of)s::timestamptz IS NULL OR (meta ->> 'occurred_at')::timestamptz >= %(of)s::timestamptz)"
            " AND (%(ot)s::timestamptz IS NULL OR (meta ->> 'occurred_at')::timestamptz < %(ot)s::timestamptz)"
            " AND (%(rf)s::timestamptz IS NULL OR (meta ->> 'recorded_at')::timestamptz >= %(rf)s::timestamptz)"
            " AND (%(rt)s::timestamptz IS NULL OR (meta ->> 'recorded_at')::timestamptz < %(rt)s::timestamptz)"
            " ORDER BY notification_id LIMIT %(limit)s"
        ).format(schema=sql.Identifier(schema)),
        {
            "after": after, "topics": topics, "aggregate": query.aggregate_id, "actor": query.actor,
            "source": query.source, "of": query.occurred_from, "ot": query.occurred_to,
            "rf": query.recorded_from, "rt": query.recorded_to, "limit": limit,
        },
    ).fetchall()
    return [
        published_event(_get(r, 1, "topic"), bytes(_get(r, 2, "state")), _get(r, 0, "notification_id"), reveal)
        for r in rows
    ]


def search_all(
    conn: Any, schema: str, query: EventQuery, page: int = 1000, reveal: Any = None
) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        events = search(conn, schema, query, after, page, reveal)
        yield from events
        if len(events) < page:
            return
        after = events[-1]["position"]


def _get(row: Any, index: int, name: str) -> Any:
    return row[name] if isinstance(row, dict) else row[index]
