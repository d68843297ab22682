"""Projections on real PostgreSQL equal an offline fold of the same events, however the
bus interleaves and repeats them; a rebuild reproduces them exactly."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from contract import commands as c
from contract.events import Published, published_event
from domain import trust as model
from projections.catalog import all_projections, by_name
from projections.lifecycle import fold_partnership
from projections.rebuild import content_hash, rebuild_sync
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from projections.trust import happening
from services.application import Request, Verkosto
from services.replay import StoreHistory
from services.settings import Settings

T0 = datetime(2021, 3, 1, 9, tzinfo=UTC)
PARTNER = {"name": "Oulu Health Lab", "kind": "organisation", "roles": ["researcher", "customer"]}


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def story(app: Verkosto, seed: int) -> list[uuid.UUID]:
    rng = random.Random(seed)
    ids = []
    for n in range(4):
        pid = uuid.uuid4()
        ids.append(pid)
        requests: list[c.Command] = [
            c.OpenPartnership(
                partnership_id=pid,
                partner={**PARTNER, "name": f"Partner {n}"},  # type: ignore[arg-type]
                owner_unit="research",
                steward="alice",
                occurred_at=at(0),
            )
        ]
        day = 0
        for _ in range(25):
            day += rng.randint(5, 60)
            kind = rng.choice(["contact", "interest", "activity", "evaluation", "segment"])
            if kind == "contact":
                requests.append(
                    c.LogContact(
                        type="contact_logged",
                        partnership_id=pid,
                        channel="meeting",
                        direction=rng.choice(["inbound", "outbound"]),
                        participants=("alice",),
                        occurred_at=at(day),
                    )
                )
            elif kind == "interest":
                requests.append(
                    c.SignalInterest(
                        type="interest_signalled",
                        partnership_id=pid,
                        direction=rng.choice(["inbound", "outbound"]),
                        strength=rng.randint(1, 3),
                        occurred_at=at(day),
                    )
                )
            elif kind == "activity":
                requests.append(
                    c.RecordJointActivity(
                        type="joint_activity_recorded",
                        partnership_id=pid,
                        kind="pilot",
                        title="Pilot",
                        our_effort_hours=rng.randint(5, 80),
                        their_effort_hours=rng.randint(5, 80),
                        occurred_at=at(day),
                    )
                )
            elif kind == "evaluation":
                requests.append(
                    c.Evaluate(
                        type="evaluated",
                        partnership_id=pid,
                        factors={"fit": rng.choice([0.1, 1, 10]), "delivery": rng.choice([0.1, 1, 10])},
                        occurred_at=at(day),
                    )
                )
            else:
                requests.append(
                    c.Segment(
                        type="segmented",
                        partnership_id=pid,
                        now=rng.choice(["-", "+"]),
                        future=rng.choice(["+", "++"]),
                        occurred_at=at(day),
                    )
                )
        requests.append(
            c.TransferOwnership(
                type="ownership_transferred",
                partnership_id=pid,
                owner_unit="research",
                steward="bob",
                reason="steward_left",
                occurred_at=at(day + 1),
            )
        )
        requests.append(
            c.TransferOwnership(
                type="ownership_transferred",
                partnership_id=pid,
                owner_unit="innovation",
                steward="carol",
                reason="reassignment",
                occurred_at=at(day // 2),
            )
        )
        for command in requests:
            app.execute([Request(command, "tester", "api")])
    return ids


def published(app: Verkosto) -> list[dict[str, Any]]:
    notifications = app.recorder.select_notifications(start=0, limit=100_000, inclusive_of_start=False)
    return [published_event(n.topic, n.state, n.id, app.reveal) for n in notifications]


def deliver_like_a_bus(events: list[dict[str, Any]], seed: int) -> list[list[Delivered]]:
    """Three partitions by aggregate, interleaved at random, with one batch sent twice."""
    rng = random.Random(seed)
    partitions: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    for event in events:
        partitions[uuid.UUID(event["aggregate_id"]).int % 3].append(event)
    offsets = dict.fromkeys(partitions, 0)
    batches: list[list[Delivered]] = []
    while any(offsets[p] < len(partitions[p]) for p in partitions):
        batch = []
        for _ in range(rng.randint(1, 15)):
            live = [p for p in partitions if offsets[p] < len(partitions[p])]
            if not live:
                break
            p = rng.choice(live)
            batch.append(Delivered(p, offsets[p], partitions[p][offsets[p]]))
            offsets[p] += 1
        batches.append(batch)
        if rng.random() < 0.2:
            batches.append(batch)  # redelivered, as after a lost offset commit
    return batches


def apply_all(settings: Settings, batches: list[list[Delivered]]) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            tracker = Tracker(settings.db_schema)
            for batch in batches:
                await tracker.apply(conn, all_projections(), batch)

    asyncio.run(run())


def stewards_by_version(app: Verkosto, pid: str) -> dict[int, str]:
    """The current steward after each version, as the domain aggregate knows it."""
    aggregate, stewards = None, {}
    for domain_event in app.events.get(uuid.UUID(pid)):
        aggregate = domain_event.mutate(aggregate)
        stewards[aggregate.version] = aggregate.steward  # type: ignore[union-attr]
    return stewards


def offline_trust(app: Verkosto, events: list[dict[str, Any]], pid: str) -> list[dict[str, Any]]:
    stewards = stewards_by_version(app, pid)
    state, points = None, []
    for event in (e for e in events if e["aggregate_id"] == pid):
        if event["type"] == "partnership_opened":
            state = model.initial(happening(Published.of(event)))  # type: ignore[arg-type]
        else:
            changed = stewards[event["version"]] != stewards[event["version"] - 1]
            seen = happening(Published.of(event), steward_changed=changed)
            if seen is None:
                continue
            state = model.step(state, seen)  # type: ignore[arg-type]
        points.append(model.point(state, (event["event_id"],)).to_dict())  # type: ignore[arg-type]
    return points


def test_projections_equal_an_offline_fold(app: Verkosto, settings: Settings) -> None:
    ids = story(app, seed=7)
    events = published(app)
    apply_all(settings, deliver_like_a_bus(events, seed=11))
    with psycopg.connect(settings.require_database_url()) as conn:
        trust_rm = active_schema(conn, settings.db_schema, "trust")
        lifecycle_rm = active_schema(conn, settings.db_schema, "lifecycle")
        lifecycle = lifecycle_rm.as_string(conn)
        # The lifecycle read model keeps rows only: no document rewritten on every event.
        assert "documents" not in by_name("lifecycle").tables

        def facts(query: str, pid: str) -> list[list[Any]]:
            rows = conn.execute(query.format(rm=lifecycle), (pid,)).fetchall()
            return [[v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in r] for r in rows]

        for pid in map(str, ids):
            rows = conn.execute(
                "SELECT at, trust, mutual_interest, attention, phase, moved_by "
                f"FROM {trust_rm.as_string(conn)}.trust_points "
                "WHERE partnership_id = %s ORDER BY version",
                (pid,),
            ).fetchall()
            expected = offline_trust(app, events, pid)
            assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
                (
                    datetime.fromisoformat(p["at"]) if isinstance(p["at"], str) else p["at"],
                    p["trust"],
                    p["mutual_interest"],
                    p["attention"],
                    p["phase"],
                    list(p["moved_by"]),
                )
                for p in expected
            ]
            folded = None
            for event in (e for e in events if e["aggregate_id"] == pid):
                folded = fold_partnership(folded, Published.of(event))
            assert folded is not None
            ordered = "FROM {rm}.%s WHERE partnership_id = %%s ORDER BY at, version"
            assert facts("SELECT partner_name, opened_at FROM {rm}.partners WHERE partnership_id = %s", pid) == [
                [folded["partner_name"], folded["opened_at"]]
            ]
            assert (
                facts("SELECT at, owner_unit, steward, version " + ordered % "tenure_facts", pid) == folded["tenures"]
            )
            assert facts("SELECT at, version " + ordered % "contacts", pid) == folded["contacts"]
            assert (
                facts("SELECT at, previous, stage, reason, version " + ordered % "transitions", pid)
                == folded["transitions"]
            )
            assert facts("SELECT at, now, future, version " + ordered % "segments", pid) == folded["segments"]
            assert (
                facts("SELECT at, our_hours, their_hours, version " + ordered % "activities", pid)
                == folded["activities"]
            )
            assert facts("SELECT at, outcome, version " + ordered % "evaluations", pid) == folded["evaluations"]
            assert facts("SELECT at, inbound, version " + ordered % "interests", pid) == folded["interests"]
            assert facts("SELECT at, roles, version " + ordered % "role_facts", pid) == folded["roles"]
            assert folded["tenures"][-1][2] == "bob"  # valid time: bob's tenure starts last


def test_a_rebuild_reproduces_the_live_read_models_exactly(app: Verkosto, settings: Settings) -> None:
    story(app, seed=3)
    apply_all(settings, deliver_like_a_bus(published(app), seed=5))
    url = settings.require_database_url()
    for projection in all_projections():
        with psycopg.connect(url) as conn:
            live = active_schema(conn, settings.db_schema, projection.name).as_string(conn).strip('"')
            live_hash = content_hash(conn, live, projection)
        seen_during: list[str] = []

        def watch(_reached: int, _last: int, name: str = projection.name) -> None:
            with psycopg.connect(url) as conn:
                seen_during.append(active_schema(conn, settings.db_schema, name).as_string(conn).strip('"'))

        with StoreHistory(url, settings.db_schema) as history:
            _, first = rebuild_sync(url, settings.db_schema, projection, watch, source=history)
            _, second = rebuild_sync(url, settings.db_schema, projection, lambda *_: None, source=history)
        with psycopg.connect(url) as conn:
            assert content_hash(conn, first, projection) == live_hash, projection.name
            assert content_hash(conn, second, projection) == live_hash, projection.name
            assert active_schema(conn, settings.db_schema, projection.name).as_string(conn).strip('"') == second
        assert seen_during and set(seen_during) == {live}  # the API kept reading the old version


def test_a_changed_model_version_is_recorded_on_every_row(app: Verkosto, settings: Settings) -> None:
    story(app, seed=1)
    url = settings.require_database_url()
    with StoreHistory(url, settings.db_schema) as history:
        rebuild_sync(url, settings.db_schema, by_name("trust"), lambda *_: None, source=history)
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "trust").as_string(conn)
        versions = conn.execute(f"SELECT DISTINCT model_version FROM {rm}.trust_points").fetchall()
    assert versions == [(model.TRUST_MODEL_VERSION,)]
