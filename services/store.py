"""The one adapter that speaks SQL to the event store's tables.

Every query on the events (``verkosto_events``, which eventsourcing names after the
application), their hash chain (``event_chain``) and the data subjects' keys
(``subject_keys``) lives here, as a named method, or in one of its two siblings
(services/store_snapshots.py: snapshots, history checkpoints, the erasure generation;
services/store_search.py: the audit search), which share ``Tables``; the rest of the
project calls these. eventsourcing's own recorder (services/eventstore.py, its inserts
services/recorder_inserts.py) is the one other writer.

Methods take the connection to run on, so callers keep their transactions (the chain is
extended inside the events' own transaction, a rebuild's catch-up under its lock). Each
opens its cursor with ``dict_row``: rows come back as dicts whatever the connection's
own row factory, and no caller has to guess which it got.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.rows import dict_row

EVENTS = "verkosto_events"  # eventsourcing's table for the application named "Verkosto"
CHAIN = "event_chain"
KEYS = "subject_keys"

Row = dict[str, Any]


class Tables:
    """The event store's tables in one schema (a name, or an already quoted
    identifier), and the helpers every statement on them runs through."""

    def __init__(self, schema: str | sql.Identifier) -> None:
        self.schema = schema if isinstance(schema, sql.Identifier) else sql.Identifier(schema)

    def _sql(self, query: str) -> sql.Composed:
        return sql.SQL(query).format(
            events=sql.SQL("{}.{}").format(self.schema, sql.Identifier(EVENTS)),
            chain=sql.SQL("{}.{}").format(self.schema, sql.Identifier(CHAIN)),
            keys=sql.SQL("{}.{}").format(self.schema, sql.Identifier(KEYS)),
            schema=self.schema,
        )

    def _all(self, conn: Any, query: str, params: Any = None) -> list[Row]:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(self._sql(query), params).fetchall()  # type: ignore[no-any-return]

    def _one(self, conn: Any, query: str, params: Any = None) -> Row | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(self._sql(query), params).fetchone()  # type: ignore[no-any-return]


class EventStore(Tables):
    """The SQL on the events, their hash chain and the subjects' keys. The snapshots,
    history checkpoints and the erasure generation are services/store_snapshots.py's;
    the audit search is services/store_search.py's."""

    # Events ------------------------------------------------------------------------------

    def events_of(self, conn: Any, aggregate_ids: Iterable[UUID]) -> list[Row]:
        """originator_id, originator_version, topic, state, notification_id of every
        event of these aggregates, by aggregate and version."""
        return self._all(
            conn,
            "SELECT originator_id, originator_version, topic, state, notification_id "
            "FROM {events} WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version",
            (list(aggregate_ids),),
        )

    def first_events(self, conn: Any, aggregate_id: UUID | str) -> list[Row]:
        """topic, state of the aggregate's first event (none if it does not exist)."""
        return self._all(
            conn,
            "SELECT topic, state FROM {events} WHERE originator_id = %s AND originator_version = 1",
            (aggregate_id,),
        )

    def event_at(self, conn: Any, position: int) -> Row | None:
        """originator_id, originator_version of the event at a global position."""
        return self._one(
            conn, "SELECT originator_id, originator_version FROM {events} WHERE notification_id = %s", (position,)
        )

    def events_after(self, conn: Any, after: int, limit: int, until: int | None = None) -> list[Row]:
        """notification_id, topic, state of the next ``limit`` events after a position
        (up to ``until`` if given), in global order."""
        return self._all(
            conn,
            "SELECT notification_id, topic, state FROM {events} "
            "WHERE notification_id > %s AND (%s::bigint IS NULL OR notification_id <= %s) "
            "ORDER BY notification_id LIMIT %s",
            (after, until, until, limit),
        )

    def state_after(self, conn: Any, after: int) -> bytes | None:
        """The stored state of the first event after a position, if any."""
        row = self._one(
            conn, "SELECT state FROM {events} WHERE notification_id > %s ORDER BY notification_id LIMIT 1", (after,)
        )
        return bytes(row["state"]) if row else None

    def last_position(self, conn: Any) -> int:
        row = self._one(conn, "SELECT coalesce(max(notification_id), 0) AS last FROM {events}")
        return int(row["last"]) if row else 0

    def count(self, conn: Any) -> int:
        row = self._one(conn, "SELECT count(*) AS n FROM {events}")
        return int(row["n"]) if row else 0

    def commands(self, conn: Any, command_ids: Sequence[str]) -> list[Row]:
        """command_id, aggregate_id, version and notification_id of recorded commands."""
        return self._all(
            conn,
            "SELECT c.command_id, c.aggregate_id, c.version, e.notification_id "
            "FROM {schema}.command_log c JOIN {events} e "
            "ON e.originator_id = c.aggregate_id AND e.originator_version = c.version "
            "WHERE c.command_id = ANY(%s)",
            (list(command_ids),),
        )

    def events_since(self, conn: Any, marks: dict[UUID, int]) -> list[Row]:
        """Like ``events_of``, but only each aggregate's events after the version given
        for it (a cached or snapshotted state): one primary-key range scan apiece."""
        return self._all(
            conn,
            "SELECT e.originator_id, e.originator_version, e.topic, e.state, e.notification_id "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS m(id, version) JOIN {events} e "
            "ON e.originator_id = m.id AND e.originator_version > m.version "
            "ORDER BY e.originator_id, e.originator_version",
            (list(marks), list(marks.values())),
        )

    def first_topic(self, conn: Any, aggregate_id: UUID) -> str | None:
        """The topic of the aggregate's first event: whether, and as what, it exists."""
        row = self._one(
            conn, "SELECT topic FROM {events} WHERE originator_id = %s AND originator_version = 1", (aggregate_id,)
        )
        return str(row["topic"]) if row else None

    def history_page(
        self,
        conn: Any,
        aggregate_id: UUID,
        *,
        after: int,
        limit: int,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
    ) -> list[Row]:
        """originator_id, originator_version, topic, state, notification_id of the
        aggregate's next ``limit`` events after position ``after`` whose occurred_at is
        in [from, to), in recorded order: a keyset page on the (originator_id,
        notification_id) index, whatever the aggregate's length."""
        return self._all(
            conn,
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {events} "
            "WHERE originator_id = %(id)s AND notification_id > %(after)s"
            " AND (%(of)s::timestamptz IS NULL"
            "  OR ({schema}.stored_meta(state) ->> 'occurred_at')::timestamptz >= %(of)s::timestamptz)"
            " AND (%(ot)s::timestamptz IS NULL"
            "  OR ({schema}.stored_meta(state) ->> 'occurred_at')::timestamptz < %(ot)s::timestamptz)"
            " ORDER BY notification_id LIMIT %(limit)s",
            {"id": aggregate_id, "after": after, "of": occurred_from, "ot": occurred_to, "limit": limit},
        )

    # The hash chain ----------------------------------------------------------------------

    def chain_head(self, conn: Any) -> tuple[int, bytes] | None:
        """(position, hash) of the last link, or None for an empty chain."""
        row = self._one(conn, "SELECT position, hash FROM {chain} ORDER BY position DESC LIMIT 1")
        return (row["position"], bytes(row["hash"])) if row else None

    def append_links(self, conn: Any, links: Sequence[tuple[int, int, bytes]]) -> None:
        """Inserts (position, previous, hash) links. One statement with plain arrays:
        executemany would pipeline, and a pipelined batch can deadlock over the embedded
        PostgreSQL's Unix socket."""
        if not links:
            return
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {chain} (position, previous, hash) "
                    "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[])"
                ),
                # Sent in binary: psycopg's text dump of arrays escapes each element in Python.
                ([r[0] for r in links], [r[1] for r in links], [r[2] for r in links]),
            )

    def lock_unchained(self, conn: Any) -> list[Row]:
        """Locks the events table (EXCLUSIVE, until the caller's transaction ends) and
        returns notification_id, originator_id, originator_version, topic, state of the
        events after the chain's last link, in global order."""
        with conn.cursor() as cur:
            cur.execute(self._sql("LOCK TABLE {events} IN EXCLUSIVE MODE"))
        return self._all(
            conn,
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {events} WHERE notification_id > (SELECT coalesce(max(position), 0) FROM {chain}) "
            "ORDER BY notification_id",
        )

    def chain_walk(
        self, conn: Any, upto: int | None = None, cursor_name: str = "verkosto_audit_verify"
    ) -> Generator[Row, None, None]:
        """Every event beside its link, by position (a full join: an event without a link
        or a link without an event shows too): position, has_event, has_link,
        originator_id, originator_version, topic, state, previous, hash. Streams through a
        server-side cursor, so it must run inside a transaction."""
        with conn.cursor(name=cursor_name, row_factory=dict_row) as cur:
            cur.execute(
                self._sql(
                    "SELECT coalesce(e.notification_id, c.position) AS position, "
                    "e.notification_id IS NOT NULL AS has_event, c.position IS NOT NULL AS has_link, "
                    "e.originator_id, e.originator_version, e.topic, e.state, c.previous, c.hash "
                    "FROM {events} e FULL JOIN {chain} c ON c.position = e.notification_id "
                    "WHERE (%s::bigint IS NULL OR coalesce(e.notification_id, c.position) <= %s) ORDER BY 1"
                ),
                (upto, upto),
            )
            yield from cur

    # Data subjects' keys -----------------------------------------------------------------

    def create_key(self, conn: Any, digest: str, key: bytes) -> None:
        """Stores a subject's key unless the subject has one (or was erased)."""
        with conn.cursor() as cur:
            cur.execute(
                self._sql("INSERT INTO {keys} (subject_hash, key) VALUES (%s, %s) ON CONFLICT DO NOTHING"),
                (digest, key),
            )

    def key(self, conn: Any, digest: str) -> bytes | None:
        """The subject's key; None if there is none or it was erased."""
        return self.keys(conn, [digest]).get(digest)

    def keys(self, conn: Any, digests: list[str]) -> dict[str, bytes | None]:
        """Each subject's key (None if erased), for those of ``digests`` that have a row."""
        rows = self._all(conn, "SELECT subject_hash, key FROM {keys} WHERE subject_hash = ANY(%s)", (digests,))
        return {r["subject_hash"]: bytes(r["key"]) if r["key"] is not None else None for r in rows}

    def erase_key(self, conn: Any, digest: str) -> None:
        """Destroys the subject's key for good (and remembers when)."""
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {keys} (subject_hash, key, erased_at) VALUES (%s, NULL, now()) "
                    "ON CONFLICT (subject_hash) DO UPDATE SET key = NULL, erased_at = now()"
                ),
                (digest,),
            )
