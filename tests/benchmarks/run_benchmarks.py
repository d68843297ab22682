"""Throughput of the three hot paths, each beside a raw baseline run in the same process.

    python -m tests.benchmarks.run_benchmarks [--commands 20000] [--partnerships 1000]

Uses VERKOSTO_DATABASE_URL / VERKOSTO_KAFKA_BOOTSTRAP when set, else embedded PostgreSQL
and Tansu. Prints a table and one JSON line. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from contract import commands as c
from projections.registry import active_schema
from services.application import Request, Verkosto
from services.bus import ensure_topics
from services.bus import producer as make_producer
from services.db import connect, drop_everything, migrate, open_application
from services.embedded import EmbeddedKafka, EmbeddedPostgres
from services.ingest import CommandIngest
from services.relay import Relay
from services.settings import Settings

PARTNER = {"name": "Benchmark Oy", "kind": "organisation", "roles": ["customer"]}


@dataclass
class Result:
    stage: str
    events: int
    seconds: float
    baseline: str
    baseline_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("VERKOSTO_DATABASE_URL")
        if not database_url:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="verkosto-bench-"))
            postgres = EmbeddedPostgres(Path(tmp) / "pg")
            database_url = postgres.start()
            stack.callback(postgres.stop)
        bootstrap = os.environ.get("VERKOSTO_KAFKA_BOOTSTRAP")
        if not bootstrap:
            kafka = EmbeddedKafka()
            bootstrap = kafka.start()
            stack.callback(kafka.stop)
        yield database_url, bootstrap


def fresh_settings(database_url: str, bootstrap: str) -> Settings:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        db_schema=name,
        commands_topic=f"{name}.commands",
        events_topic=f"{name}.events",
        dlq_topic=f"{name}.dlq",
        ingest_group=f"{name}-ingest",
        projector_group=f"{name}-projector",
        data_dir=Path(tempfile.mkdtemp(prefix="verkosto-bench-data-")),
    )
    migrate(database_url, name)
    ensure_topics(settings)
    return settings


def seed_partnerships(app: Verkosto, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    for start in range(0, count, 500):
        app.execute(
            [
                Request(
                    c.OpenPartnership(partnership_id=pid, partner=PARTNER, owner_unit="bench", steward="s"),  # type: ignore[arg-type]
                    "bench",
                    "api",
                )
                for pid in ids[start : start + 500]
            ]
        )
    return ids


def command_messages(ids: list[uuid.UUID], count: int) -> list[tuple[bytes, bytes]]:
    return [
        (
            str(pid).encode(),
            json.dumps(
                {
                    "type": "contact_logged",
                    "partnership_id": str(pid),
                    "channel": "email",
                    "direction": "inbound",
                    "participants": ["steward"],
                    "actor": "bench",
                }
            ).encode(),
        )
        for pid in (ids[i % len(ids)] for i in range(count))
    ]


class TimedIngest(CommandIngest):
    first: float | None = None
    last: float = 0.0

    def handle(self, records: Any) -> None:
        self.first = self.first or time.perf_counter()
        super().handle(records)
        self.last = time.perf_counter()


def bench_ingest(app: Verkosto, settings: Settings, messages: list[tuple[bytes, bytes]]) -> Result:
    producer = make_producer(settings)
    for key, value in messages:
        producer.send(settings.commands_topic, key=key, value=value)
    producer.flush()
    producer.close()
    ingest = TimedIngest(app, settings)
    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 600
    while ingest.recorded < len(messages):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"ingest stalled at {ingest.recorded}/{len(messages)}")
        time.sleep(0.05)
    stop.set()
    thread.join()
    ingest.close()
    assert ingest.first is not None
    # Raw baseline: COPY rows shaped like stored events into a scratch table.
    rows = [(uuid.uuid4(), 1, "bench:Event", value) for _, value in messages]
    with connect(settings.require_database_url()) as conn:
        conn.execute("CREATE TEMP TABLE copy_baseline (id uuid, v bigint, topic text, state bytea)")
        started = time.perf_counter()
        with conn.cursor().copy("COPY copy_baseline FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        copy_seconds = time.perf_counter() - started
    return Result(
        "Kafka command ingest → event store",
        len(messages),
        ingest.last - ingest.first,
        "psycopg COPY of the same rows",
        copy_seconds,
    )


def bench_relay(app: Verkosto, settings: Settings) -> Result:
    relay = Relay(app, settings)
    relay.resume()
    started = time.perf_counter()
    while relay.publish_batch():
        pass
    seconds = time.perf_counter() - started
    published = relay.published
    relay.close()
    # Raw baseline: kafka-python producing the same number of same-sized messages.
    payload = b"x" * 420
    baseline_topic = f"{settings.events_topic}.baseline"
    # Created like ours (Apache Kafka here does not create topics on first use).
    ensure_topics(settings.model_copy(update={"events_topic": baseline_topic}))
    producer = make_producer(settings)
    started = time.perf_counter()
    for i in range(published):
        producer.send(baseline_topic, key=str(i % 1000).encode(), value=payload)
    producer.flush()
    baseline = time.perf_counter() - started
    producer.close()
    return Result("Relay: notification log → Kafka", published, seconds, "kafka-python produce, same count", baseline)


def bench_projection(settings: Settings, total: int) -> Result:
    env = {
        **os.environ,
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "VERKOSTO_EVENTS_TOPIC": settings.events_topic,
        "VERKOSTO_PROJECTOR_GROUP": settings.projector_group,
        "VERKOSTO_DATA_DIR": str(settings.data_dir),
    }
    projector = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "projector"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Every projection commits in the projector's one transaction per batch; the
    # ownership version's tracking therefore speaks for all of them.
    with connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "ownership").as_string(conn)
    query = f"SELECT coalesce(sum(version), 0)::bigint AS n FROM {rm}.applied"
    span = f"SELECT extract(epoch FROM max(updated_at) - min(started_at)) AS s FROM {rm}.positions"
    try:
        with connect(settings.require_database_url(), autocommit=True) as conn:
            deadline = time.monotonic() + 600
            while conn.execute(query).fetchone()["n"] < total:  # type: ignore[index]
                if time.monotonic() > deadline or projector.poll() is not None:
                    raise RuntimeError("projection stalled")
                time.sleep(0.02)
            # From the first batch's start to the last batch's commit, as the projector saw it.
            seconds = float(conn.execute(span).fetchone()["s"])  # type: ignore[index]
    finally:
        projector.terminate()
        projector.wait(30)
    baseline = asyncio.run(aiokafka_consume(settings, total))
    return Result(
        "Projection catch-up (all projections)", total, seconds, "aiokafka consume loop, same topic", baseline
    )


async def aiokafka_consume(settings: Settings, total: int) -> float:
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
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                started = started or time.perf_counter()
                count += len(records)
    finally:
        await consumer.stop()
    assert started is not None
    return time.perf_counter() - started


def run(database_url: str, bootstrap: str, commands: int, partnerships: int) -> list[Result]:
    settings = fresh_settings(database_url, bootstrap)
    app = open_application(database_url, settings.db_schema)
    try:
        ids = seed_partnerships(app, partnerships)
        ingest = bench_ingest(app, settings, command_messages(ids, commands))
        stored = app.recorder.max_notification_id()
        assert stored == partnerships + commands, (stored, partnerships + commands)
        relay = bench_relay(app, settings)
        assert relay.events == stored
        projection = bench_projection(settings, stored)
    finally:
        app.close()
        drop_everything(database_url, settings.db_schema)
    return [ingest, relay, projection]


def report(results: list[Result], console: Console) -> None:
    table = Table(title="Verkosto throughput (this machine, same process baselines)")
    for column in ("path", "events", "events/s", "baseline", "baseline/s", "ratio"):
        table.add_column(column, justify="right" if column != "path" and column != "baseline" else "left")
    for r in results:
        table.add_row(
            r.stage,
            f"{r.events:,}",
            f"{r.rate:,.0f}",
            r.baseline,
            f"{r.baseline_rate:,.0f}",
            f"{r.rate / r.baseline_rate:.2f}",
        )
    console.print(table)
    print(json.dumps([{**asdict(r), "rate": round(r.rate), "baseline_rate": round(r.baseline_rate)} for r in results]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--partnerships", type=int, default=1_000)
    args = parser.parse_args()
    # Turn SIGTERM into an exception so the embedded servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with infrastructure() as (database_url, bootstrap):
        report(run(database_url, bootstrap, args.commands, args.partnerships), Console(width=150))


if __name__ == "__main__":
    main()
