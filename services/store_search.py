"""The event store's audit search (services/audit/search.py asks it): the one statement
built from the filters given. Part of the adapter in services/store.py, on the same
``Tables``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.store import Row, Tables


class SearchStore(Tables):
    """The SQL of the audit search."""

    def search(
        self,
        conn: Any,
        *,
        after: int,
        limit: int,
        topics: list[str] | None = None,
        aggregate_id: UUID | None = None,
        actor: str | None = None,
        source: str | None = None,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
        recorded_from: datetime | None = None,
        recorded_to: datetime | None = None,
    ) -> list[Row]:
        """notification_id, topic, state of the events after ``after`` that match every
        given filter, a page of ``limit`` in global order.

        Only the filters given enter the statement (a generic "param IS NULL OR ..." would
        hide them from the planner once psycopg prepares it). Actor, source and the times
        are read from event_meta (services/schema.sql: one narrow row per event, written
        with it), topic and aggregate from the events; every filter has an index ending
        with the position, so a filter and the cursor are one range scan. Several topics
        (a type, an aggregate type) are read topic by topic, each topic a constant the
        planner weighs by its statistics and each at most ``limit`` rows, then merged:
        never a sort of every match."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        where: list[str] = []
        meta = False
        for name, value, condition, on_meta in (
            ("aggregate", aggregate_id, "e.originator_id = %(aggregate)s::uuid", False),
            ("actor", actor, "m.actor = %(actor)s::text", True),
            ("source", source, "m.source = %(source)s::text", True),
            ("of", occurred_from, "m.occurred_at >= %(of)s::timestamptz", True),
            ("ot", occurred_to, "m.occurred_at < %(ot)s::timestamptz", True),
            ("rf", recorded_from, "m.recorded_at >= %(rf)s::timestamptz", True),
            ("rt", recorded_to, "m.recorded_at < %(rt)s::timestamptz", True),
        ):
            if value is not None:
                params[name] = value
                where.append(condition)
                meta = meta or on_meta
        if meta and topics is None and aggregate_id is None:
            # Only the meta is filtered: the page's positions come from it alone, and just
            # those events are read (a join would let the planner walk the events too).
            return self._all(
                conn,
                "SELECT e.notification_id, e.topic, e.state FROM ("
                " SELECT m.notification_id FROM {schema}.event_meta m"
                " WHERE " + " AND ".join(["m.notification_id > %(after)s", *where]) + ""
                " ORDER BY m.notification_id LIMIT %(limit)s"
                ") p JOIN {events} e ON e.notification_id = p.notification_id ORDER BY e.notification_id",
                params,
            )
        source_rows = (
            "{events} e JOIN {schema}.event_meta m ON m.notification_id = e.notification_id" if meta else "{events} e"
        )

        def page(conditions: list[str]) -> str:
            return (
                f"SELECT e.notification_id, e.topic, e.state FROM {source_rows} WHERE "
                + " AND ".join(["e.notification_id > %(after)s", *conditions])
                + " ORDER BY e.notification_id LIMIT %(limit)s"
            )

        if topics is None:
            return self._all(conn, page(where), params)
        if not topics:
            return []
        pages = []
        for i, topic in enumerate(sorted(set(topics))):
            params[f"topic{i}"] = topic
            pages.append(f"({page([f'e.topic = %(topic{i})s::text', *where])})")
        return self._all(
            conn,
            "SELECT notification_id, topic, state FROM (" + " UNION ALL ".join(pages) + ") u"
            " ORDER BY notification_id LIMIT %(limit)s",
            params,
        )
