"""The one adapter that speaks SQL to the event store's tables.

Every query on the events (``verkosto_events``, which eventsourcing names after the
application), their hash chain (``event_chain``) and the data subjects' keys
(``subject_keys``) lives here, as a named method; the rest of the project calls these.
eventsourcing's own recorder (services/eventstore.py) is the one other writer.

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


class EventStore:
    """The event store's SQL for one schema (a name, or an already quoted identifier)."""

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

    def load_rows(self, conn: Any, marks: dict[UUID, int | None]) -> list[Row]:
        """Everything loading these aggregates needs, in one round trip: rows of
        ``part`` 0 (one: the erasure generation, as originator_version), 1 (the snapshot
        of each aggregate whose mark is None) and 2 (each aggregate's events after its
        mark, or after its snapshot, or all), with originator_id, originator_version,
        topic, state, notification_id, by part, aggregate and version."""
        return self._all(
            conn,
            "WITH m AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[]) AS m(id, version)), "
            "s AS (SELECT s.originator_id, s.originator_version, s.topic, s.state "
            " FROM {schema}.aggregate_snapshots s JOIN m ON s.originator_id = m.id WHERE m.version IS NULL), "
            "b AS (SELECT m.id, coalesce(m.version, s.originator_version, 0) AS version "
            " FROM m LEFT JOIN s ON s.originator_id = m.id) "
            "SELECT 0 AS part, NULL::uuid AS originator_id, "
            " (SELECT coalesce(max(generation), 0) FROM {schema}.erasure_generation) AS originator_version, "
            " NULL::text AS topic, NULL::bytea AS state, NULL::bigint AS notification_id "
            "UNION ALL SELECT 1, originator_id, originator_version, topic, state, NULL FROM s "
            "UNION ALL SELECT 2, e.originator_id, e.originator_version, e.topic, e.state, e.notification_id "
            " FROM b JOIN {events} e ON e.originator_id = b.id AND e.originator_version > b.version "
            "ORDER BY part, originator_id, originator_version",
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

    # Snapshots and the erasure generation (services/snapshots.py) ---------------------

    def save_snapshots(self, conn: Any, snapshots: Sequence[tuple[UUID, int, str, bytes]]) -> None:
        """Stores (originator_id, originator_version, topic, state) snapshots, each
        replacing an older one of its aggregate (never a newer one another writer left)."""
        if not snapshots:
            return
        ordered = sorted(snapshots, key=lambda s: str(s[0]))  # one lock order for every writer
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.aggregate_snapshots AS s (originator_id, originator_version, topic, state) "
                    "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) "
                    "ON CONFLICT (originator_id) DO UPDATE SET originator_version = EXCLUDED.originator_version, "
                    "topic = EXCLUDED.topic, state = EXCLUDED.state, created_at = now() "
                    "WHERE s.originator_version < EXCLUDED.originator_version"
                ),
                tuple(list(column) for column in zip(*ordered, strict=True)),
            )

    def checkpoint_for(self, conn: Any, aggregate_id: UUID, as_of: datetime, known_at: datetime) -> Row | None:
        """The latest history checkpoint whose events all occurred by ``as_of`` and were
        recorded by ``known_at`` (originator_version, max_occurred_at, max_recorded_at,
        view), with ``latest``, the version of the aggregate's latest checkpoint of all;
        None if the aggregate has none."""
        return self._one(
            conn,
            "SELECT c.originator_version, c.max_occurred_at, c.max_recorded_at, c.view, l.latest "
            "FROM (SELECT max(originator_version) AS latest FROM {schema}.history_checkpoints "
            "      WHERE originator_id = %(id)s) l "
            "LEFT JOIN LATERAL (SELECT * FROM {schema}.history_checkpoints WHERE originator_id = %(id)s "
            "      AND max_occurred_at <= %(as_of)s AND max_recorded_at <= %(known_at)s "
            "      ORDER BY originator_version DESC LIMIT 1) c ON true "
            "WHERE l.latest IS NOT NULL",
            {"id": aggregate_id, "as_of": as_of, "known_at": known_at},
        )

    def events_known(self, conn: Any, aggregate_id: UUID, after: int, as_of: datetime, known_at: datetime) -> list[Row]:
        """Like ``events_since`` for one aggregate, but only the events that occurred by
        ``as_of`` and were recorded by ``known_at``: filtered here, so the events after a
        past moment are never sent, parsed or unsealed."""
        return self._all(
            conn,
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {events} "
            "WHERE originator_id = %s AND originator_version > %s "
            "AND ({schema}.stored_meta(state) ->> 'occurred_at')::timestamptz <= %s "
            "AND ({schema}.stored_meta(state) ->> 'recorded_at')::timestamptz <= %s "
            "ORDER BY originator_version",
            (aggregate_id, after, as_of, known_at),
        )

    def save_checkpoints(self, conn: Any, checkpoints: Sequence[tuple[UUID, int, datetime, datetime, bytes]]) -> None:
        """Stores (originator_id, originator_version, max_occurred_at, max_recorded_at,
        view) checkpoints; one already there (another reader's, equal) stays."""
        if not checkpoints:
            return
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.history_checkpoints "
                    "(originator_id, originator_version, max_occurred_at, max_recorded_at, view) "
                    "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::bytea[]) "
                    "ON CONFLICT DO NOTHING"
                ),
                tuple(list(column) for column in zip(*checkpoints, strict=True)),
            )

    def bump_erasure_generation(self, conn: Any) -> None:
        """Counts an erasure (call it in the transaction that destroys the key)."""
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.erasure_generation AS g (generation) VALUES (1) "
                    "ON CONFLICT (one) DO UPDATE SET generation = g.generation + 1"
                )
            )

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
                    "SELECT p, q, decode(h, 'hex') FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS r(p, q, h)"
                ),
                ([r[0] for r in links], [r[1] for r in links], [r[2].hex() for r in links]),
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
        row = self._one(conn, "SELECT key FROM {keys} WHERE subject_hash = %s", (digest,))
        return bytes(row["key"]) if row and row["key"] is not None else None

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
