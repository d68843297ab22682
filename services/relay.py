"""The relay: follows the event store's notification log and publishes to the bus.

At-least-once: a batch is produced and flushed before its position is stored, so a crash
re-sends at most one batch, which consumers skip by aggregate version. Only one relay
publishes at a time (a PostgreSQL advisory lock); others wait as hot standbys.
"""

from __future__ import annotations

import json
import logging
import threading

import psycopg
from psycopg import sql

from contract.events import published_event
from services.application import Verkosto
from services.bus import producer as make_producer
from services.bus import topic_id as lookup_topic_id
from services.db import connect
from services.settings import Settings

log = logging.getLogger(__name__)


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

    def publish_batch(self) -> int:
        notifications = self.app.recorder.select_notifications(
            start=self.position, limit=self.settings.relay_batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        send = self.producer.send
        topic = self.settings.events_topic
        futures = [
            send(
                topic,
                key=str(n.originator_id).encode(),
                value=json.dumps(published_event(n.topic, n.state, n.id, self.app.reveal)).encode(),
                headers=[("position", str(n.id).encode())],
            )
            for n in notifications
        ]
        self.producer.flush()
        furthest: dict[int, tuple[int, int]] = {}  # partition -> (offset, position) of its last event
        for n, future in zip(notifications, futures, strict=True):
            written = future.get()  # raises if any message was not acknowledged
            if written.offset > furthest.get(written.partition, (-1, 0))[0]:
                furthest[written.partition] = (written.offset, n.id)
        self.store_position(notifications[-1].id, furthest)
        self.published += len(notifications)
        return len(notifications)

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
                if self.publish_batch() == 0:
                    stop.wait(self.settings.relay_idle_sleep_s)

    def close(self) -> None:
        self.producer.close(timeout=5)
        if self.conn is not None:
            self.conn.close()
