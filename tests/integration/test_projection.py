"""Read models on real PostgreSQL: exactly-once application and the ownership timeline."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from projections.catalog import all_projections
from projections.queries.ownership import tenure_at, tenures
from projections.queries.reading import applied
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from services.settings import Settings

T0 = datetime(2023, 1, 1, tzinfo=UTC)


def event(pid: uuid.UUID, version: int, position: int, kind: str, days: int, **data: Any) -> dict[str, Any]:
    return {
        "aggregate_id": str(pid),
        "aggregate_type": "partnership",
        "event_id": f"{pid}:{version}",
        "version": version,
        "position": position,
        "type": kind,
        "occurred_at": (T0 + timedelta(days=days)).isoformat(),
        "recorded_at": (T0 + timedelta(days=400 + position)).isoformat(),
        "actor": "tester",
        "source": "api",
        "on_behalf_of": None,
        "command_id": None,
        "data": data,
    }


def story(pid: uuid.UUID) -> list[Delivered]:
    events = [
        event(
            pid,
            1,
            1,
            "partnership_opened",
            0,
            owner_unit="research",
            steward="alice",
            partner={"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]},
        ),
        event(pid, 2, 2, "contact_logged", 5, channel="call", direction="inbound", participants=["alice"]),
        event(pid, 3, 3, "ownership_transferred", 150, owner_unit="research", steward="bob", reason="steward_left"),
        # Recorded later, took effect earlier: a back-dated transfer.
        event(pid, 4, 4, "ownership_transferred", 90, owner_unit="innovation", steward="carol", reason="reassignment"),
    ]
    return [Delivered(0, offset, e) for offset, e in enumerate(events)]


def rm(conn: psycopg.Connection[Any], settings: Settings) -> Any:
    return active_schema(conn, settings.db_schema, "ownership")


def apply(settings: Settings, batch: list[Delivered]) -> int:
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            return await Tracker(settings.db_schema).apply(conn, all_projections(), batch)

    return asyncio.run(run())


def test_redelivered_events_are_applied_once(settings: Settings) -> None:
    pid = uuid.uuid4()
    batch = story(pid)
    every = len(all_projections())
    assert apply(settings, batch[:2]) == 2 * every
    assert apply(settings, batch) == 2 * every  # the first two again, plus two new
    assert apply(settings, batch) == 0
    with psycopg.connect(settings.require_database_url()) as conn:
        assert len(tenures(conn, rm(conn, settings), pid)) == 3
        assert applied(conn, rm(conn, settings), pid) == (4, 4)


def test_the_timeline_answers_who_owned_it_when(settings: Settings) -> None:
    pid = uuid.uuid4()
    apply(settings, story(pid))
    with psycopg.connect(settings.require_database_url()) as conn:
        timeline = tenures(conn, rm(conn, settings), pid)
    assert [(t["steward"], t["valid_until"]) for t in timeline] == [
        ("alice", T0 + timedelta(days=90)),
        ("carol", T0 + timedelta(days=150)),
        ("bob", None),
    ]

    def steward_at(days: int) -> str | None:
        tenure = tenure_at(timeline, T0 + timedelta(days=days))
        return tenure["steward"] if tenure else None

    assert [steward_at(d) for d in (-1, 0, 89, 90, 149, 150, 1000)] == [
        None,
        "alice",
        "alice",
        "carol",
        "carol",
        "bob",
        "bob",
    ]


def test_a_malformed_event_is_parked_with_the_rest_of_its_aggregate(settings: Settings) -> None:
    pid, other = uuid.uuid4(), uuid.uuid4()
    broken = story(pid)
    broken[2] = Delivered(0, 2, {**broken[2].event, "data": {}})  # owner fields missing
    fine = [Delivered(1, d.offset, {**d.event, "position": d.position + 10}) for d in story(other)]
    assert apply(settings, broken + fine) > 0  # the batch does not fail
    with psycopg.connect(settings.require_database_url()) as conn:
        ownership = rm(conn, settings)
        assert [t["version"] for t in tenures(conn, ownership, pid)] == [1]  # before the bad one
        assert applied(conn, ownership, pid) == (2, 2)
        assert len(tenures(conn, ownership, other)) == 3  # another aggregate flows
        parked = conn.execute(
            psycopg.sql.SQL(
                "SELECT version, error_class, partition, kafka_offset FROM {}.parked ORDER BY version"
            ).format(ownership)
        ).fetchall()
        positions = conn.execute(
            psycopg.sql.SQL("SELECT partition, kafka_offset FROM {}.positions ORDER BY partition").format(ownership)
        ).fetchall()
    assert parked == [(3, "ValidationError", 0, 2), (4, "ParkedEarlierEvent", 0, 3)]  # the later one waits behind it
    assert positions == [(0, 3), (1, 3)]  # and the positions moved past both


def test_an_event_type_this_release_does_not_know_stops_nothing(settings: Settings) -> None:
    # A producer newer than the projector: the unknown event is remembered as applied by
    # every projection, decoded by none, and the aggregate's later events still fold.
    pid = uuid.uuid4()
    events = story(pid)
    newer = Delivered(0, 2, {**events[2].event, "type": "something_new", "data": {"whatever": 1}})
    later = [
        Delivered(0, d.offset + 1, {**d.event, "version": d.version + 1, "position": d.position + 1})
        for d in events[2:]
    ]
    apply(settings, [*events[:2], newer, *later])
    with psycopg.connect(settings.require_database_url()) as conn:
        ownership = rm(conn, settings)
        assert applied(conn, ownership, pid) == (5, 5)
        assert [t["steward"] for t in tenures(conn, ownership, pid)] == ["alice", "carol", "bob"]
        parked = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}.parked").format(ownership)).fetchone()
    assert parked == (0,)
