"""Every message on the test's commands, dead-letter and events topics, after real traffic
through the ingest and the relay, against the AsyncAPI document served at /asyncapi.json.

Real PostgreSQL and a real broker (tests/conftest.py); the ingest runs in a thread and the
relay publishes everything recorded, as in production.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jsonschema
from fastapi.testclient import TestClient

from contract import commands as c
from domain.operating_model import DEFAULT_MODEL, Mode
from services.api.app import create_app
from services.api.contract_doc import document_for
from services.application import Request, Verkosto
from services.settings import Settings
from tests.kafka_helpers import RunningIngest, command, consume, contact, opened, produce, publish_all
from tests.unit.test_asyncapi import FORMATS, validator

# Refusals of the contract itself: a command the document accepts is never refused so.
CONTRACT_REASONS = frozenset({"malformed_json", "missing_actor", "invalid_command"})


def traffic(pid: uuid.UUID, nid: uuid.UUID) -> list[tuple[bytes | None, bytes]]:
    """Commands of every aggregate, good and bad, as integrators send them."""
    partnership, network = {"partnership_id": str(pid)}, {"network_id": str(nid)}
    # Not the default model, which is in force already (nothing would change).
    cells = [cell.model_copy(update={"mode": Mode.MANAGE}).model_dump(mode="json") for cell in DEFAULT_MODEL.cells]
    return [
        command(opened(pid)),
        command(contact(pid, command_id="mail-1", on_behalf_of="Matti Meikäläinen")),
        command({"type": "interest_signalled", **partnership, "direction": "inbound", "strength": 2}),
        command({"type": "segmented", **partnership, "now": "+", "future": "++", "rationale": "growing"}),
        command(
            {"type": "network_joined", **network, "name": "Forum", "purposes": ["competence"]}
            | {"role": "member", "activity": "active", "owner_unit": "research", "steward": "alice"}
        ),
        # Keyed by the network it is for (the helper would take the partnership's id).
        (str(nid).encode(), command({"type": "member_added", **network, **partnership})[1]),
        command({"type": "operating_model_defined", "cells": cells}),
        (b"junk", b"{not json"),
        (b"deep", b"[" * 100_000),
        command({"type": "contact_logged", **partnership}),  # fields missing
        command(contact(pid), actor=""),
        command(contact(pid), actor="x" * 300),
        command(contact(pid, colour="red")),
        command({"type": "stage_changed", **partnership, "stage": "ended", "reason": "x"}),
        command(contact(uuid.uuid4())),  # valid, but no such partnership
        command({**contact(pid), "partnership_id": None}),
    ]


def by_type(document: dict[str, Any], channel: str) -> dict[str, str]:
    """Each message of a channel by the ``type`` its payload is fixed to."""
    schemas = document["components"]["schemas"]
    found = {}
    for name in document["channels"][channel]["messages"]:
        payload = document["components"]["messages"][name]["payload"]["$ref"].rsplit("/", 1)[-1]
        found[schemas[payload]["properties"]["type"]["const"]] = name
    return found


def errors(document: dict[str, Any], message: str, instance: Any, part: str = "payload") -> list[str]:
    return [e.message for e in validator(document, message, part).iter_errors(instance)]


def key_errors(document: dict[str, Any], message: str, key: bytes | None) -> list[str]:
    if key is None:
        return []  # a key is the sender's choice; the document says what a present one holds
    schema = document["components"]["messages"][message]["bindings"]["kafka"]["key"]
    return [e.message for e in jsonschema.Draft7Validator(schema, format_checker=FORMATS).iter_errors(key.decode())]


def headers(record: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def test_every_message_on_the_topics_is_what_the_document_says(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/asyncapi.json")  # no token: public, like /openapi.json
    assert response.status_code == 200
    document = response.json()
    assert document == document_for(settings)
    assert [document["channels"][n]["address"] for n in ("commands", "deadLetters", "events")] == [
        settings.commands_topic,
        settings.dlq_topic,
        settings.events_topic,
    ]

    pid, nid = uuid.uuid4(), uuid.uuid4()
    sent = traffic(pid, nid)
    # The member's partnership first: Kafka keeps order only within a partition, and a
    # network's member must be a partnership already recorded.
    produce(settings, sent[:1])
    running.until(lambda: running.ingest.recorded >= 1)
    produce(settings, sent[1:])
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= len(sent))
    # One more through the application's other door: source api, with what Kafka left null.
    update = c.LogContact(
        type="contact_logged",
        partnership_id=pid,
        channel="call",
        direction="inbound",
        participants=("Liisa",),
        command_id="api-1",
        on_behalf_of="Liisa",
    )
    app.execute([Request(update, "crm-sync", "api")])
    publish_all(app, settings)

    dead = consume(settings, settings.dlq_topic, running.ingest.dead_lettered)
    assert len(dead) == running.ingest.dead_lettered
    letters = {}
    for record in dead:
        said = headers(record)
        assert errors(document, "DeadLetter", said, "headers") == [], said
        assert said["original_topic"] == settings.commands_topic
        letters[(int(said["original_partition"]), int(said["original_offset"]))] = (said["reason"], record)

    commands = consume(settings, settings.commands_topic, len(sent))
    assert len(commands) == len(sent)
    messages = by_type(document, "commands")
    accepted = 0
    for record in commands:
        letter = letters.get((record.partition, record.offset))
        if letter is not None:
            assert (letter[1].key, letter[1].value) == (record.key, record.value)  # unchanged
        try:
            body = json.loads(record.value)
        except (ValueError, RecursionError):
            assert letter is not None and letter[0] == "malformed_json"
            continue
        message = messages.get(str(body.get("type"))) if isinstance(body, dict) else None
        problems = errors(document, message, body) if message else ["no message of this type"]
        if letter is None:
            accepted += 1
            assert problems == [], (body, problems)
            assert key_errors(document, message or "", record.key) == []
        elif not problems:
            assert letter[0] not in CONTRACT_REASONS, (body, letter[0])  # refused for the state
        # A command the document refuses is always dead-lettered: checked by letter above.
        assert problems == [] or letter is not None, body
    assert accepted == running.ingest.recorded == 7

    stored = app.recorder.select_notifications(start=None, limit=10_000)
    events = consume(settings, settings.events_topic, len(stored))
    assert sorted(json.loads(r.value)["position"] for r in events) == [n.id for n in stored]
    kinds = by_type(document, "events")
    for record in events:
        event = json.loads(record.value)
        message = kinds[event["type"]]
        assert errors(document, message, event) == [], event
        assert errors(document, message, headers(record), "headers") == []
        assert headers(record)["position"] == str(event["position"])
        assert key_errors(document, message, record.key) == [] and record.key == event["aggregate_id"].encode()
    published = {json.loads(r.value)["type"] for r in events}
    assert {"partnership_opened", "member_added", "organisation_founded", "operating_model_defined"} <= published
    assert any(json.loads(r.value)["source"] == "api" for r in events)
