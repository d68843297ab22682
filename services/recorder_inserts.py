"""The recorder's insert path: the events, their meta and hash chain links, and in the
same transaction the command log, the outcome tallies and the consumer positions, which
is what makes duplicate commands and redelivered Kafka messages record exactly once.
services/eventstore.py's VerkostoRecorder adds the reads to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from services.audit.chain import Stored, extend
from services.event_meta import claim as claim_meta
from services.event_meta import insert_meta, meta_row, row_from

RETRY_BUDGET_S = 0.5  # retry_briefly's; the pool's own waits are services/eventstore.py's


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


def retry_briefly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Retries a quick failure (a connection that died in the pool) for up to half a
    second; a database that is gone fails the first attempt, so callers hear about it
    within EVENT_STORE_POOL_WAIT_S (services/eventstore.py) rather than after
    eventsourcing's ten attempts."""

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


class InsertingRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, inserting the events with the rows that must commit with
    them (keyword arguments commands, tallies, positions, event_meta)."""

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
