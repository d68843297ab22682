"""End to end: a scaled-out Verkosto on one PostgreSQL and Apache Kafka, topics of 6
partitions, every component a process of its own: two ingests (one consumer group), two
relays (one publishing, one waiting on the advisory lock) and two projectors (one faust
group), later three.

1. While a few thousand commands flow across many partnerships, one of each kind is
   killed with -9 and started again, and a third projector joins (a rebalance). Every
   acknowledged command is recorded once, every event published, each partnership's
   projected version equals its stored version in every read model, trust points equal
   the events that move trust, a rebuild from the event store lands on the same content
   hash as the live read models, and `verkosto status` exits 0.
2. Projection throughput: a backlog of 20 000 events published with no projector running,
   then caught up by one projector, again (into fresh read-model versions, a new group)
   by two, then by one and two once more. All land on the same content hashes.

Run with ``-s`` to see the figures. Skipped only where Java or Maven is missing.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from psycopg import sql

from services.kafka_broker import ApacheKafka, KafkaUnavailable, kafka_libs
from tests.e2e.components import (
    Component,
    Deployment,
    Sender,
    check_exactly_once,
    content_hashes,
    follow_up,
    opening,
    published,
    store_figures,
)

PARTNERSHIPS = 400
FOLLOW_UPS = 3600
RATE = 250.0
BACKLOG_PARTNERSHIPS = 2000
BACKLOG_FOLLOW_UPS = 18_000  # 20 000 events in all


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    if shutil.which("java") is None:
        pytest.skip("Apache Kafka unavailable here: no `java` on PATH (run `make kafka`)")
    try:
        libs = kafka_libs()
    except KafkaUnavailable as error:
        pytest.skip(f"Apache Kafka unavailable here: {error}")
    broker = ApacheKafka(tmp_path_factory.mktemp("apache-kafka"), libs=libs)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def print_figures(title: str, figures: dict[str, Any]) -> None:
    print(f"\n{title}:", file=sys.stderr)
    for key, value in figures.items():
        print(f"  {key}: {round(value, 2) if isinstance(value, float) else value}", file=sys.stderr)


def publishing(relays: list[Component]) -> list[Component]:
    """The relays that hold the advisory lock (each says so in its log once it has it)."""
    return [r for r in relays if r.alive() and r.count("relay publishing from position", since_start=True)]


def commands(
    rng: random.Random, partnerships: int, follow_ups: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Openings of ``partnerships``, then ``follow_ups`` spread over them at random."""
    pids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(partnerships)]
    openings = [opening(pid, n) for n, pid in enumerate(pids)]
    return openings, [follow_up(rng.choice(pids), n, rng) for n in range(follow_ups)]


def test_two_of_each_lose_nothing_when_one_of_each_is_killed(
    kafka: ApacheKafka, database_url: str, tmp_path: Path
) -> None:
    timings: dict[str, Any] = {}
    began = time.monotonic()
    system = Deployment(database_url, kafka.bootstrap, tmp_path / "system", partitions=6)
    try:
        system.migrate()
        system.create_topics()
        ingests = [system.start("ingest") for _ in range(2)]
        relays = [system.start("relay") for _ in range(2)]
        projectors = [system.start("projector") for _ in range(2)]
        system.until(lambda: len(publishing(relays)) == 1, 60, "one relay to take the lock")

        opens, follow_ups = commands(random.Random(23), PARTNERSHIPS, FOLLOW_UPS)
        sender = Sender(kafka.bootstrap, system.commands_topic, rate=RATE)
        sender.send_all_now(opens)
        sender.stream(follow_ups)

        sender.streamed(PARTNERSHIPS + FOLLOW_UPS // 6)
        ingests[0].kill9()
        ingests[0].start()
        timings["ingest-1 killed -9 and restarted at command"] = len(sender.sent)

        sender.streamed(PARTNERSHIPS + 2 * FOLLOW_UPS // 6)
        (active,) = publishing(relays)
        waiting = next(r for r in relays if r is not active)
        active.kill9()
        t = time.monotonic()
        system.until(
            lambda: waiting.count("relay publishing from position", since_start=True),
            30,
            "the standby relay to take over",
            0.1,
        )
        timings["relay failover: standby publishing after the active one's kill -9 (s)"] = time.monotonic() - t
        timings["relay killed"] = active.label
        active.start()  # back as the standby
        timings["relay killed at command"] = len(sender.sent)

        sender.streamed(PARTNERSHIPS + 3 * FOLLOW_UPS // 6)
        projectors[0].kill9()
        projectors[0].start()
        timings["projector-1 killed -9 and restarted at command"] = len(sender.sent)

        sender.streamed(PARTNERSHIPS + 4 * FOLLOW_UPS // 6)
        projectors.append(system.start("projector"))
        timings["projector-3 started at command"] = len(sender.sent)

        sender.finish()
        timings["test start to last acknowledgement (s)"] = time.monotonic() - began
        acknowledged = sender.acknowledged
        timings["caught up after the last command (s)"] = system.catch_up(120)
        assert len(publishing(relays)) == 1, "not exactly one relay publishing"

        store = store_figures(database_url, system.name)
        bus = published(kafka.bootstrap, system.events_topic)
        figures: dict[str, Any] = {
            "commands sent": len(sender.sent) + sender.send_errors,
            "commands acknowledged": len(acknowledged),
            "commands recorded (command_log)": store["command_log"],
            "acknowledged and recorded": len(acknowledged & store["command_ids"]),
            "command outcomes": store["outcomes"],
            "events stored": store["events_stored"],
            "events published (distinct event_ids)": bus["distinct"],
            "event records on the topic": bus["records"],
            "duplicate event records (a relay re-sent its batch after the kill)": bus["duplicates"],
            "event records per partition": dict(sorted(bus["by_partition"].items())),
            "partnerships (projected / stored)": (
                len(store["projections"]["trust"]["applied"]),
                len(store["stored_versions"]),
            ),
            "trust points": store["trust_points"],
        }
        try:
            figures.update(check_exactly_once(store, bus, acknowledged))
        except AssertionError:
            print_figures("scale-out figures (a check failed)", {**figures, **timings})
            raise
        assert len(acknowledged) == PARTNERSHIPS + FOLLOW_UPS

        live = content_hashes(database_url, system.name)
        t = time.monotonic()
        rebuilt = system.cli("projections", "rebuild", timeout_s=180)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        timings["`verkosto projections rebuild` of all five (s)"] = time.monotonic() - t
        again = content_hashes(database_url, system.name)
        figures["content hashes live == rebuilt"] = {name: live[name] == again[name] for name in live}
        assert again == live
        status = system.status()
        assert status.returncode == 0, status.stdout
        figures.update(timings)
        figures["whole test (s)"] = time.monotonic() - began
        print_figures("scale-out figures", figures)
    finally:
        system.stop_all()
        system.drop()


def caught_up(database_url: str, schema: str, last: int) -> bool:
    from projections.catalog import all_projections
    from projections.registry import active_schema
    from services.db import connect

    with connect(database_url) as conn:
        for projection in all_projections():
            rm = active_schema(conn, schema, projection.name)
            query = sql.SQL("SELECT coalesce(max(position), 0) AS p FROM {}.positions").format(rm)
            if conn.execute(query).fetchone()["p"] < last:
                return False
        return True


def catch_up_window(database_url: str, schema: str) -> float:
    """From the first batch's start to the last batch's end, over every projection."""
    from projections.catalog import all_projections
    from projections.registry import active_schema
    from services.db import connect

    with connect(database_url) as conn:
        spans = []
        for projection in all_projections():
            rm = active_schema(conn, schema, projection.name)
            row = conn.execute(
                sql.SQL("SELECT extract(epoch FROM max(updated_at) - min(started_at)) AS s FROM {}.positions").format(
                    rm
                )
            ).fetchone()
            spans.append(float(row["s"]))
        return max(spans)


def postgres_cpu_seconds(database_url: str) -> float:
    """CPU time of the whole PostgreSQL server so far: the postmaster, its live backends
    and those already gone (as the postmaster's reaped children)."""
    from services.db import connect

    with connect(database_url) as conn:
        backend = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
        postmaster = psutil.Process(backend).parent()
        assert postmaster is not None
        total = sum(postmaster.cpu_times()[:4])
        for child in postmaster.children():
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
    return total


def fresh_read_models(database_url: str, schema: str) -> None:
    """Every projection's next version, empty, made active: a projector in a new group
    folds the whole topic into it."""
    from projections.catalog import all_projections
    from projections.registry import create_version
    from services.db import connect

    base = sql.Identifier(schema)
    with connect(database_url, autocommit=True) as conn:
        for projection in all_projections():
            (version,) = (
                conn.execute(
                    sql.SQL("SELECT version FROM {}.rm_active WHERE projection = %s").format(base), (projection.name,)
                )
                .fetchone()
                .values()
            )
            name = create_version(conn, schema, projection, version + 1)
            conn.execute(
                sql.SQL("UPDATE {}.rm_active SET version = %s, rm_schema = %s WHERE projection = %s").format(base),
                (version + 1, name, projection.name),
            )


def test_projection_throughput_with_one_and_two_projectors(
    kafka: ApacheKafka, database_url: str, tmp_path: Path
) -> None:
    figures: dict[str, Any] = {}
    began = time.monotonic()
    system = Deployment(database_url, kafka.bootstrap, tmp_path / "backlog", partitions=6)
    try:
        system.migrate()
        system.create_topics()
        for _ in range(2):
            system.start("ingest")
        system.start("relay")
        opens, follow_ups = commands(random.Random(5), BACKLOG_PARTNERSHIPS, BACKLOG_FOLLOW_UPS)
        total = len(opens) + len(follow_ups)
        sender = Sender(kafka.bootstrap, system.commands_topic, rate=0)
        t = time.monotonic()
        sender.send_all_now(opens)
        sender.send_all_now(follow_ups)
        sender.finish()
        assert len(sender.acknowledged) == total
        figures["commands sent and acknowledged (s)"] = time.monotonic() - t
        system.until(lambda: store_count(database_url, system.name) >= total, 120, "the ingests to record the backlog")
        ingest_s = time.monotonic() - t
        figures["ingest: 2 processes, commands/s (from the first send)"] = total / ingest_s
        system.until(
            lambda: relay_position(database_url, system.name) >= total, 60, "the relay to publish the backlog", 0.2
        )
        figures["relay: published everything after (s from the first send)"] = time.monotonic() - t
        figures["backlog events"] = total

        hashes = []
        rates: dict[int, list[float]] = {1: [], 2: []}
        # 1, 2, 1, 2: on a shared machine one run of each says little; the median of two does more.
        for run, count in enumerate((1, 2, 1, 2), start=1):
            if run > 1:
                fresh_read_models(database_url, system.name)
            group = f"{system.name}-throughput-{run}"
            load = os.getloadavg()[0]
            pg_before = postgres_cpu_seconds(database_url)
            started = time.monotonic()
            runners = [
                system.start("projector", f"projector-run{run}-{i + 1}", VERKOSTO_PROJECTOR_GROUP=group)
                for i in range(count)
            ]
            system.until(
                lambda: caught_up(database_url, system.name, total), 150, f"{count} projector(s) to catch up", 0.2
            )
            wall = time.monotonic() - started
            window = catch_up_window(database_url, system.name)
            cpu = sum(sum(psutil.Process(r.pid).cpu_times()[:2]) for r in runners)
            pg_cpu = postgres_cpu_seconds(database_url) - pg_before
            rates[count].append(total / window)
            figures[f"run {run}, {count} projector(s)"] = (
                f"{total / window:.0f} events/s over the catch-up window ({window:.1f} s); "
                f"{wall:.1f} s from process start ({total / wall:.0f} events/s); "
                f"CPU: projector(s) {cpu:.1f} s ({1000 * cpu / total:.2f} ms/event), PostgreSQL {pg_cpu:.1f} s "
                f"({1000 * pg_cpu / total:.2f} ms/event); load average before {load:.1f}"
            )
            for runner in runners:
                runner.signal(signal.SIGTERM)
            for runner in runners:
                runner.stop()
            hashes.append(content_hashes(database_url, system.name))
        for count, seen in rates.items():
            figures[f"median events/s, {count} projector(s)"] = statistics.median(seen)
        assert all(h == hashes[0] for h in hashes), "one and two projectors folded different read models"
        figures["content hashes equal across the four runs"] = True
        figures["whole test (s)"] = time.monotonic() - began
        print_figures("projection throughput", figures)
    finally:
        system.stop_all()
        system.drop()


def store_count(database_url: str, schema: str) -> int:
    from services.db import connect

    with connect(database_url) as conn:
        return conn.execute(
            sql.SQL("SELECT count(*) AS n FROM {}.command_log").format(sql.Identifier(schema))
        ).fetchone()["n"]


def relay_position(database_url: str, schema: str) -> int:
    from services.db import connect

    with connect(database_url) as conn:
        return conn.execute(
            sql.SQL("SELECT coalesce(max(position), 0) AS n FROM {}.relay_positions").format(sql.Identifier(schema))
        ).fetchone()["n"]
