"""The event store: eventsourcing on PostgreSQL, with pydantic events stored as JSON.

``VerkostoRecorder`` writes the command log and consumer positions inside the same
transaction as the events, which is what makes duplicate commands and redelivered Kafka
messages record exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InterfaceError, Mapper, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from domain.base import DomainEvent
from services.audit.chain import Stored, extend
from services.event_meta import claim as claim_meta
from services.event_meta import insert_meta, meta_row, row_from
from services.privacy import KeyStore, seal_event, unseal_event
from services.store import EventStore


class PydanticMapper(Mapper[UUID]):
    """Maps frozen pydantic events to stored JSON and back (validated on load), sealing
    personal fields with their subjects' keys on the way in."""

    keys: KeyStore | None = None
    # Per thread, while a caller watches (see watch_erased): the aggregates with an event
    # stored with less than it said, a subject's plaintext sealed as ERASED.
    _watch = threading.local()

    @contextmanager
    def watch_erased(self) -> Iterator[set[UUID]]:
        """Collects, for the events mapped in this thread meanwhile, the ids of aggregates
        whose stored event holds ERASED where the domain event held plaintext."""
        found: set[UUID] = set()
        self._watch.found = found
        try:
            yield found
        finally:
            self._watch.found = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        assert isinstance(domain_event, DomainEvent)
        topic = get_topic(type(domain_event))
        state = domain_event.model_dump(mode="json")
        if self.keys is not None:
            watched: set[UUID] | None = getattr(self._watch, "found", None)
            erased: list[str] | None = [] if watched is not None else None
            state = seal_event(topic, state, self.keys, erased)
            if erased and watched is not None:
                watched.add(domain_event.originator_id)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=json.dumps(state, separators=(",", ":")).encode(),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        state = json.loads(stored_event.state)
        if self.keys is not None:
            state = unseal_event(stored_event.topic, state, self.keys)
        return resolve_topic(stored_event.topic).model_validate(state)


class CommandRecord(NamedTuple):
    command_id: str
    aggregate_id: UUID
    version: int


class ConsumerPosition(NamedTuple):
    consumer: str
    topic: str
    partition: int
    first_offset: int  # the batch's first offset on this partition
    next_offset: int
    topic_id: str | None


class StalePosition(Exception):
    """The stored position is already past this batch: another consumer recorded it."""


# How long a caller waits for a pooled connection before the database counts as
# unavailable, and how long a failed connection attempt may take (libpq's
# connect_timeout). The API's own pool (tokens, read models), which every request meets
# first, waits a second: a lost database is a quick 503. The event store's pool
# (eventsourcing's POSTGRES_CONNECT_TIMEOUT, whole seconds) waits a little longer, so a
# burst of writers sharing its few connections queues rather than fails.
POOL_WAIT_S = 1
EVENT_STORE_POOL_WAIT_S = 5
CONNECT_TIMEOUT_S = 2
# The pool tries to reconnect with exponential backoff and gives up after this; the next
# caller then starts a fresh attempt at once. Short, so a database that comes back is
# used again within about a second, not after a backoff that grew during the outage.
RECONNECT_TIMEOUT_S = 2.0
RETRY_BUDGET_S = 0.5


def retry_briefly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Retries a quick failure (a connection that died in the pool) for up to half a
    second; a database that is gone fails the first attempt, so callers hear about it
    within EVENT_STORE_POOL_WAIT_S rather than after eventsourcing's ten attempts."""

    @wraps(func)
    def retrying(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        while True:
            try:
                return func(*args, **kwargs)
            except (InterfaceError, OperationalError):
                if time.monotonic() - started >= RETRY_BUDGET_S:
                    raise
                time.sleep(0.05)

    return retrying


class VerkostoRecorder(PostgresApplicationRecorder):
    """Adds the command log and consumer positions to the events' transaction."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        pool = datastore.pool  # not opened yet: the first query opens it
        pool.reconnect_timeout = RECONNECT_TIMEOUT_S
        if isinstance(pool.kwargs, dict):
            pool.kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        try:
            super().__init__(datastore, **kwargs)  # queries the database (type adapters)
        except BaseException:
            datastore.close()  # an application that could not be built leaves no pool behind
            raise

    # The application's reads beyond eventsourcing's own (the port the in-memory fake of
    # the unit tests implements too): command ids seen, aggregates' events, a position.

    def commands(self, command_ids: list[str]) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).commands(conn, command_ids)

    def events_of(self, aggregate_ids: Iterable[UUID]) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).events_of(conn, aggregate_ids)

    def event_at(self, position: int) -> dict[str, Any] | None:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).event_at(conn, position)

    # Loading from snapshots and caches (services/snapshots.py, services/aggregate_cache.py)
    # and paging history: the port the application's fast paths need (SnapshotPort).

    def events_since(self, marks: dict[UUID, int]) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).events_since(conn, marks)

    def load_rows(self, marks: dict[UUID, int | None]) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).load_rows(conn, marks)

    def save_snapshots(self, snapshots: Sequence[tuple[UUID, int, str, bytes]]) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            EventStore(self.datastore.schema).save_snapshots(conn, snapshots)

    def checkpoint_for(self, aggregate_id: UUID, as_of: datetime, known_at: datetime) -> dict[str, Any] | None:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).checkpoint_for(conn, aggregate_id, as_of, known_at)

    def events_known(self, aggregate_id: UUID, after: int, as_of: datetime, known_at: datetime) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).events_known(conn, aggregate_id, after, as_of, known_at)

    def save_checkpoints(self, checkpoints: Sequence[tuple[UUID, int, datetime, datetime, bytes]]) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            EventStore(self.datastore.schema).save_checkpoints(conn, checkpoints)

    def first_topic(self, aggregate_id: UUID) -> str | None:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).first_topic(conn, aggregate_id)

    def history_page(self, aggregate_id: UUID, **page: Any) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).history_page(conn, aggregate_id, **page)

    select_events = retry_briefly(PostgresApplicationRecorder.select_events.__wrapped__)  # type: ignore[attr-defined]
    select_notifications = retry_briefly(PostgresApplicationRecorder.select_notifications.__wrapped__)  # type: ignore[attr-defined]
    max_notification_id = retry_briefly(PostgresApplicationRecorder.max_notification_id.__wrapped__)  # type: ignore[attr-defined]

    @retry_briefly
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # The same steps as eventsourcing's, without psycopg's pipeline mode: over a Unix
        # socket (the embedded PostgreSQL) a pipelined insert of ~1,000+ events deadlocks,
        # client and server each waiting for the other. Batching makes the saved round
        # trips negligible anyway.
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            claim_meta(curs)
            self._insert_stored_events(curs, stored_events, **kwargs)
            ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            # The committing application passes its events' meta; anything else is parsed.
            known: dict[tuple[Any, int], Any] = kwargs.get("event_meta", {})
            insert_meta(
                curs,
                self.datastore.schema,
                [
                    row_from(n, meta)
                    if (meta := known.get((e.originator_id, e.originator_version))) is not None
                    else meta_row(n, e.state)
                    for n, e in zip(ids or [], stored_events, strict=True)
                ],
            )
            # Still inside the transaction and under the table's exclusive lock.
            extend(
                conn,
                self.datastore.schema,
                sorted(
                    (
                        Stored(n, e.originator_id, e.originator_version, e.topic, e.state)  # type: ignore[arg-type]
                        for n, e in zip(ids or [], stored_events, strict=True)
                    ),
                    key=lambda s: s.position,
                ),
            )
            return ids

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # The library's steps (lock, notify, one INSERT ... unnest ... RETURNING), but with
        # one array per column sent in binary: its array of composite values is dumped as
        # escaped text in Python, which cost more than anything else the client does.
        self._lock_table(curs)
        self._notify_channel(curs)
        if self._insert_columns is None:
            self._insert_columns = sql.SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
                "RETURNING notification_id"
            ).format(
                schema=sql.Identifier(self.datastore.schema),
                table=sql.Identifier(self.events_table_name),
                id_type=sql.Identifier(self.datastore.originator_id_type),
            )
        curs.execute(
            self._insert_columns,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )

    _insert_columns: sql.Composed | None = None

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        schema = sql.Identifier(self.datastore.schema)
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        if commands:
            # A command id seen before violates the primary key and aborts the whole
            # transaction, events included: the caller then answers with the first result.
            curs.execute(
                sql.SQL(
                    "INSERT INTO {}.command_log (command_id, aggregate_id, version) "
                    "SELECT * FROM unnest(%s::text[], %s::uuid[], %s::bigint[])"
                ).format(schema),
                (
                    [c.command_id for c in commands],
                    [c.aggregate_id for c in commands],
                    [c.version for c in commands],
                ),
            )
        tallies: dict[tuple[str, str, str], int] = kwargs.get("tallies", {})
        if tallies:
            keys = sorted(tallies)  # one lock order for every writer: no deadlocks
            curs.execute(
                sql.SQL(
                    "INSERT INTO {}.command_outcomes AS o (source, outcome, reason, count) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) "
                    "ON CONFLICT (source, outcome, reason) DO UPDATE SET count = o.count + EXCLUDED.count"
                ).format(schema),
                ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [tallies[k] for k in keys]),
            )
        positions: Sequence[ConsumerPosition] = kwargs.get("positions", ())
        if positions:
            # Compare-and-set: a batch moves a position only from at or before its first
            # offset. A zombie consumer or a redelivered batch finds it moved on, and the
            # whole transaction rolls back instead of recording the commands twice.
            curs.execute(
                sql.SQL(
                    "WITH batch AS (SELECT * FROM unnest("
                    "%s::text[], %s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::text[]"
                    ") AS b(consumer, topic, partition, first_offset, next_offset, topic_id)) "
                    "INSERT INTO {schema}.consumer_positions AS p "
                    "(consumer, topic, partition, next_offset, topic_id) "
                    "SELECT consumer, topic, partition, next_offset, topic_id FROM batch "
                    "ON CONFLICT (consumer, topic, partition) DO UPDATE SET "
                    "next_offset = EXCLUDED.next_offset, topic_id = EXCLUDED.topic_id, "
                    "updated_at = now() "
                    "WHERE p.topic_id IS DISTINCT FROM EXCLUDED.topic_id OR p.next_offset <= ("
                    "SELECT b.first_offset FROM batch b WHERE b.consumer = EXCLUDED.consumer "
                    "AND b.topic = EXCLUDED.topic AND b.partition = EXCLUDED.partition) "
                    "RETURNING p.partition"
                ).format(schema=schema),
                tuple(list(column) for column in zip(*positions, strict=True)),
            )
            moved = curs.fetchall()
            if len(moved) != len(positions):
                raise StalePosition(f"{len(positions) - len(moved)} partition(s) already moved past this batch")


def eventsourcing_env(database_url: str, schema: str, *, create_table: bool) -> dict[str, str]:
    """Translates a PostgreSQL URL into the environment eventsourcing reads."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_CONNECT_TIMEOUT": str(EVENT_STORE_POOL_WAIT_S),
        "POSTGRES_PRE_PING": "y",  # a connection that died with the server is not handed out
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y" if create_table else "n",
    }


class EventStoreApplication(Application[UUID]):
    """Base for Verkosto's application: its name makes the table ``verkosto_events``."""

    name = "Verkosto"
    env: ClassVar[dict[str, str]] = {
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "APPLICATION_RECORDER_TOPIC": get_topic(VerkostoRecorder),
    }
