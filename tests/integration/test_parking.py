"""No single event stops the projector: what a projection cannot apply is parked, the rest
flows, monitoring shows it, and `verkosto projections retry` applies it after a fix.

Events take the real path: recorded by the application, published by the relay to the
broker, consumed back with their partitions and offsets, and applied by the Tracker the
projector uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from contract import commands as c
from projections.catalog import all_projections, by_name
from projections.queries.ownership import tenures
from projections.queries.reading import applied
from projections.rebuild import content_hash, rebuild_sync
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from services.application import Rejected, Request, Verkosto
from services.metrics import HealthCollector, _age_after, read_health
from services.replay import StoreHistory
from services.settings import Settings
from tests.kafka_helpers import consume, publish_all

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}
POISON_STEWARD = "poison-steward"


def record(app: Verkosto, commands: list[c.Command]) -> None:
    for start in range(0, len(commands), 500):
        outcomes = app.execute([Request(command, "tester", "api") for command in commands[start : start + 500]])
        assert not [o for o in outcomes if isinstance(o, Rejected)], outcomes


def opened(pid: uuid.UUID, steward: str = "alice", name: str = "Acme Oy") -> c.Command:
    return c.OpenPartnership(partnership_id=pid, partner={**PARTNER, "name": name}, owner_unit="u", steward=steward)  # type: ignore[arg-type]


def contact(pid: uuid.UUID) -> c.Command:
    return c.LogContact(
        type="contact_logged", partnership_id=pid, channel="call", direction="inbound", participants=("alice",)
    )


def transfer(pid: uuid.UUID, steward: str) -> c.Command:
    return c.TransferOwnership(
        type="ownership_transferred", partnership_id=pid, owner_unit="u", steward=steward, reason="reassignment"
    )


def published(app: Verkosto, settings: Settings) -> list[Delivered]:
    """Everything recorded, through the real relay and broker, in position order."""
    count = publish_all(app, settings)
    records = consume(settings, settings.events_topic, count)
    assert len(records) == count
    return sorted((Delivered(r.partition, r.offset, json.loads(r.value)) for r in records), key=lambda d: d.position)


def project(settings: Settings, events: list[Delivered], batch: int = 400) -> None:
    async def run() -> None:
        tracker = Tracker(settings.db_schema)
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            for start in range(0, len(events), batch):
                await tracker.apply(conn, all_projections(), events[start : start + batch])

    asyncio.run(run())


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "VERKOSTO_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def parked_rows(conn: psycopg.Connection[Any], rm: sql.Identifier) -> list[tuple[Any, ...]]:
    return conn.execute(
        sql.SQL(
            "SELECT aggregate_id, version, error_class, error, event, attempts FROM {}.parked "
            "ORDER BY aggregate_id, version"
        ).format(rm)
    ).fetchall()


def scrape(conn: psycopg.Connection[Any], base: str) -> dict[str, float]:
    samples = {}
    for family in HealthCollector(lambda: read_health(conn, base)).collect():
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_a_poison_event_is_parked_while_a_thousand_others_flow_then_retry_clears_it(
    app: Verkosto, settings: Settings
) -> None:
    url, base = settings.require_database_url(), settings.db_schema
    with psycopg.connect(url, autocommit=True) as conn:
        ownership = active_schema(conn, base, "ownership")
        # The read model refuses one steward: the event that names it cannot be applied.
        conn.execute(
            sql.SQL("ALTER TABLE {}.tenures ADD CONSTRAINT no_poison CHECK (steward <> {})").format(
                ownership, sql.Literal(POISON_STEWARD)
            )
        )
    poisoned = uuid.uuid4()
    others = [uuid.uuid4() for _ in range(100)]
    record(app, [opened(pid) for pid in others])
    record(app, [opened(poisoned), contact(poisoned)])
    record(app, [contact(pid) for pid in others for _ in range(9)])  # 1,000 other events in all
    record(app, [transfer(poisoned, POISON_STEWARD), contact(poisoned), transfer(poisoned, "bob")])
    events = published(app, settings)
    assert len(events) == 1005
    partitions = sorted({d.partition for d in events})
    assert len(partitions) > 1

    # One partition is held back: its lag shows although the others are done.
    stuck = partitions[0]
    held = [d for d in events if d.partition == stuck and d.position > 900]
    project(settings, [d for d in events if d not in held])
    with psycopg.connect(url) as conn:
        health = read_health(conn, base)
        assert health.errors == {}
        for name, figures in health.projections.items():
            assert figures.partitions[stuck][0] == len(held), name
            assert figures.lag == len(held) and figures.lag_seconds > 0
            assert all(figures.partitions[p] == (0, 0.0) for p in partitions if p != stuck)
    project(settings, held)

    with psycopg.connect(url) as conn:
        rows = parked_rows(conn, ownership)
        assert [(r[0], r[1], r[2]) for r in rows] == [
            (poisoned, 3, "CheckViolation"),
            (poisoned, 4, "ParkedEarlierEvent"),
            (poisoned, 5, "ParkedEarlierEvent"),
        ]
        assert "no_poison" in rows[0][3]
        assert json.loads(rows[0][4])["data"]["steward"] == POISON_STEWARD
        assert [t["steward"] for t in tenures(conn, ownership, poisoned)] == ["alice"]
        second = next(d for d in events if d.aggregate_id == poisoned and d.version == 2)
        assert applied(conn, ownership, poisoned) == (2, second.position)  # what came before it is applied
        assert all(len(tenures(conn, ownership, pid)) == 1 and applied(conn, ownership, pid)[0] == 10 for pid in others)
        # The other projections took every event, the poisoned aggregate's too.
        trust = active_schema(conn, base, "trust")
        assert parked_rows(conn, trust) == [] and applied(conn, trust, poisoned)[0] == 5
        positions = dict(
            conn.execute(sql.SQL("SELECT partition, kafka_offset FROM {}.positions").format(ownership)).fetchall()
        )
        assert positions == {p: max(d.offset for d in events if d.partition == p) for p in partitions}

        health = read_health(conn, base)
        assert health.projections["ownership"].parked == 3 and health.parked == 3
        assert all(f.lag == 0 for f in health.projections.values())  # parked is not lag: positions moved on
        assert "CheckViolation" in (health.projections["ownership"].first_parked or "")
        samples = scrape(conn, base)
    assert samples["verkosto_projection_parked_events{projection=ownership}"] == 3
    assert samples["verkosto_projection_parked_events{projection=trust}"] == 0
    assert samples["verkosto_projection_lag_events{projection=ownership}"] == 0
    assert samples["verkosto_health_up{check=parked:ownership}"] == 1

    status = cli(settings, "status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert "3 event(s) parked" in status.stdout and "CheckViolation" in status.stdout

    # Retrying before the fix changes nothing but the reason's bookkeeping.
    still = cli(settings, "projections", "retry", "ownership")
    assert still.returncode == 3 and "0 applied and cleared, 3 still parked" in still.stdout, (
        still.stdout + still.stderr
    )

    with psycopg.connect(url, autocommit=True) as conn:  # the fix
        conn.execute(sql.SQL("ALTER TABLE {}.tenures DROP CONSTRAINT no_poison").format(ownership))
    retried = cli(settings, "projections", "retry")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "ownership: 3 applied and cleared, 0 still parked" in retried.stdout
    assert cli(settings, "status").returncode == 0
    with psycopg.connect(url) as conn:
        assert parked_rows(conn, ownership) == []
        assert [t["steward"] for t in tenures(conn, ownership, poisoned)] == ["alice", POISON_STEWARD, "bob"]
        repaired = content_hash(conn, f"{base}__ownership_v1", by_name("ownership"))
    # The read model is what it would have been had nothing been parked: a rebuild of the
    # same events lands on the same content.
    with StoreHistory(url, base) as history:
        _, rebuilt = rebuild_sync(url, base, by_name("ownership"), lambda *_: None, source=history)
    with psycopg.connect(url) as conn:
        assert content_hash(conn, rebuilt, by_name("ownership")) == repaired


def test_an_old_event_with_a_nul_is_parked_and_the_others_flow(app: Verkosto, settings: Settings) -> None:
    url, base = settings.require_database_url(), settings.db_schema
    model = uuid.uuid4()
    record(app, [opened(model, name="Acme MARK Oy"), contact(model)])
    # An event stored before the API refused NULs: the same events under another id, with
    # a NUL in the partner's name, written by the application's recorder as it wrote them.
    poisoned = uuid.uuid4()
    with psycopg.connect(url) as conn:
        stored = conn.execute(
            sql.SQL(
                "SELECT originator_version, topic, state FROM {}.verkosto_events WHERE originator_id = %s "
                "ORDER BY originator_version"
            ).format(sql.Identifier(base)),
            (model,),
        ).fetchall()
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=poisoned,
                originator_version=version,
                topic=topic,
                state=bytes(state).replace(str(model).encode(), str(poisoned).encode()).replace(b"MARK", b"\\u0000"),
            )
            for version, topic, state in stored
        ]
    )
    others = [uuid.uuid4() for _ in range(30)]
    record(app, [opened(pid) for pid in others] + [contact(pid) for pid in others])
    events = published(app, settings)
    first = next(i for i, d in enumerate(events) if d.aggregate_id == poisoned)
    assert "\x00" in events[first].event["data"]["partner"]["name"]
    project(settings, events[:first])
    with psycopg.connect(url) as conn:  # how long the NUL event has waited is readable too
        assert _age_after(conn, sql.Identifier(base), events[first].position - 1) > 0
        health = read_health(conn, base)
        assert health.errors == {} and all(f.lag > 0 and f.lag_seconds > 0 for f in health.projections.values())
    project(settings, events[first:])

    with psycopg.connect(url) as conn:
        # They keep the partner's name: lifecycle in its partners rows, portfolio in jsonb.
        for name, names_of in (
            ("lifecycle", "SELECT partnership_id, partner_name FROM {}.partners"),
            ("portfolio", "SELECT aggregate_id, doc->>'partner_name' FROM {}.documents"),
        ):
            rm = active_schema(conn, base, name)
            rows = parked_rows(conn, rm)
            assert [(r[0], r[1], r[2]) for r in rows] == [
                (poisoned, 1, "UntranslatableCharacter"),
                (poisoned, 2, "ParkedEarlierEvent"),
            ], name
            assert json.loads(rows[0][4])["data"]["partner"]["name"] == "Acme \x00 Oy"  # kept exactly
            names: dict[Any, str] = dict(conn.execute(sql.SQL(names_of).format(rm)).fetchall())
            assert poisoned not in names and names[model] == "Acme MARK Oy", name
            assert all(names[pid] == "Acme Oy" for pid in others), name
        for name in ("ownership", "trust"):  # they do not keep the name: nothing to park
            rm = active_schema(conn, base, name)
            assert parked_rows(conn, rm) == [] and applied(conn, rm, poisoned)[0] == 2
        health = read_health(conn, base)
        assert {n: f.parked for n, f in health.projections.items()} == {
            "ownership": 0,
            "trust": 0,
            "lifecycle": 2,
            "portfolio": 2,
            "networks": 0,
            # They keep partner names too.
            "directory": 2,
            "graph": 2,
        }
        assert all(f.lag == 0 for f in health.projections.values()) and not health.ok()

    # No fix for this one: a retry keeps both parked, with the reason seen again.
    retried = cli(settings, "projections", "retry", "lifecycle")
    assert retried.returncode == 3 and "0 applied and cleared, 2 still parked" in retried.stdout
    with psycopg.connect(url) as conn:
        rows = parked_rows(conn, active_schema(conn, base, "lifecycle"))
        assert [(r[2], r[5]) for r in rows] == [("UntranslatableCharacter", 2), ("ParkedEarlierEvent", 2)]
