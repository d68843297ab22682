"""services/store.py answers what the scattered queries it replaced answered, on a small
story, whatever row factory the caller's connection has."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contract import commands as c
from services.application import Accepted, Request, Verkosto
from services.audit.chain import verify
from services.audit.search import EventQuery, search
from services.privacy import KeyStore, subject_hash, unseal_event
from services.replay import StoreHistory
from services.settings import Settings
from services.store import EventStore
from services.store_search import SearchStore

STEWARD = "Aino Aaltonen"
PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def story(app: Verkosto) -> tuple[uuid.UUID, uuid.UUID]:
    """Positions 1-3 a partnership (opened, two contacts), 4 a network."""
    pid = uuid.uuid4()
    app.execute(
        [
            Request(
                c.OpenPartnership(
                    partnership_id=pid,
                    partner=PARTNER,
                    owner_unit="u",  # type: ignore[arg-type]
                    steward=STEWARD,
                    command_id="open-1",
                ),
                "crm",
                "api",
            )
        ]
    )
    for n in (1, 2):
        app.execute(
            [
                Request(
                    c.LogContact(
                        type="contact_logged",
                        partnership_id=pid,
                        channel="call",
                        direction="inbound",
                        participants=(STEWARD,),
                        command_id=f"contact-{n}",
                    ),
                    "calendar",
                    "kafka",
                )
            ]
        )
    (joined,) = app.execute(
        [
            Request(
                c.JoinNetwork(
                    name="Forum",
                    purposes=("influence",),
                    role="member",  # type: ignore[arg-type]
                    activity="active",
                    owner_unit="research",
                    steward="alice",
                ),
                "crm",
                "api",
            )
        ]
    )
    assert isinstance(joined, Accepted)
    return pid, joined.aggregate_id


def before(settings: Settings, query: str, params: Any = None) -> list[dict[str, Any]]:
    """What the queries this adapter replaced returned (EVENTS for the events table)."""
    table = f'"{settings.db_schema}".verkosto_events'
    with psycopg.connect(settings.require_database_url(), row_factory=dict_row) as conn:
        return conn.execute(
            query.replace("EVENTS", table).replace("SCHEMA", f'"{settings.db_schema}"'),  # type: ignore[arg-type]
            params,
        ).fetchall()


def test_event_queries_answer_as_before(app: Verkosto, settings: Settings) -> None:
    pid, nid = story(app)
    store = EventStore(settings.db_schema)
    # A connection with psycopg's default tuple rows: the adapter still answers in dicts.
    with psycopg.connect(settings.require_database_url()) as conn:
        events = store.events_of(conn, [nid, pid])
        assert events == before(
            settings,
            "SELECT originator_id, originator_version, topic, state, notification_id "
            "FROM EVENTS WHERE originator_id = ANY(%s) ORDER BY originator_id, "
            "originator_version",
            ([nid, pid],),
        )
        assert [(e["originator_id"], e["originator_version"]) for e in events if e["originator_id"] == pid] == [
            (pid, 1),
            (pid, 2),
            (pid, 3),
        ]
        opened = next(e for e in events if e["originator_id"] == pid)
        assert (
            store.first_events(conn, pid)
            == [{"topic": opened["topic"], "state": opened["state"]}]
            == before(
                settings, "SELECT topic, state FROM EVENTS WHERE originator_id = %s AND originator_version = 1", (pid,)
            )
        )
        assert store.first_events(conn, uuid.uuid4()) == []

        assert store.event_at(conn, 2) == {"originator_id": pid, "originator_version": 2}
        assert store.event_at(conn, 99) is None
        assert app.event_at(4) == (nid, 1) and app.event_at(99) is None

        page = store.events_after(conn, 1, limit=2)
        assert page == before(
            settings,
            "SELECT notification_id, topic, state FROM EVENTS WHERE notification_id > 1 "
            "ORDER BY notification_id LIMIT 2",
        )
        assert [r["notification_id"] for r in page] == [2, 3]
        assert [r["notification_id"] for r in store.events_after(conn, 0, limit=10, until=2)] == [1, 2]
        assert store.events_after(conn, 4, limit=10) == []

        assert store.last_position(conn) == store.count(conn) == 4
        (fourth,) = before(settings, "SELECT state FROM EVENTS WHERE notification_id = 4")
        assert store.state_after(conn, 3) == bytes(fourth["state"])
        assert json.loads(store.state_after(conn, 0) or b"")["meta"]["actor"] == "crm"
        assert store.state_after(conn, 4) is None

        recorded = store.commands(conn, ["open-1", "contact-2", "never-sent"])
        assert sorted(recorded, key=lambda r: r["notification_id"]) == [
            {"command_id": "open-1", "aggregate_id": pid, "version": 1, "notification_id": 1},
            {"command_id": "contact-2", "aggregate_id": pid, "version": 3, "notification_id": 3},
        ]
    assert app.find_commands(["contact-1"]) == {"contact-1": Accepted(pid, 2, 2, True)}
    assert [r["notification_id"] for r in app.stored_events([pid])] == [1, 2, 3]

    searching = SearchStore(settings.db_schema)
    with psycopg.connect(settings.require_database_url()) as conn:
        found = searching.search(conn, after=0, limit=10, actor="calendar", source="kafka")
        assert [r["notification_id"] for r in found] == [2, 3]
        assert [e["position"] for e in search(conn, settings.db_schema, EventQuery(actor="calendar"))] == [2, 3]
        assert [r["notification_id"] for r in searching.search(conn, after=2, limit=1, aggregate_id=pid)] == [3]


def test_the_chain_and_the_keys(app: Verkosto, settings: Settings) -> None:
    story(app)
    store = EventStore(settings.db_schema)
    with psycopg.connect(settings.require_database_url()) as conn:
        verdict = verify(conn, settings.db_schema)
        head = store.chain_head(conn)
        assert verdict.ok and head == (4, bytes.fromhex(verdict.head_hash))
        with conn.transaction():
            walked = list(store.chain_walk(conn))
        assert [(r["position"], r["has_event"], r["has_link"]) for r in walked] == [
            (n, True, True) for n in (1, 2, 3, 4)
        ]
        assert [r["previous"] for r in walked] == [0, 1, 2, 3]
        assert bytes(walked[-1]["hash"]) == head[1]  # type: ignore[index]
        with conn.transaction():
            assert store.lock_unchained(conn) == []  # every event was chained as it was recorded

    digest = subject_hash(f"person:{STEWARD}")
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        key = store.key(conn, digest)
        assert key is not None and len(key) == 32  # created when the story sealed the steward's name
        store.create_key(conn, digest, bytes(32))
        assert store.key(conn, digest) == key  # an existing key is never replaced
        assert store.key(conn, subject_hash("person:nobody")) is None
        store.erase_key(conn, digest)
        assert store.key(conn, digest) is None
        store.create_key(conn, digest, bytes(32))
        assert store.key(conn, digest) is None  # an erased subject stays erased


def test_a_rebuilds_history_is_the_store_revealed(app: Verkosto, settings: Settings) -> None:
    story(app)
    with StoreHistory(settings.require_database_url(), settings.db_schema) as history:
        assert history.last_position() == 4
        page = history.events_after(0, 3, 2)
        assert [e["position"] for e in page] == [1, 2]
        assert page[0]["data"]["steward"] == STEWARD  # read models hold what was revealed
        assert [e["position"] for e in history.events_after(2, None, 10)] == [3, 4]
    keys = KeyStore(settings.require_database_url(), settings.db_schema)
    try:
        with psycopg.connect(settings.require_database_url()) as conn:
            audit = search(conn, settings.db_schema, EventQuery(), reveal=lambda t, s: unseal_event(t, s, keys))
    finally:
        keys.close()
    with StoreHistory(settings.require_database_url(), settings.db_schema) as history:
        assert history.events_after(0, None, 10) == audit


def test_a_rebuilds_page_looks_its_subjects_keys_up_together(app: Verkosto, settings: Settings) -> None:
    story(app)  # two people: the partnership's steward (also a participant) and the network's
    with StoreHistory(settings.require_database_url(), settings.db_schema) as history:
        history.events_after(0, None, 10)
        subjects = {subject_hash(f"person:{name}") for name in (STEWARD, "alice")}
        assert subjects <= set(history.keys.cache)
        # One lookup stamps every key it found with the same moment; a lookup per subject
        # as each event is revealed would not.
        assert len({at for at, _ in history.keys.cache.values()}) == 1
