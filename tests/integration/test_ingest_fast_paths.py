"""The ingest's fast paths change no answer: committed aggregates are cached only when
they hold what was stored, and the recorder's own audit meta rows equal what the
statement trigger writes for events recorded around it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from contract import commands as c
from domain.partnership import Partnership
from services.application import Request, Verkosto
from services.privacy import ERASED, erase
from services.settings import Settings

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def request(command: c.Command) -> Request:
    return Request(command, actor="tester", source="kafka")


def opening(pid: uuid.UUID) -> Any:
    return c.OpenPartnership(
        partnership_id=pid,
        partner={"name": "Acme Oy", "kind": "organisation", "roles": ["user"]},
        owner_unit="research",
        steward="Aino Aalto",
        occurred_at=T0,
    )


def contact(pid: uuid.UUID, days: int, who: str) -> Any:
    return c.LogContact(
        type="contact_logged",
        partnership_id=pid,
        channel="call",
        direction="inbound",
        participants=(who,),
        occurred_at=T0 + timedelta(days=days),
    )


def replayed(app: Verkosto, pid: uuid.UUID) -> Any:
    aggregate = None
    for event in app.domain_events(pid):
        aggregate = event.mutate(aggregate)
    return aggregate


def test_a_committed_aggregate_is_cached_and_equals_its_replay(app: Verkosto) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    (outcome,) = app.execute([request(contact(pid, 1, "Bertta Berg"))])
    cached = app.cache.get(pid)
    assert cached is not None and cached.aggregate.version == outcome.version == 2  # type: ignore[union-attr]
    assert vars(cached.aggregate) == vars(replayed(app, pid))


def test_a_command_naming_an_erased_person_is_not_cached_in_plaintext(app: Verkosto, settings: Settings) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    app.get(pid, Partnership)
    erase(settings.require_database_url(), settings.db_schema, "person:Cecilia Cruz")
    transfer = c.TransferOwnership(
        type="ownership_transferred",
        partnership_id=pid,
        owner_unit="research",
        steward="Cecilia Cruz",
        reason="steward_left",
        occurred_at=T0 + timedelta(days=2),
    )
    app.execute([request(transfer)])  # the new steward is stored as ERASED
    cached = app.cache.get(pid)
    assert cached is not None and cached.aggregate.version == 1  # the decided state was left out
    loaded = app.get(pid, Partnership)
    assert loaded.version == 2 and loaded.steward == ERASED
    assert vars(loaded) == vars(replayed(app, pid))


def meta_rows(settings: Settings) -> dict[int, tuple[Any, ...]]:
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = conn.execute(
            sql.SQL("SELECT notification_id, actor, source, occurred_at, recorded_at FROM {}.event_meta").format(
                sql.Identifier(settings.db_schema)
            )
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_the_recorder_writes_the_meta_rows_the_trigger_would(app: Verkosto, settings: Settings) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid)), request(contact(pid, 1, "Bertta Berg"))])
    schema = sql.Identifier(settings.db_schema)
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        events = conn.execute(
            sql.SQL("SELECT notification_id, topic, state FROM {}.verkosto_events WHERE originator_id = %s").format(
                schema
            ),
            (pid,),
        ).fetchall()
        by_recorder = meta_rows(settings)
        assert {n for n, _, _ in events} <= set(by_recorder)
        # The same events written around the recorder get their rows from the trigger.
        copies = []
        for _, topic, state in events:
            document = json.loads(bytes(state))
            document["originator_id"] = str(uuid.uuid4())
            copies.append((document["originator_id"], topic, json.dumps(document).encode()))
        ids = [
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.verkosto_events (originator_id, originator_version, topic, state) "
                    "VALUES (%s, 1, %s, %s) RETURNING notification_id"
                ).format(schema),
                copy,
            ).fetchone()[0]  # type: ignore[index]
            for copy in copies
        ]
    by_trigger = meta_rows(settings)
    for (original, _, _), copy in zip(events, ids, strict=True):
        assert by_recorder[original] == by_trigger[copy]
        assert by_recorder[original][0] == "tester" and by_recorder[original][1] == "kafka"
