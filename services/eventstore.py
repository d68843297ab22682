"""The event store: eventsourcing on PostgreSQL, with pydantic events stored as JSON.

``VerkostoRecorder`` writes the command log and consumer positions inside the same
transaction as the events, which is what makes duplicate commands and redelivered Kafka
messages record exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.conninfo import conninfo_to_dict

from domain.base import DomainEvent
from services.privacy import KeyStore, seal_event, unseal_event, unseal_kept
from services.recorder_inserts import CommandRecord as CommandRecord
from services.recorder_inserts import ConsumerPosition as ConsumerPosition
from services.recorder_inserts import InsertingRecorder, retry_briefly
from services.recorder_inserts import StalePosition as StalePosition
from services.store import EventStore
from services.store_snapshots import SnapshotStore


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

    def to_folded_event(self, stored_event: StoredEvent) -> Any:
        """The event as its aggregate's fold needs it: the personal fields ``apply`` does
        not keep read as ERASED, never unsealed (privacy.unseal_kept). Never shown to anyone."""
        state = json.loads(stored_event.state)
        if self.keys is not None:
            state = unseal_kept(stored_event.topic, state, self.keys)
        return resolve_topic(stored_event.topic).model_validate(state)


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


class VerkostoRecorder(InsertingRecorder):
    """Adds the command log and consumer positions to the events' transaction (the
    insert path: services/recorder_inserts.py) and the application's reads."""

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
            return SnapshotStore(self.datastore.schema).load_rows(conn, marks)

    def save_snapshots(self, snapshots: Sequence[tuple[UUID, int, str, bytes]]) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            SnapshotStore(self.datastore.schema).save_snapshots(conn, snapshots)

    def checkpoint_for(self, aggregate_id: UUID, as_of: datetime, known_at: datetime) -> dict[str, Any] | None:
        with self.datastore.get_connection() as conn:
            return SnapshotStore(self.datastore.schema).checkpoint_for(conn, aggregate_id, as_of, known_at)

    def events_known(self, aggregate_id: UUID, after: int, as_of: datetime, known_at: datetime) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return SnapshotStore(self.datastore.schema).events_known(conn, aggregate_id, after, as_of, known_at)

    def save_checkpoints(self, checkpoints: Sequence[tuple[UUID, int, datetime, datetime, bytes]]) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            SnapshotStore(self.datastore.schema).save_checkpoints(conn, checkpoints)

    def first_topic(self, aggregate_id: UUID) -> str | None:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).first_topic(conn, aggregate_id)

    def history_page(self, aggregate_id: UUID, **page: Any) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn:
            return EventStore(self.datastore.schema).history_page(conn, aggregate_id, **page)

    select_events = retry_briefly(PostgresApplicationRecorder.select_events.__wrapped__)  # type: ignore[attr-defined]
    select_notifications = retry_briefly(PostgresApplicationRecorder.select_notifications.__wrapped__)  # type: ignore[attr-defined]
    max_notification_id = retry_briefly(PostgresApplicationRecorder.max_notification_id.__wrapped__)  # type: ignore[attr-defined]


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
