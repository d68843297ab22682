"""Hostile input at every door: nothing a client sends may stop a later step.

Every string field of every command, over HTTP and over Kafka, is sent once with a NUL
character and once with a lone surrogate (neither fits PostgreSQL ``text``/``jsonb``):
each must be refused at the edge (422 naming the field, or the dead-letter topic with a
reason), nothing may be stored, and the system must carry on. Oversize, deeply nested,
malformed and loosely typed bodies get bounded, documented refusals; a command the
database itself refuses is isolated from its batch and dead-lettered alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from services.api.app import create_app
from services.application import Verkosto
from services.auth import issue_token
from services.db import connect
from services.settings import Settings
from tests.kafka_helpers import RunningIngest, command, consume, header, produce

NUL = "a\u0000b"
SURROGATE = "a\ud800b"
POISONS = {"nul": NUL, "surrogate": SURROGATE}

PARTNERSHIP = uuid.UUID("00000000-0000-4000-8000-00000000aaaa")
NETWORK = uuid.UUID("00000000-0000-4000-8000-00000000bbbb")
META = {"command_id": "cmd-1", "on_behalf_of": "bob"}

OPEN = {
    "type": "partnership_opened",
    "partner": {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]},
    "owner_unit": "research",
    "steward": "alice",
    **META,
}
PARTNERSHIP_EVENTS = [
    {
        "type": "contact_logged",
        "channel": "meeting",
        "direction": "inbound",
        "participants": ["alice", "carl"],
        "effort_minutes": 30,
        "summary": "kick-off",
        **META,
    },
    {"type": "interest_signalled", "direction": "outbound", "strength": 2, "evidence": "asked for a demo", **META},
    {
        "type": "joint_activity_recorded",
        "kind": "workshop",
        "title": "Design day",
        "our_effort_hours": 4,
        "their_effort_hours": 3,
        "outcome": "a plan",
        **META,
    },
    {"type": "evaluated", "factors": {"fit": 10, "reach": 1}, "note": "good", **META},
    {"type": "segmented", "now": "+", "future": "++", "rationale": "growing", **META},
    {"type": "ownership_transferred", "owner_unit": "sales", "steward": "dora", "reason": "reassignment", **META},
    {"type": "stage_changed", "stage": "prioritise", "reason": "fit", "note": "ok", **META},
]
JOIN = {
    "type": "network_joined",
    "name": "Data Alliance",
    "purposes": ["influence"],
    "role": "member",
    "activity": "active",
    "best_before": "2030-01-01",
    "owner_unit": "research",
    "steward": "dora",
    **META,
}
NETWORK_EVENTS = [
    {"type": "member_added", "partnership_id": str(PARTNERSHIP), **META},
    {"type": "member_removed", "partnership_id": str(PARTNERSHIP), **META},
    {"type": "network_activated", "need": "a funding call", **META},
    {"type": "network_parked", **META},
    {"type": "network_contribution_logged", "our_effort_hours": 2, "outcome": "minutes", **META},
    {"type": "network_evaluated", "factors": {"value": 1}, **META},
    {
        "type": "member_contribution_logged",
        "partnership_id": str(PARTNERSHIP),
        "effort_hours": 2,
        "outcome": "adequate",
        **META,
    },
    {"type": "need_met", "outcome": "met", "note": "funded", **META},
    {"type": "best_before_revised", "best_before": "2031-01-01", "reason": "extended", **META},
    {"type": "network_ownership_transferred", "owner_unit": "sales", "steward": "eino", "reason": "other", **META},
    {"type": "network_left", "reason": "other", **META},
]
ORGANISATION_EVENTS = [
    {"type": "criteria_defined", "criteria": [{"name": "fit", "description": "aims match"}], **META},
]


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every place a string sits: ("leaf", path) for values, ("key", path) for dict keys."""
    if isinstance(value, dict):
        for key, child in value.items():
            if path and path[-1] == "factors":
                yield path + (key,), "key"
            yield from string_paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from string_paths(child, path + (index,))
    elif isinstance(value, str):
        yield path, "leaf"


def poisoned(body: dict[str, Any], path: tuple[Any, ...], where: str, poison: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if where == "key":
        parent[poison] = parent.pop(last)
    else:
        parent[last] = poison
    return copy


def cases() -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(HTTP path, label, poisoned body, poisoned field) for every string of every command."""
    targets = [("/v1/partnerships", OPEN), ("/v1/networks", JOIN)]
    targets += [(f"/v1/partnerships/{PARTNERSHIP}/events", body) for body in PARTNERSHIP_EVENTS]
    targets += [(f"/v1/networks/{NETWORK}/events", body) for body in NETWORK_EVENTS]
    targets += [("/v1/organisation/events", body) for body in ORGANISATION_EVENTS]
    for url, body in targets:
        for path, where in string_paths(body):
            for name, poison in POISONS.items():
                label = f"{body['type']}:{'.'.join(map(str, path))}:{where}:{name}"
                yield url, label, poisoned(body, path, where, poison), str(path[0])


def stored_events(settings: Settings) -> int:
    with connect(settings.require_database_url()) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) AS n FROM {}.verkosto_events").format(sql.Identifier(settings.db_schema))
        ).fetchone()
    assert row is not None
    return int(row["n"])


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "integrator", ["admin"])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as test_client:
        # The aggregates the event commands address, so only the poison can be refused.
        assert (
            test_client.post(
                "/v1/partnerships", json={**OPEN, "partnership_id": str(PARTNERSHIP), "command_id": None}
            ).status_code
            == 201
        )
        assert (
            test_client.post("/v1/networks", json={**JOIN, "network_id": str(NETWORK), "command_id": None}).status_code
            == 201
        )
        yield test_client


def send(client: TestClient, url: str, body: Any, **headers: str) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \ud800, as any client library would.
    return client.post(url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers})


def test_every_string_of_every_command_refuses_nul_and_lone_surrogates_over_http(
    client: TestClient, settings: Settings
) -> None:
    before = stored_events(settings)
    refused = 0
    for url, label, body, field in cases():
        response = send(client, url, body)
        assert response.status_code == 422, (label, response.status_code, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "validation_failed", label
        # A bad discriminator is reported on the body as a whole.
        assert field in problem["field"] or (field == "type" and problem["field"] == "body"), label
        refused += 1
    assert refused > 100  # every command type, every string, both poisons
    assert stored_events(settings) == before


def test_nul_in_a_path_or_query_is_refused_not_a_server_error(client: TestClient) -> None:
    for url, field in [
        ("/v1/audit/events?actor=a%00b", "query.actor"),
        ("/v1/audit/stewards/a%00b", "path"),
        (f"/v1/partnerships/{PARTNERSHIP}/owners?known_at=2024-01-01T00:00:00%00Z", "query.known_at"),
    ]:
        response = client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["field"] == field


def test_bodies_are_bounded_before_they_are_read(client: TestClient, settings: Settings) -> None:
    big = b'{"x": "' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    for headers in ({}, {"Authorization": ""}):  # with a token and without one
        response = client.post("/v1/partnerships", content=big, headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    response = client.post("/v1/partnerships", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413

    deep = "[" * 10_000 + "]" * 10_000
    response = client.post("/v1/partnerships", content=deep.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "deeper" in response.json()["detail"]

    wide = {**OPEN, **{f"unknown_{i}": i for i in range(20_000)}}
    response = send(client, "/v1/partnerships", wide)
    assert response.status_code == 422
    assert len(response.content) < 10_000  # the error stays small


def test_malformed_json_is_a_validation_failure(client: TestClient) -> None:
    for raw in (b'{"type": ', b"\xff\xfe", b"[1, 2,]", b"NaN-ish"):
        response = client.post("/v1/partnerships", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (raw, response.text)
        assert response.json()["code"] == "validation_failed"
        assert response.json()["field"] == "body"


def test_numbers_are_never_guessed_from_strings_or_booleans(client: TestClient, settings: Settings) -> None:
    before = stored_events(settings)
    url = f"/v1/partnerships/{PARTNERSHIP}/events"
    contact = {key: value for key, value in PARTNERSHIP_EVENTS[0].items() if key != "command_id"}
    for body, field in [
        ({**contact, "expected_version": "1"}, "expected_version"),
        ({**contact, "expected_version": True}, "expected_version"),
        ({**contact, "effort_minutes": "10"}, "effort_minutes"),
        ({**PARTNERSHIP_EVENTS[1], "command_id": None, "strength": "2"}, "strength"),
        ({**PARTNERSHIP_EVENTS[2], "command_id": None, "our_effort_hours": "4"}, "our_effort_hours"),
        ({**PARTNERSHIP_EVENTS[3], "command_id": None, "factors": {"fit": True}}, "factors"),
    ]:
        response = send(client, url, body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["field"]
    assert stored_events(settings) == before
    # The strict types still take what JSON means: an integer where a float is expected.
    assert send(client, url, {**contact, "effort_minutes": 10}).status_code == 201


def on_kafka(body: dict[str, Any]) -> dict[str, Any]:
    """The Kafka form of a command: the aggregate's id in the body (the organisation has one,
    well known: its commands name none)."""
    if body["type"] in {b["type"] for b in ORGANISATION_EVENTS}:
        return body
    if body["type"] in ("partnership_opened",) or body["type"] in {b["type"] for b in PARTNERSHIP_EVENTS}:
        return {"partnership_id": str(uuid.uuid4() if body["type"] == "partnership_opened" else PARTNERSHIP), **body}
    return {"network_id": str(uuid.uuid4() if body["type"] == "network_joined" else NETWORK), **body}


def raw_command(body: dict[str, Any], actor: str = "crm-sync") -> tuple[bytes, bytes]:
    """Like an integrator's producer would send it: JSON with escapes, keyed by a clean id."""
    return b"poisoned", json.dumps({**body, "actor": actor}).encode()


def test_every_poisoned_kafka_command_is_dead_lettered_and_the_ingest_carries_on(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    setup = [
        command({**OPEN, "partnership_id": str(PARTNERSHIP), "command_id": "setup-p"}),
        command({**JOIN, "network_id": str(NETWORK), "command_id": "setup-n"}),
    ]
    produce(settings, setup)
    running.until(lambda: running.ingest.recorded == 2)
    before = stored_events(settings)

    poison = [raw_command(on_kafka(body)) for _, _, body, _ in cases()]
    poison += [raw_command(on_kafka(OPEN), actor=p) for p in POISONS.values()]
    after = command({**PARTNERSHIP_EVENTS[0], "partnership_id": str(PARTNERSHIP), "command_id": "after-poison"})
    produce(settings, [*poison, after])
    running.until(lambda: running.ingest.recorded == 3 and running.ingest.dead_lettered >= len(poison))

    assert stored_events(settings) == before + 1  # only the good command after the poison
    letters = consume(settings, settings.dlq_topic, len(poison))
    assert len(letters) == len(poison)
    assert {header(r, "reason") for r in letters} == {"invalid_command"}
    for record in letters:
        assert {"reason", "detail", "original_topic", "original_partition", "original_offset", "failed_at"} <= {
            name for name, _ in record.headers
        }


def refuse_poison_command_ids(settings: Settings) -> None:
    """A test-only trigger: the database refuses any command id starting "poison" the way
    it refuses an untranslatable character (the contract's own validation stays as is)."""
    schema = sql.Identifier(settings.db_schema)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {s}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.command_id LIKE 'poison%%' THEN "
                "RAISE EXCEPTION 'refused by the database' USING ERRCODE = '22P05'; END IF; "
                "RETURN NEW; END $$"
            ).format(s=schema)
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON {s}.command_log "
                "FOR EACH ROW EXECUTE FUNCTION {s}.refuse_poison()"
            ).format(s=schema)
        )


def test_a_command_the_database_refuses_is_isolated_and_the_rest_are_recorded(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    refuse_poison_command_ids(settings)

    ids = [uuid.uuid4() for _ in range(40)]
    messages = [command({**OPEN, "partnership_id": str(i), "command_id": f"good-{n}"}) for n, i in enumerate(ids)]
    messages.insert(17, command({**OPEN, "partnership_id": str(uuid.uuid4()), "command_id": "poison-1"}))
    produce(settings, messages)
    running.until(lambda: running.ingest.recorded == 40 and running.ingest.dead_lettered == 1)

    (letter,) = consume(settings, settings.dlq_topic, 1)
    assert header(letter, "reason") == "unstorable"
    assert "refused by the database" in header(letter, "detail")
    assert json.loads(letter.value)["command_id"] == "poison-1"
    assert stored_events(settings) == 40
    for pid in ids:
        assert app.domain_events(pid), f"{pid} was not recorded"


def test_audit_search_works_over_an_event_stored_before_the_edge_refused_nul(
    client: TestClient, settings: Settings
) -> None:
    # As an older release could have stored it: a copy of a real event, with a NUL in the
    # partner's name and in the actor, written straight into the event store.
    schema = sql.Identifier(settings.db_schema)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT originator_id, topic, state FROM {}.verkosto_events ORDER BY notification_id LIMIT 1"
            ).format(schema)
        ).fetchone()
        assert row is not None
        state = json.loads(bytes(row["state"]))
        state["meta"]["actor"] = "ev\u0000il"
        state["originator_id"] = str(uuid.uuid4())
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.verkosto_events (originator_id, originator_version, topic, state) "
                "VALUES (%s, 1, %s, %s)"
            ).format(schema),
            (state["originator_id"], row["topic"], json.dumps(state).encode()),
        )

    everything = client.get("/v1/audit/events", params={"limit": 1000})
    assert everything.status_code == 200, everything.text
    assert any(e["actor"] == "ev\u0000il" for e in everything.json()["events"])
    nobody = client.get("/v1/audit/events", params={"actor": "nobody"})
    assert nobody.status_code == 200 and nobody.json()["events"] == []
    found = client.get("/v1/audit/events", params={"actor": "ev\ufffdil"})
    assert [e["aggregate_id"] for e in found.json()["events"]] == [state["originator_id"]]


def test_a_command_refused_beside_a_poison_stays_refused_when_the_poison_is_isolated(
    app: Verkosto, settings: Settings
) -> None:
    """The second opening of one id is refused (already_exists) while deciding with the
    first; the first is poison. Isolating the poison must not turn the refused one into a
    recorded one: a dead-lettered command is never also recorded."""
    from kafka.consumer.fetcher import ConsumerRecord

    from services.ingest import CommandIngest

    refuse_poison_command_ids(settings)
    pid = uuid.uuid4()
    bodies = [
        {**OPEN, "partnership_id": str(pid), "command_id": "poison-1"},
        {**OPEN, "partnership_id": str(pid), "command_id": "second"},
    ]
    records = [
        ConsumerRecord(
            settings.commands_topic, 0, None, offset, 0, 0, str(pid).encode(), value, [], None, 1, len(value), 0
        )
        for offset, (_, value) in enumerate(raw_command(body) for body in bodies)
    ]
    ingest = CommandIngest(app, settings)
    try:
        ingest.handle(records)
    finally:
        ingest.close()
    assert app.domain_events(pid) == []
    letters = consume(settings, settings.dlq_topic, 2)
    assert sorted(header(r, "reason") for r in letters) == ["already_exists", "unstorable"]
