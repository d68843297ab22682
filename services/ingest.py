"""The command ingest: a kafka-python consumer group on ``verkosto.commands.v1``.

A poll's worth of commands is decided together and committed in one event-store
transaction along with the consumer's next offsets, so a redelivered message is never
recorded twice. Anything malformed or refused goes to the dead-letter topic with its
reason before the offsets move past it: nothing is lost and no partition blocks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import eventsourcing.persistence as es
import psycopg
from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from psycopg import sql
from psycopg_pool import PoolTimeout
from pydantic import TypeAdapter, ValidationError

from contract.commands import any_command
from domain.values import Name, check_storable, printable
from services.application import ConcurrentWrite, Rejected, Request, Verkosto
from services.bus import consumer as make_consumer
from services.bus import producer as make_producer
from services.bus import topic_id as lookup_topic_id
from services.db import connect
from services.eventstore import ConsumerPosition, StalePosition
from services.settings import Settings

log = logging.getLogger(__name__)
CONSUMER = "ingest"
_actor: TypeAdapter[str] = TypeAdapter(Name)
# How often one batch may meet a "concurrent write" before it is suspected of carrying a
# command the database refuses for itself (a constraint that is not a concurrency one).
MAX_CONFLICTS = 5


def tied_to_a_message(error: BaseException) -> bool:
    """Whether a failed commit could be the fault of a message in the batch: PostgreSQL
    refusing a value (class 22 data exceptions) or a constraint (class 23), psycopg
    refusing to send a value, or Python refusing to encode one. Anything else (a lost
    connection, a read-only or failed-over server, a missing table or privilege, a full
    disk) is the infrastructure's: retried, never dead-lettered, since every message
    would fail alike. The same allow-list as the projector's (projections/parking.py)."""
    cause = error.__cause__ if isinstance(error, es.PersistenceError) and error.__cause__ else error
    if isinstance(cause, psycopg.DataError | psycopg.IntegrityError):
        return True
    if isinstance(cause, psycopg.ProgrammingError):
        return cause.sqlstate is None  # raised by psycopg itself: a value it cannot adapt
    if isinstance(cause, psycopg.Error | es.PersistenceError | PoolTimeout | KafkaError | OSError):
        return isinstance(cause, es.DataError | es.IntegrityError)
    return isinstance(cause, ValueError | TypeError | UnicodeError)


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    reason: str
    detail: str


class Malformed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse(record: ConsumerRecord) -> Request:
    """Turns one Kafka record into a request, or says exactly why it cannot."""
    try:
        body = json.loads(record.value)
    except (TypeError, ValueError, RecursionError) as error:  # also huge ints, deep nesting
        raise Malformed("malformed_json", f"the message is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise Malformed("malformed_json", "the message must be a JSON object")
    actor = body.pop("actor", None)
    if not isinstance(actor, str) or not actor.strip():
        raise Malformed("missing_actor", "a Kafka command must name its sender in 'actor'")
    try:
        actor = check_storable(_actor.validate_python(actor.strip()))
    except ValidationError as error:
        raise Malformed("invalid_command", f"actor: {error.errors()[0]['msg']}") from error
    except ValueError as error:
        raise Malformed("invalid_command", f"actor: {error}") from error
    try:
        command = any_command.validate_python(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'type'}: {e['msg']}" for e in error.errors())
        raise Malformed("invalid_command", problems) from error
    return Request(command, actor=actor, source="kafka")


class CommandIngest:
    def __init__(self, app: Verkosto, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.topic = settings.commands_topic
        self.dlq = make_producer(settings)
        self.consumer = make_consumer(settings, settings.ingest_group)
        self.topic_id: str | None = None
        # Partitions assigned since the last poll, waiting for their seek (see _SeekToStored).
        self.assigned: list[TopicPartition] = []
        self.assigned_lock = threading.Lock()
        self.recorded = 0
        self.dead_lettered = 0

    # Positions -------------------------------------------------------------------------

    def stored_positions(self) -> dict[int, tuple[int, str | None]]:
        with connect(self.settings.require_database_url()) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT partition, next_offset, topic_id FROM {}.consumer_positions "
                    "WHERE consumer = %s AND topic = %s"
                ).format(sql.Identifier(self.settings.db_schema)),
                (CONSUMER, self.topic),
            ).fetchall()
        return {r["partition"]: (r["next_offset"], r["topic_id"]) for r in rows}

    def seek_to_stored(self, assigned: Sequence[TopicPartition]) -> None:
        stored = self.stored_positions()
        held = self.consumer.assignment()
        seeked: dict[TopicPartition, int] = {}
        for tp in assigned:
            if tp not in held:
                continue  # revoked again meanwhile: its next owner seeks it

            offset, topic_id = stored.get(tp.partition, (None, None))
            if offset is None or (topic_id and self.topic_id and topic_id != self.topic_id):
                # Never consumed, or the topic was recreated: its offsets mean nothing now.
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
                seeked[tp] = offset
        # A crash between PostgreSQL's commit and Kafka's left the broker's copy behind;
        # with nothing new to consume it would stay behind, so it is brought up to date now.
        self.commit_offsets(seeked)

    # Processing ------------------------------------------------------------------------

    def handle(self, records: Sequence[ConsumerRecord], sent: dict[tuple[int, int], str] | None = None) -> None:
        """Records a poll's worth of commands. ``sent`` holds the (partition, offset) and
        reason of records already dead-lettered while isolating a poison message: they
        stay refused (never also recorded) and are not sent to the dead-letter topic twice."""
        sent = {} if sent is None else sent
        dead: list[DeadLetter] = []
        parsed: list[tuple[ConsumerRecord, Request]] = []
        refused_before: list[tuple[str, str]] = []
        for record in records:
            if (record.partition, record.offset) in sent:
                refused_before.append(("kafka", sent[(record.partition, record.offset)]))
                continue
            try:
                parsed.append((record, parse(record)))
            except Malformed as error:
                dead.append(DeadLetter(record, error.reason, error.detail))
        positions = self.next_positions(records)
        # Refusals counted in the metrics: malformed ones now, refused ones as they come.
        refusals = [("kafka", letter.reason) for letter in dead] + refused_before
        conflicts = 0
        while True:
            decision = self.app.decide([request for _, request in parsed])
            refused = {index for index, _ in decision.rejected}
            dead += [
                DeadLetter(parsed[index][0], rejected.code, rejected.message) for index, rejected in decision.rejected
            ]
            # Dead letters are on the bus before the offsets move past them.
            self.send_dead_letters([d for d in dead if (d.record.partition, d.record.offset) not in sent])
            sent.update({(d.record.partition, d.record.offset): d.reason for d in dead})
            dead = []
            try:
                outcomes = self.app.commit(decision, positions, refusals)
            except StalePosition as error:
                # Someone recorded this batch already (we were a zombie, or it came back).
                log.warning("skipping a batch already recorded: %s", error)
                self.seek_to_stored(sorted({TopicPartition(r.topic, r.partition) for r in records}))
                return
            except ConcurrentWrite as error:
                # A concurrent writer touched one of these aggregates. Decide again, but a
                # command already dead-lettered stays refused, so it is never also recorded.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    self.isolate(records, error, sent)
                    return
                refusals += [("kafka", rejected.code) for _, rejected in decision.rejected]
                parsed = [p for i, p in enumerate(parsed) if i not in refused]
                continue
            except Exception as error:
                if not tied_to_a_message(error):
                    raise
                self.isolate(records, error, sent)
                return
            self.recorded += sum(1 for o in outcomes if not isinstance(o, Rejected))
            self.commit_to_kafka(positions)
            return

    def commit_to_kafka(self, positions: Sequence[ConsumerPosition]) -> None:
        """The positions just committed to PostgreSQL (the source of truth), also committed
        to the group on the broker, so Kafka's own tools see the ingest's progress. A failure
        here is logged, never fatal: on assignment we seek to what PostgreSQL holds."""
        self.commit_offsets({TopicPartition(p.topic, p.partition): p.next_offset for p in positions})

    def commit_offsets(self, next_offsets: dict[TopicPartition, int]) -> None:
        if not next_offsets:
            return
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in next_offsets.items()}
        try:
            self.consumer.commit(offsets, timeout_ms=5000)
        except Exception as error:  # noqa: BLE001 - PostgreSQL has them; Kafka's copy is a courtesy
            log.warning("committing offsets to Kafka failed (PostgreSQL has them): %s: %s", type(error).__name__, error)

    def isolate(self, records: Sequence[ConsumerRecord], error: Exception, sent: dict[tuple[int, int], str]) -> None:
        """The database refused a batch for a reason tied to its content: halve it until
        the one message at fault stands alone, dead-letter that one with the database's
        reason, and record the rest. Halves keep each partition's offsets in order, so
        the stored positions still move by compare-and-set."""
        if len(records) > 1:
            middle = len(records) // 2
            log.warning("a batch of %d was refused (%s); isolating the message at fault", len(records), error)
            self.handle(records[:middle], sent)
            self.handle(records[middle:], sent)
            return
        (record,) = records
        letter = DeadLetter(record, "unstorable", f"the database refused it: {type(error).__name__}: {error}")
        if (record.partition, record.offset) not in sent:
            self.send_dead_letters([letter])
            sent[(record.partition, record.offset)] = letter.reason
        try:
            self.app.commit(self.app.decide([]), self.next_positions(records), [("kafka", letter.reason)])
        except StalePosition as stale:
            # Recorded meanwhile by another consumer after a rebalance: nothing left to do.
            log.warning("skipping a record already recorded: %s", stale)
            self.seek_to_stored([TopicPartition(record.topic, record.partition)])

    def next_positions(self, records: Sequence[ConsumerRecord]) -> list[ConsumerPosition]:
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for record in records:
            first[record.partition] = min(first.get(record.partition, record.offset), record.offset)
            last[record.partition] = max(last.get(record.partition, record.offset), record.offset)
        return [ConsumerPosition(CONSUMER, self.topic, p, first[p], last[p] + 1, self.topic_id) for p in sorted(first)]

    def send_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        failed_at = datetime.now(UTC).isoformat().encode()
        futures = [
            self.dlq.send(
                self.settings.dlq_topic,
                key=letter.record.key,
                value=letter.record.value,
                headers=[
                    ("reason", letter.reason.encode()),
                    ("detail", printable(letter.detail)[:2000].encode()),
                    ("original_topic", letter.record.topic.encode()),
                    ("original_partition", str(letter.record.partition).encode()),
                    ("original_offset", str(letter.record.offset).encode()),
                    ("failed_at", failed_at),
                ],
            )
            for letter in dead
        ]
        self.dlq.flush()
        for future in futures:
            future.get()
        self.dead_lettered += len(dead)
        for letter in dead:
            log.warning(
                "dead-lettered: %s",
                letter.detail,
                extra={
                    "code": letter.reason,
                    "topic": letter.record.topic,
                    "partition": letter.record.partition,
                    "offset": letter.record.offset,
                },
            )

    # Loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.topic_id = lookup_topic_id(self.settings, self.topic)
        self.consumer.subscribe([self.topic], listener=_SeekToStored(self))
        while not stop.is_set():
            polled: dict[Any, list[ConsumerRecord]] = self.consumer.poll(
                timeout_ms=200, max_records=self.settings.ingest_batch_size
            )
            assigned = self.take_assigned()
            if assigned:
                # Fetched from the broker's committed offset before our seek: PostgreSQL's
                # position is the truth, so these are dropped and fetched again from there.
                self.seek_to_stored(sorted(assigned))
                polled = {tp: batch for tp, batch in polled.items() if tp not in assigned}
            records = [r for batch in polled.values() for r in batch]
            if records:
                self.handle(records)

    def take_assigned(self) -> set[TopicPartition]:
        with self.assigned_lock:
            assigned, self.assigned = self.assigned, []
        return set(assigned)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.dlq.close(timeout=5)


class _SeekToStored(ConsumerRebalanceListener):
    """kafka-python 3 calls a listener on its network thread: anything blocking here (a
    database query) stops heartbeats, and under load the broker then drops the member. So it
    only notes the partitions; the ingest thread seeks them after the poll returns, before
    it handles a record of theirs."""

    def __init__(self, ingest: CommandIngest) -> None:
        self.ingest = ingest

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.ingest.assigned_lock:
            self.ingest.assigned.extend(assigned)
