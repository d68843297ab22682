"""Raw baselines the throughput benchmark compares Verkosto's paths with, run in the same
process on the same servers: the eventsourcing library's bare ``Application.save()``,
a kafka-python produce loop and an aiokafka consume loop. And two floors: what the
consumers the ingest and the projector are built on cost before Verkosto does anything
(kafka-python with the command parsing; faust, in tests/benchmarks/faust_floor.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from psycopg import sql

from services.db import connect
from services.eventstore import eventsourcing_env
from services.settings import Settings

SAVE_BATCH = 500


class BareAggregate(Aggregate):
    """The simplest aggregate carrying the same event as the ingest benchmark records."""

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.contacts = 0

    @event("ContactLogged")
    def log_contact(self, channel: str, direction: str, participants: list[str], actor: str) -> None:
        self.contacts += 1


class BareApplication(Application[uuid.UUID]):
    """A plain eventsourcing application: the library's own mapper, recorder and schema."""

    name = "BareBaseline"


def eventsourcing_save(database_url: str, base_schema: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Seconds for the library to save the same events as ``messages`` (one per command,
    on as many aggregates as the commands name), ``SAVE_BATCH`` events per ``save()``.

    Runs in its own schema beside ours (``<base>__esbaseline``, dropped with it). The
    aggregates are created and saved first, untimed, as the partnerships are for ingest;
    then each event is triggered on the aggregate in memory (no loading: a bare save)."""
    schema = f"{base_schema}__esbaseline"
    with connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    app = BareApplication(eventsourcing_env(database_url, schema, create_table=True))
    try:
        commands = [(key.decode(), json.loads(value)) for key, value in messages]
        aggregates: dict[str, BareAggregate] = {}
        for key, _ in commands:
            if key not in aggregates:
                aggregates[key] = BareAggregate(name=key)
        created = list(aggregates.values())
        for start in range(0, len(created), SAVE_BATCH):
            app.save(*created[start : start + SAVE_BATCH])
        started = time.perf_counter()
        touched: dict[str, BareAggregate] = {}
        pending = 0
        for key, command in commands:
            aggregate = aggregates[key]
            aggregate.log_contact(command["channel"], command["direction"], command["participants"], command["actor"])
            touched[key] = aggregate
            pending += 1
            if pending == SAVE_BATCH:
                app.save(*touched.values())
                touched, pending = {}, 0
        if touched:
            app.save(*touched.values())
        seconds = time.perf_counter() - started
        recorded = app.recorder.max_notification_id() or 0
        assert recorded == len(created) + len(commands), (recorded, len(created), len(commands))
        return seconds
    finally:
        app.close()


def kafka_python_produce(settings: Settings, messages: list[tuple[int, bytes, bytes]]) -> float:
    """Seconds for kafka-python to produce exactly the relay's messages (key, value and
    the position header; flushed), with the producer settings the relay uses, to a topic
    created like ours: what the relay adds is then all that differs."""
    from services.bus import ensure_topics
    from services.bus import producer as make_producer

    baseline_topic = f"{settings.events_topic}.baseline"
    # Created like ours (Apache Kafka does not create topics on first use).
    ensure_topics(settings.model_copy(update={"events_topic": baseline_topic}))
    producer = make_producer(settings)
    started = time.perf_counter()
    for position, key, value in messages:
        producer.send(baseline_topic, key=key, value=value, headers=[("position", str(position).encode())])
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return seconds


def kafka_python_consume_and_parse(settings: Settings, total: int) -> float:
    """Seconds for kafka-python, configured and polled as the ingest polls, to consume
    ``total`` commands of the commands topic and parse each as the ingest does (JSON and
    the command's validation), doing nothing else: from the first batch to the last."""
    from services.bus import consumer as make_consumer
    from services.ingest import parse

    consumer = make_consumer(settings, f"{settings.ingest_group}-floor")
    consumer.subscribe([settings.commands_topic])
    count, started = 0, None
    try:
        while count < total:
            polled = consumer.poll(timeout_ms=200, max_records=settings.ingest_batch_size)
            for records in polled.values():
                started = started or time.perf_counter()
                for record in records:
                    parse(record)
                count += len(records)
    finally:
        consumer.close()
    assert started is not None
    return time.perf_counter() - started


def faust_take(env: dict[str, str], total: int) -> float:
    """Seconds for faust, configured as the projector is (``env``: the run's VERKOSTO_*
    variables), to take ``total`` events of the events topic in the projector's batches
    and do nothing with them, in a process of its own as the projector runs."""
    with tempfile.TemporaryDirectory(prefix="verkosto-floor-") as scratch:
        out = Path(scratch) / "floor.json"
        env = {**os.environ, **env, "VERKOSTO_DATA_DIR": scratch}
        floor = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.faust_floor", str(total), str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 600
            while not out.exists():
                if time.monotonic() > deadline or floor.poll() is not None:
                    raise RuntimeError("the faust floor stalled")
                time.sleep(0.05)
        finally:
            floor.terminate()
            floor.wait(30)
        return float(json.loads(out.read_text())["seconds"])


async def aiokafka_consume(settings: Settings, total: int) -> float:
    """Seconds for aiokafka to consume ``total`` messages of the events topic, from the
    first batch that arrives (group join excluded) to the last."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.events_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.projector_group}-baseline",
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=10_000,
        rebalance_timeout_ms=10_000,
    )
    await consumer.start()
    count, started = 0, None
    try:
        while count < total:
            batches: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                started = started or time.perf_counter()
                count += len(records)
    finally:
        await consumer.stop()
    assert started is not None
    return time.perf_counter() - started
