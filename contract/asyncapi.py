"""The Kafka contract as an AsyncAPI 3.0 document, generated from the models that do the work.

Commands are the models of ``contract.commands`` the ingest validates with, in their Kafka
form (``kafka_form``: the sender's ``actor`` beside them, ``type`` and the aggregate's id
required). Events are the published form ``contract.events.published_event`` builds, its
``data`` the event class's own fields. Dead letters are the refused bytes, unchanged, with
the headers the ingest adds. Nothing here lists a command or an event: a new one declared
in the domain appears in the document as it appears in the contract.

The document describes Verkosto, as AsyncAPI 3 has it: Verkosto *receives* commands and
*sends* events and dead letters; an integrator sends and receives the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contract.commands import SPECS, Command, CommandSpec, OrganisationCommand
from contract.events import ENVELOPE, SCHEMA, EventType, event_types
from domain.errors import DomainError
from domain.organisation import ORGANISATION_ID
from domain.values import EventMeta, StorableName

ASYNCAPI = "3.0.0"
KAFKA_BINDING = "0.5.0"  # the version of AsyncAPI's Kafka bindings used below
SCHEMAS = "#/components/schemas/"
Digits = Annotated[str, Field(pattern=r"^[0-9]+$")]


@dataclass(frozen=True)
class Topics:
    """The topics' names, as the settings give them (contract/ cannot read settings)."""

    commands: str
    dlq: str
    events: str


class EventHeaders(BaseModel):
    """The headers the relay sets on each event (Kafka headers are bytes: UTF-8 text here)."""

    model_config = ConfigDict(extra="forbid")

    position: Digits = Field(description="The event's global position, as in the payload.")


def _reasons() -> list[str]:
    found, pending = [], [DomainError]
    while pending:
        error = pending.pop(0)
        found.append(error.code)
        pending += error.__subclasses__()
    return sorted(set(found))


class DeadLetterHeaders(BaseModel):
    """The headers the ingest sets on a dead letter, beside the original key and bytes."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description="Why it was refused: malformed_json, missing_actor, invalid_command, unstorable "
        "(the database refused it), not_found, already_exists, or a domain rule's code. "
        "New reasons may appear: treat an unknown one as a refusal.",
        examples=_reasons(),
    )
    detail: str = Field(max_length=2000, description="What was wrong, for a person to read.")
    original_topic: str
    original_partition: Digits
    original_offset: Digits
    failed_at: datetime = Field(description="When it was dead-lettered (ISO 8601, UTC).")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def kafka_form(spec: CommandSpec) -> type[Command]:
    """The command as the ingest takes it off Kafka: with ``actor`` (the ingest pops it
    before validating the rest), ``type`` (the union is told apart by it) and, unless it
    creates its aggregate or is the organisation's, the aggregate's id (which over HTTP the
    path names; the application refuses a command without it)."""
    fields: dict[str, Any] = {
        "actor": (StorableName, Field(pattern=r"\S", description="The sending system, recorded as the actor.")),
        "type": (Literal[spec.event.type], ...),
    }
    if not spec.creates and not issubclass(spec.model, OrganisationCommand):
        fields[spec.model.target()] = (UUID, Field(description=f"The {spec.aggregate.kind} it is about."))
    return cast(
        type[Command],
        create_model(
            spec.model.__name__, __base__=spec.model, __module__=__name__, __doc__=spec.model.__doc__, **fields
        ),
    )


def published_form(kind: EventType) -> type[BaseModel]:
    """The event as ``published_event`` shapes it: the envelope (what the stored event's
    ``meta`` and ids hold) around ``data``, the event class's fields but the envelope's."""
    own: dict[str, Any] = {n: (f.annotation, f) for n, f in kind.cls.model_fields.items() if n not in ENVELOPE}
    data = create_model(
        f"{_camel(kind.name)}Data", __config__=ConfigDict(extra="forbid"), __doc__=kind.cls.__doc__, **own
    )
    fields: dict[str, Any] = {
        "schema_": (Literal[SCHEMA], Field(alias="schema")),
        "position": (int, Field(ge=1, description="Global position in the event store: increasing, with gaps.")),
        "event_id": (str, Field(pattern=r"^[0-9a-fA-F-]{36}:[0-9]+$", description="aggregate_id:version, unique.")),
        "aggregate_type": (Literal[kind.aggregate_type], ...),
        "aggregate_id": (UUID, ...),
        "version": (int, Field(ge=1, description="The aggregate's version after this event.")),
        "type": (Literal[kind.name], ...),
        "data": (data, ...),
        **{n: (f.annotation, f) for n, f in EventMeta.model_fields.items()},
    }
    return create_model(
        f"{_camel(kind.name)}Event",
        # published_event always writes every envelope key, null or not.
        __config__=ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True),
        __doc__=f"A published {kind.name} event of a {kind.aggregate_type}.",
        **fields,
    )


@dataclass(frozen=True)
class _Forms:
    commands: dict[str, tuple[CommandSpec, type[Command]]]
    events: dict[str, tuple[EventType, type[BaseModel]]]


def _forms() -> _Forms:
    return _Forms(
        {spec.model.__name__: (spec, kafka_form(spec)) for spec in SPECS},
        {kind.name: (kind, published_form(kind)) for kind in event_types()},
    )


def _schemas(forms: _Forms) -> tuple[dict[str, Any], dict[type[BaseModel], str]]:
    """Every payload's and header's JSON Schema under components/schemas, generated
    together so that models they share are defined once (and same-named ones apart)."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for _, m in forms.commands.values()]
    wanted += [(m, "serialization") for _, m in forms.events.values()]
    wanted += [(EventHeaders, "serialization"), (DeadLetterHeaders, "serialization")]
    refs, top = models_json_schema(wanted, ref_template=SCHEMAS + "{model}")
    names = {model: refs[(model, mode)]["$ref"].removeprefix(SCHEMAS) for model, mode in wanted}
    return _draft_07(top.get("$defs", {})), names


def _draft_07(schema: Any) -> Any:
    """AsyncAPI's schema object is JSON Schema draft 07: its ``discriminator`` is the
    property's name, where pydantic writes OpenAPI's object (the mapping is implied by
    each member's ``type`` constant anyway)."""
    if isinstance(schema, list):
        return [_draft_07(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _draft_07(value) for key, value in schema.items()}
    if isinstance(converted.get("discriminator"), dict):
        converted["discriminator"] = converted["discriminator"]["propertyName"]
    return converted


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _command_key(spec: CommandSpec) -> dict[str, Any]:
    if issubclass(spec.model, OrganisationCommand):
        said = f"Any key; the organisation's id ({ORGANISATION_ID}) keeps its commands in order."
    else:
        said = f"The {spec.model.target()}, so that one {spec.aggregate.kind}'s commands stay in order."
    return {"type": "string", "description": said}


def _kafka(key: dict[str, Any]) -> dict[str, Any]:
    return {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}}


def _messages(forms: _Forms, names: dict[type[BaseModel], str]) -> dict[str, dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}
    for name, (spec, command) in forms.commands.items():
        messages[name] = {
            "name": name,
            "title": f"{name} ({spec.event.type})",
            "summary": _summary(spec.model) or f"Records {spec.event.type}.",
            "contentType": "application/json",
            "payload": _ref(names[command]),
            "bindings": _kafka(_command_key(spec)),
        }
    for name, (kind, event) in forms.events.items():
        messages[name] = {
            "name": name,
            "title": f"{name} ({kind.aggregate_type})",
            "summary": _summary(kind.cls) or f"A {name} event.",
            "contentType": "application/json",
            "payload": _ref(names[event]),
            "headers": _ref(names[EventHeaders]),
            "bindings": _kafka({"type": "string", "format": "uuid", "description": "The aggregate_id."}),
        }
    if len(messages) != len(forms.commands) + len(forms.events):
        raise ValueError("a command and an event share a message name")
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "A refused command",
        "summary": "The original message's key and bytes, unchanged, with why it was refused in its headers.",
        "contentType": "application/octet-stream",
        "payload": {"description": "The refused message's bytes as they were sent: not necessarily JSON."},
        "headers": _ref(names[DeadLetterHeaders]),
        "bindings": _kafka({"description": "The original message's key, unchanged (or none)."}),
    }
    return messages


def _channel(address: str, description: str, messages: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
    }


def document(topics: Topics, kafka_host: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document for the three topics, its server at ``kafka_host``."""
    forms = _forms()
    schemas, names = _schemas(forms)
    channels = {
        "commands": _channel(
            topics.commands,
            "Commands to record, as JSON, keyed by the aggregate's id. Malformed or refused ones are dead-lettered.",
            list(forms.commands),
        ),
        "deadLetters": _channel(topics.dlq, "Commands the ingest refused, and why.", ["DeadLetter"]),
        "events": _channel(
            topics.events,
            "Every recorded event, in order per aggregate, keyed by its id; may repeat (skip by event_id).",
            list(forms.events),
        ),
    }
    operations = {
        "receiveCommands": ("receive", "commands", "The ingest records each command, or dead-letters it."),
        "sendDeadLetters": ("send", "deadLetters", "The ingest forwards what it refused, with the reason."),
        "sendEvents": ("send", "events", "The relay publishes every recorded event, at least once."),
    }
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "Verkosto Kafka contract",
            "version": "1",
            "description": "What Verkosto receives and sends on Kafka. Operations are Verkosto's own: "
            "it receives commands and sends events and dead letters, so an integrator sends "
            "commands and receives the rest. Payload schemas are JSON Schema (draft 07).",
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": kafka_host, "protocol": "kafka", "description": "The Kafka bootstrap server."}},
        "channels": channels,
        "operations": {
            name: {"action": action, "channel": {"$ref": f"#/channels/{channel}"}, "summary": summary}
            for name, (action, channel, summary) in operations.items()
        },
        "components": {"schemas": schemas, "messages": _messages(forms, names)},
    }
