"""The relay: follows the event store's notification log and publishes to the bus.

At-least-once: a page's positions are stored only once the broker has acknowledged all of
it, so a crash re-sends at most the pages in flight (two), which consumers skip by
aggregate version. Only one relay publishes at a time (a PostgreSQL advisory lock); others
wait as hot standbys.

Pipelined for throughput: a reader process (services.relay_reader) reads and encodes the
next pages while this one sends, and a page's acknowledgements are awaited only after the
next page has been handed to the producer, so neither the database nor the broker's round
trip stops the sending.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from kafka.partitioner.default import DefaultPartitioner, murmur2
from kafka.producer.future import FutureRecordMetadata
from psycopg import sql

from services.application import Verkosto
from services.bus import producer as make_producer
from services.bus import topic_id as lookup_topic_id
from services.db import connect
from services.relay_reader import Pacing, Page, PageReader
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class InFlight:
    """A page handed to the producer whose acknowledgements are not yet counted."""

    page: Page
    futures: list[FutureRecordMetadata]


class Relay:
    def __init__(self, app: Verkosto, settings: Settings, name: str = "events") -> None:
        self.app = app
        self.settings = settings
        self.name = name
        self.database_url = settings.require_database_url()
        self.schema = sql.Identifier(settings.db_schema)
        self.producer = make_producer(settings)
        self.position = 0
        self.topic_id: str | None = None
        self.published = 0
        self.conn: psycopg.Connection | None = None
        self.reader: PageReader | None = None
        self.in_flight: InFlight | None = None
        # key -> partition, as the default partitioner picks it: its murmur2, in pure
        # Python, is a sixth of what a send costs. Valid for one partition count.
        self.partitions: dict[bytes, int] = {}
        self.partition_ids: list[int] = []

    def resume(self) -> None:
        """Loads the stored position; starts over if the topic is not the one we fed."""
        self.topic_id = lookup_topic_id(self.settings, self.settings.events_topic)
        if self.conn is None:
            self.conn = connect(self.database_url, autocommit=True)
        row = self.conn.execute(
            sql.SQL("SELECT position, topic_id FROM {}.relay_positions WHERE relay = %s").format(self.schema),
            (self.name,),
        ).fetchone()
        if row is None:
            self.position = 0
        elif row["topic_id"] and self.topic_id and row["topic_id"] != self.topic_id:
            # The bus lost the topic (e.g. an in-memory broker restarted): refill it from
            # the event store, which is the source of truth. Consumers skip what they have.
            log.warning("events topic was recreated; republishing from the start")
            self.position = 0
            self.conn.execute(  # the old topic's offsets mean nothing in the new one
                sql.SQL("DELETE FROM {}.relay_partitions WHERE relay = %s").format(self.schema), (self.name,)
            )
        else:
            self.position = row["position"]
        self.start_reader()

    def start_reader(self) -> None:
        """(Re)starts the reader after the stored position, dropping any page in flight
        (its positions were not stored: it is read and sent again)."""
        if self.reader is not None:
            self.reader.close()
        self.in_flight = None
        self.reader = PageReader(
            self.database_url,
            self.settings.db_schema,
            self.position,
            self.settings.relay_batch_size,
            reveal=self.app.keys is not None,
            pacing=Pacing(self.settings.relay_idle_sleep_s, self.settings.relay_idle_hold_s),
        )

    def publish_batch(self) -> int:
        """Sends the next page and settles the one before it (waits for its acks, stores
        its positions); returns how many events it sent. When nothing is new it settles
        what is in flight and returns 0: then everything sent is stored. (The reader waits up
        to ``relay_idle_hold_s`` for something new before it says nothing is.)"""
        assert self.reader is not None, "resume() first"
        page = self.reader.next_page()
        if not page:
            self.settle_in_flight()
            return 0
        previous, self.in_flight = self.in_flight, InFlight(page, self.send(page))
        if previous is not None:
            self.settle(previous)
        self.published += len(page)
        return len(page)

    def settle_in_flight(self) -> None:
        """Waits for the page in flight to be acknowledged and stores its positions."""
        if self.in_flight is not None:
            self.producer.flush()
            self.settle(self.in_flight)
            self.in_flight = None

    def send(self, page: Page) -> list[FutureRecordMetadata]:
        send = self.producer.send
        topic = self.settings.events_topic
        partition_of = self.partitioner()
        return [
            send(topic, key=key, value=value, headers=[("position", str(n).encode())], partition=partition_of(key))
            for n, key, value in page
        ]

    def partitioner(self) -> Callable[[bytes], int | None]:
        """The partition the producer's default partitioner would pick for a key,
        remembered per key while the topic's partitions stay the same."""
        if type(self.producer.config["partitioner"]) is not DefaultPartitioner:
            return lambda _key: None  # let the producer choose
        ids = sorted(self.producer.partitions_for(self.settings.events_topic))
        if ids != self.partition_ids:
            self.partitions, self.partition_ids = {}, ids
        known = self.partitions

        def partition_of(key: bytes) -> int:
            found = known.get(key)
            if found is None:
                found = known[key] = ids[(murmur2(key) & 0x7FFFFFFF) % len(ids)]
            return found

        return partition_of

    def settle(self, batch: InFlight) -> None:
        """Waits for every event of the page to be acknowledged, then stores its positions."""
        furthest: dict[int, tuple[int, int]] = {}  # partition -> (offset, position) of its last event
        for (n, _key, _value), future in zip(batch.page, batch.futures, strict=True):
            written = future.get()  # raises if any message was not acknowledged
            if written.offset > furthest.get(written.partition, (-1, 0))[0]:
                furthest[written.partition] = (written.offset, n)
        self.store_position(batch.page[-1][0], furthest)

    def store_position(self, position: int, partitions: dict[int, tuple[int, int]] | None = None) -> None:
        """The relay's position and, per partition, the (offset, position) it last wrote
        there, in one transaction."""
        assert self.conn is not None, "resume() first"
        with self.conn.transaction():
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {}.relay_positions (relay, position, topic_id) VALUES (%s, %s, %s) "
                    "ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position, "
                    "topic_id = EXCLUDED.topic_id, updated_at = now()"
                ).format(self.schema),
                (self.name, position, self.topic_id),
            )
            if partitions:
                # Plain overwrite, not GREATEST: a recreated topic starts its offsets at 0.
                self.conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.relay_partitions (relay, partition, last_offset, position, topic_id) "
                        "SELECT %s, u.p, u.o, u.n, %s FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS u(p, o, n) "
                        "ON CONFLICT (relay, partition) DO UPDATE SET last_offset = EXCLUDED.last_offset, "
                        "position = EXCLUDED.position, topic_id = EXCLUDED.topic_id, updated_at = now()"
                    ).format(self.schema),
                    (
                        self.name,
                        self.topic_id,
                        list(partitions),
                        [o for o, _ in partitions.values()],
                        [p for _, p in partitions.values()],
                    ),
                )
        self.position = position

    def run(self, stop: threading.Event) -> None:
        with connect(self.database_url, autocommit=True) as lock_conn:
            while not stop.is_set():
                # One active relay per event store (schema), not per database: two
                # deployments sharing a server must not wait on each other.
                got = lock_conn.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", (f"verkosto-relay:{self.settings.db_schema}",)
                )
                if got.fetchone()["ok"]:  # type: ignore[index]
                    break
                stop.wait(1.0)
            if stop.is_set():
                return
            self.resume()
            log.info("relay publishing from position %s", self.position)
            while not stop.is_set():
                # No sleep when nothing was new: the reader has already waited (hold_s).
                self.publish_batch()

    def close(self) -> None:
        if self.in_flight is not None:
            # Stopping: store what the broker took, so a successor re-sends less.
            try:
                self.producer.flush(timeout=5)
                self.settle(self.in_flight)
            except Exception as error:  # it is sent again by whoever publishes next
                log.info("positions of the last page not stored (%s: %s)", type(error).__name__, error)
            self.in_flight = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        self.producer.close(timeout=5)
        if self.conn is not None:
            self.conn.close()
