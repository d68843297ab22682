"""The AsyncAPI document (contract/asyncapi.py) is valid AsyncAPI 3.0.0, covers every
command and event, and its schemas agree with what the ingest accepts and the relay sends.

The AsyncAPI specification's own JSON Schema is vendored (tests/contract/README.md), so
nothing here needs the network.
"""

from __future__ import annotations

import copy
import json
import types
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from referencing import Registry
from referencing.jsonschema import DRAFT7

from contract.asyncapi import document
from contract.commands import SPECS
from contract.events import event_types, published_event
from domain.base import DomainEvent
from domain.operating_model import DEFAULT_MODEL
from services.api.contract_doc import document_for, topics
from services.application import Rejected, Verkosto
from services.cli import parser
from services.eventstore import PydanticMapper
from services.ingest import Malformed, parse
from services.settings import Settings
from tests.kafka_helpers import command, contact, opened
from tests.unit.fakes import memory_app
from tests.unit.test_contract import recorded_events

SPECIFICATION = Path(__file__).resolve().parents[1] / "contract" / "asyncapi-3.0.0.schema.json"
DOCUMENT_URI = "urn:verkosto:asyncapi"
SETTINGS = Settings(kafka_bootstrap="broker.example:9092")
DOCUMENT = document(topics(SETTINGS), "broker.example:9092")
FORMATS = jsonschema.FormatChecker()
# Any string a pattern matches will do: the first one generated, not shrunk (which is slow).
FIRST_FOUND = settings(
    database=None, derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
)


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(UUID(value))


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def specification() -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(json.loads(SPECIFICATION.read_text()))


def validator(doc: dict[str, Any], message: str, part: str = "payload") -> jsonschema.protocols.Validator:
    """A message's payload (or headers) schema, its $refs resolved within the document."""
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, DRAFT7.create_resource(doc))
    pointer = f"{DOCUMENT_URI}#/components/messages/{message}/{part}"
    return jsonschema.Draft7Validator({"$ref": pointer}, registry=registry, format_checker=FORMATS)


def problems(message: str, instance: Any, part: str = "payload") -> list[str]:
    return [error.message for error in validator(DOCUMENT, message, part).iter_errors(instance)]


@cache
def application() -> Verkosto:
    return memory_app()


def ingest_refuses(body: dict[str, Any]) -> bool:
    """Whether the ingest dead-letters it as a matter of contract: it cannot parse it, or
    the application refuses it for want of its aggregate's id. Whether that aggregate
    exists is the domain's business, not the contract's, so it is not asked here."""
    try:
        request = parse(types.SimpleNamespace(value=json.dumps(body).encode()))
    except Malformed:
        return True
    (outcome,) = application().decide([request]).outcomes
    return isinstance(outcome, Rejected) and outcome.code == "not_found" and "field" in outcome.details


# The document ------------------------------------------------------------------------


def test_the_document_is_valid_asyncapi_3() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in specification().iter_errors(DOCUMENT)]
    assert errors == []
    assert DOCUMENT["asyncapi"] == "3.0.0"


TAMPERINGS = {
    "AsyncAPI 2's verb": lambda d: d["operations"]["receiveCommands"].update(action="subscribe"),
    "a payload that is no schema": lambda d: d["components"]["schemas"]["LogContact"].update(type=5),
    "a channel with a topic, not an address": lambda d: d["channels"]["events"].update(topic="x"),
    "a server without its protocol": lambda d: d["servers"]["kafka"].pop("protocol"),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_the_specification_refuses_a_tampered_document(tamper: Any) -> None:
    tampered = copy.deepcopy(DOCUMENT)
    tamper(tampered)
    assert list(specification().iter_errors(tampered))


def test_channels_are_the_configured_topics_and_operations_say_whose_they_are() -> None:
    channels = DOCUMENT["channels"]
    assert channels["commands"]["address"] == SETTINGS.commands_topic
    assert channels["deadLetters"]["address"] == SETTINGS.dlq_topic
    assert channels["events"]["address"] == SETTINGS.events_topic
    assert DOCUMENT["servers"]["kafka"] == {**DOCUMENT["servers"]["kafka"], "host": "broker.example:9092"}
    actions = {o["channel"]["$ref"]: o["action"] for o in DOCUMENT["operations"].values()}
    assert actions == {"#/channels/commands": "receive", "#/channels/deadLetters": "send", "#/channels/events": "send"}


def test_every_command_and_every_event_is_a_message_on_its_channel() -> None:
    schemas = DOCUMENT["components"]["schemas"]

    def type_of(message: str) -> str:
        payload = DOCUMENT["components"]["messages"][message]["payload"]["$ref"].rsplit("/", 1)[-1]
        return str(schemas[payload]["properties"]["type"]["const"])

    on_commands = DOCUMENT["channels"]["commands"]["messages"]
    on_events = DOCUMENT["channels"]["events"]["messages"]
    assert sorted(type_of(m) for m in on_commands) == sorted(s.event.type for s in SPECS)
    assert sorted(type_of(m) for m in on_events) == sorted(t.name for t in event_types())
    assert list(DOCUMENT["channels"]["deadLetters"]["messages"]) == ["DeadLetter"]


# Commands: the document agrees with the ingest ----------------------------------------


def test_a_valid_command_validates_and_a_broken_one_does_not() -> None:
    _, value = command(contact(UUID(int=7)))
    good = json.loads(value)
    assert problems("LogContact", good) == [] and not ingest_refuses(good)
    for broken in (
        {k: v for k, v in good.items() if k != "channel"},  # a required field missing
        {k: v for k, v in good.items() if k != "actor"},  # the Kafka form needs its sender
        {**good, "colour": "red"},  # a field nobody declared
        {**good, "effort_minutes": "10"},  # numbers are strict
        {**good, "channel": "pigeon"},  # not one of the channels
        {**good, "occurred_at": "2024-01-01T09:00:00"},  # no offset
    ):
        assert problems("LogContact", broken), broken
        assert ingest_refuses(broken), broken


def test_a_creation_needs_no_id_but_a_later_command_does() -> None:
    _, value = command(opened(UUID(int=8)))
    creation = {k: v for k, v in json.loads(value).items() if k != "partnership_id"}
    assert problems("OpenPartnership", creation) == []
    _, value = command(contact(UUID(int=8)))
    later = {k: v for k, v in json.loads(value).items() if k != "partnership_id"}
    assert problems("LogContact", later)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def minimal(schema: dict[str, Any]) -> Any:
    """The smallest instance of a schema: required properties only, shortest values."""
    schema = _resolve(schema)
    if "const" in schema or "enum" in schema:
        return schema.get("const", (schema.get("enum") or [None])[0])
    if "anyOf" in schema:
        return minimal(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return {name: minimal(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "object":
        key = minimal({"type": "string", **schema.get("propertyNames", {})})
        return {
            f"{key}{i}": minimal(schema.get("additionalProperties", {})) for i in range(schema.get("minProperties", 0))
        }
    if kind == "array":
        return [minimal(schema["items"]) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        made = {"uuid": str(UUID(int=1)), "date-time": "2024-01-01T09:00:00+00:00"}.get(schema.get("format", ""))
        if made is None and "pattern" in schema:
            made = find(st.from_regex(schema["pattern"], fullmatch=True), lambda _: True, settings=FIRST_FOUND)
        return made if made is not None else "x" * max(1, schema.get("minLength", 1))
    return {"integer": schema.get("minimum", 1), "number": schema.get("minimum", 1.0), "boolean": False}[str(kind)]


# What JSON Schema cannot say (a rule across items), given as the domain's own values.
BEYOND_JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "DefineOperatingModel": {"cells": [cell.model_dump(mode="json") for cell in DEFAULT_MODEL.cells]},
}


def command_messages() -> list[str]:
    return list(DOCUMENT["channels"]["commands"]["messages"])


@pytest.mark.parametrize("message", command_messages())
def test_each_command_schema_accepts_and_refuses_what_the_ingest_does(message: str) -> None:
    payload = DOCUMENT["components"]["messages"][message]["payload"]
    schema = _resolve(payload)
    base = {**minimal(payload), **BEYOND_JSON_SCHEMA.get(message, {})}
    assert problems(message, base) == []
    assert not ingest_refuses(base), base
    mutants = [{**base, "unexpected": 1}, {**base, "type": "no_such_event"}]
    mutants += [{k: v for k, v in base.items() if k != name} for name in schema["required"]]
    mutants += [{**base, name: None} for name in schema["required"]]
    mutants += [{**base, name: str(v)} for name, v in base.items() if type(v) in (int, float)]
    for mutant in mutants:
        assert problems(message, mutant), mutant
        assert ingest_refuses(mutant), mutant


# Events: what the relay sends validates ----------------------------------------------


@pytest.mark.parametrize("event", recorded_events(), ids=lambda e: type(e).type)
def test_every_published_event_validates_against_its_message(event: DomainEvent) -> None:
    stored = PydanticMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]
    published = published_event(stored.topic, stored.state, 42)
    assert problems(published["type"], published) == []
    assert problems(published["type"], {**published, "data": {**published["data"], "unexpected": 1}})
    assert problems(published["type"], {k: v for k, v in published.items() if k != "event_id"})
    other = next(t.name for t in event_types() if t.name != published["type"])
    assert problems(other, published)  # each message is one type of event


def test_headers_are_described_as_the_relay_and_the_ingest_set_them() -> None:
    event = event_types()[0].name
    assert problems(event, {"position": "42"}, "headers") == []
    assert problems(event, {"position": "4x2"}, "headers")
    letter = {
        "reason": "malformed_json",
        "detail": "the message is not JSON",
        "original_topic": SETTINGS.commands_topic,
        "original_partition": "0",
        "original_offset": "17",
        "failed_at": "2024-01-01T09:00:00+00:00",
    }
    assert problems("DeadLetter", letter, "headers") == []
    assert problems("DeadLetter", {k: v for k, v in letter.items() if k != "reason"}, "headers")
    assert problems("DeadLetter", {**letter, "failed_at": "yesterday"}, "headers")


# The two doors to the document -------------------------------------------------------


def test_the_cli_exports_the_document_for_the_configured_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VERKOSTO_KAFKA_BOOTSTRAP", "PLAINTEXT://kafka-1.example:9093,kafka-2.example:9093")
    monkeypatch.setenv("VERKOSTO_EVENTS_TOPIC", "acme.events.v1")
    out = tmp_path / "asyncapi.json"
    for argv in (["export", "--out", str(out)], ["export"]):
        args = parser().parse_args(["--data-dir", str(tmp_path), "contract", *argv])
        assert args.func(args) == 0
    written, printed = json.loads(out.read_text()), json.loads(capsys.readouterr().out)
    assert written == printed == json.loads(json.dumps(document_for(Settings(data_dir=tmp_path))))
    assert written["servers"]["kafka"]["host"] == "kafka-1.example:9093"
    assert written["channels"]["events"]["address"] == "acme.events.v1"
    assert list(specification().iter_errors(written)) == []
