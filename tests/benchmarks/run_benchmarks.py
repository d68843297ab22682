"""Throughput of Verkosto's hot paths, each beside a raw baseline run in the same process.

    python -m tests.benchmarks.run_benchmarks [--commands 20000] [--partnerships 1000]
                                              [--broker auto|kafka|tansu]

Ratios (ours / baseline; the issue's targets in brackets):
  ingest     Kafka commands → event store vs eventsourcing's bare Application.save() of
             the same events, 500 a save                                        [≥ 1.0]
  relay      notification log → Kafka vs a kafka-python produce loop             [≥ 0.8]
             (timed from the relay's reader process being up: its start, once per relay)
  catch-up   every projection from the events topic vs an aiokafka consume loop  [≥ 0.05]
  rebuild    every projection from the event store vs the catch-up above         [≥ 1.0]

Beside ingest and catch-up, "framework alone": the same ratio for the consumer the path
runs on doing nothing else (kafka-python polling and parsing the commands as the ingest
does; faust taking the projector's batches, tests/benchmarks/faust_floor.py). No path
built on it can do better, so it says how far a target is reachable at all.

Runs with the components' garbage-collector settings (projections.gc_tuning), baselines
included. Uses VERKOSTO_DATABASE_URL / VERKOSTO_KAFKA_BOOTSTRAP when set, else embedded PostgreSQL
and Apache Kafka (Tansu without Java). Prints the machine's load, a table and one JSON
line. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from contract import commands as c
from projections.gc_tuning import tune_gc
from projections.registry import active_schema
from services.application import Request, Verkosto
from services.bus import ensure_topics
from services.bus import producer as make_producer
from services.db import connect, drop_everything, migrate, open_application
from services.ingest import CommandIngest
from services.relay import Relay
from services.relay_reader import encode_page
from services.settings import Settings
from tests.benchmarks.baselines import (
    SAVE_BATCH,
    aiokafka_consume,
    eventsourcing_save,
    faust_take,
    kafka_python_consume_and_parse,
    kafka_python_produce,
)
from tests.benchmarks.infra import environment, load_average, servers

PARTNER = {"name": "Benchmark Oy", "kind": "organisation", "roles": ["customer"]}


@dataclass
class Result:
    stage: str
    events: int
    seconds: float
    baseline: str
    baseline_seconds: float
    # The framework the path runs on, alone (its consumer doing nothing else): the best
    # ratio the path could reach whatever Verkosto did. None where there is no such floor.
    floor_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds


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
    baseline = eventsourcing_save(settings.require_database_url(), settings.db_schema, messages)
    return Result(
        "Kafka command ingest → event store",
        len(messages),
        ingest.last - ingest.first,
        f"eventsourcing Application.save(), {SAVE_BATCH} events a save",
        baseline,
        kafka_python_consume_and_parse(settings, len(messages)),
    )


def bench_relay(app: Verkosto, settings: Settings) -> Result:
    relay = Relay(app, settings)
    relay.resume()
    # The reader process's start (an interpreter and its imports, once per relay's life)
    # is not throughput; the first page's reading is, and starts with the clock.
    assert relay.reader is not None
    relay.reader.wait_ready()
    stored = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    while relay.published < stored:
        relay.publish_batch()
    # Until every page is acknowledged and its position stored; the reader's wait for
    # more ("nothing new" after its hold) is idling, not publishing.
    relay.settle_in_flight()
    seconds = time.perf_counter() - started
    published = relay.published
    relay.close()
    # The same messages the relay sent, encoded outside the timing.
    messages: list[tuple[int, bytes, bytes]] = []
    while page := encode_page(app, messages[-1][0] if messages else 0, 2000, reveal=app.keys is not None):
        messages += page
    baseline = kafka_python_produce(settings, messages)
    baseline_name = "kafka-python produce, same messages"
    return Result("Relay: notification log → Kafka", published, seconds, baseline_name, baseline)


def settings_env(settings: Settings) -> dict[str, str]:
    """The VERKOSTO_* variables that point a process (or the CLI in this one) at this run."""
    return {
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "VERKOSTO_EVENTS_TOPIC": settings.events_topic,
        "VERKOSTO_PROJECTOR_GROUP": settings.projector_group,
        "VERKOSTO_DATA_DIR": str(settings.data_dir),
    }


def bench_projection(settings: Settings, total: int) -> Result:
    env = {**os.environ, **settings_env(settings)}
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
        "Projection catch-up (all projections)",
        total,
        seconds,
        "aiokafka consume loop, same topic",
        baseline,
        faust_take(settings_env(settings), total),
    )


def bench_rebuild(settings: Settings, total: int, catch_up: Result) -> Result:
    """`verkosto projections rebuild` (every projection, from the event store), run in this
    process so interpreter start-up is not counted; the projector is stopped by now."""
    from services.cli import main as cli

    error = ""
    with environment(settings_env(settings)), contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        try:
            code = cli(["projections", "rebuild"])
        except Exception as failure:  # reported in the table; the other figures still stand
            code, error = 1, f"{type(failure).__name__}: {failure}"
        seconds = time.perf_counter() - started
    if code != 0:
        print(f"rebuild failed: {error or f'exit {code}'}", file=sys.stderr)
        seconds = float("nan")
    return Result(
        "Rebuild (all projections) ← event store", total, seconds, "projection catch-up above", catch_up.seconds
    )


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
        rebuild = bench_rebuild(settings, stored, projection)
    finally:
        app.close()
        drop_everything(database_url, settings.db_schema)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return [ingest, relay, projection, rebuild]


TARGETS = (1.0, 0.8, 0.05, 1.0)  # the issue's, in the order run() returns them


def report(results: list[Result], console: Console, context: dict[str, Any] | None = None) -> None:
    table = Table(title="Verkosto throughput (this machine, baselines in the same process)")
    columns = ("path", "events", "events/s", "baseline", "baseline/s", "ratio", "target", "framework alone")
    for column in columns:
        table.add_column(column, justify="left" if column in ("path", "baseline") else "right")
    for r, target in zip(results, TARGETS, strict=False):
        table.add_row(
            r.stage,
            f"{r.events:,}",
            f"{r.rate:,.0f}",
            r.baseline,
            f"{r.baseline_rate:,.0f}",
            f"{r.rate / r.baseline_rate:.2f}×",
            f"≥ {target}×",
            f"{r.baseline_seconds / r.floor_seconds:.2f}×" if r.floor_seconds else "",
        )
    console.print(table)
    console.print(
        "framework alone: the ratio of the consumer the path runs on, doing nothing else "
        "(ingest: kafka-python polling and parsing the commands; catch-up: faust taking the "
        "projector's batches): no path on it can do better."
    )
    rows = [
        {
            **asdict(r),
            "seconds": r.seconds if math.isfinite(r.seconds) else None,
            "rate": round(r.rate) if math.isfinite(r.rate) else None,
            "baseline_rate": round(r.baseline_rate),
            "ratio": r.rate / r.baseline_rate if math.isfinite(r.rate) else None,
            "floor_ratio": r.baseline_seconds / r.floor_seconds if r.floor_seconds else None,
        }
        for r in results
    ]
    print(json.dumps({**(context or {}), "results": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--partnerships", type=int, default=1_000)
    parser.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto")
    args = parser.parse_args()
    # The collector settings every component runs with (ingest and relay run in this
    # process here), so the baselines beside them run with them too.
    tune_gc()
    # Turn SIGTERM into an exception so the embedded servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    console = Console(width=160)
    with servers(args.broker) as found:
        load_before = load_average()
        console.print(f"broker: {found.broker}; load average at start: {load_before}")
        results = run(found.database_url, found.bootstrap, args.commands, args.partnerships)
        load_after = load_average()
        console.print(f"load average at end: {load_after}")
        report(results, console, {"broker": found.broker, "load_start": load_before, "load_end": load_after})


if __name__ == "__main__":
    main()
