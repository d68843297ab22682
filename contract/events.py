"""The events of the domain, found on the aggregates, and their published form.

Each event class declares its contract name (``type``) and fields once, on its aggregate;
this module only collects them. A published event is the stored one reshaped for the
bus and for history; ``typed`` turns it back into the domain's own event class, which is
what projections work with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from typing import Any

from domain.base import Aggregate, DomainEvent
from domain.network import Network
from domain.organisation import Organisation
from domain.partnership import Partnership

SCHEMA = "verkosto.event.v1"
AGGREGATES: tuple[type[Aggregate], ...] = (Partnership, Network, Organisation)
# Fields every stored event has, which the published form carries in its envelope.
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "meta"})
Reveal = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class EventType:
    cls: type[DomainEvent]
    aggregate: type[Aggregate]
    topic: str  # how the event store names the class

    @property
    def name(self) -> str:
        return self.cls.type

    @property
    def aggregate_type(self) -> str:
        return self.aggregate.kind

    @property
    def creates(self) -> bool:
        return issubclass(self.cls, Aggregate.Created)

    @property
    def data_fields(self) -> tuple[str, ...]:
        return tuple(name for name in self.cls.model_fields if name not in ENVELOPE)


def _nested_events(aggregate: type[Aggregate]) -> Iterator[type[DomainEvent]]:
    for value in vars(aggregate).values():
        # An event of the contract names itself (``type``); the bases Event and Created don't.
        if isinstance(value, type) and issubclass(value, DomainEvent) and isinstance(getattr(value, "type", None), str):
            yield value


@cache
def event_types() -> tuple[EventType, ...]:
    return tuple(
        EventType(cls, aggregate, f"{cls.__module__}:{cls.__qualname__}")
        for aggregate in AGGREGATES
        for cls in _nested_events(aggregate)
    )


@cache
def by_topic() -> dict[str, EventType]:
    return {t.topic: t for t in event_types()}


@cache
def by_name() -> dict[str, EventType]:
    return {t.name: t for t in event_types()}


def topics_of(name: str | None = None, aggregate_type: str | None = None) -> list[str]:
    """The stored topics of the events with this contract name and/or aggregate type."""
    return [t.topic for t in event_types() if name in (None, t.name) and aggregate_type in (None, t.aggregate_type)]


def published_event(topic: str, state: bytes, position: int, reveal: Reveal | None = None) -> dict[str, Any]:
    """Reshapes stored JSON without rebuilding the pydantic event (the relay's hot path).
    ``reveal`` unseals personal fields; without it they stay sealed."""
    kind = by_topic()[topic]
    stored = json.loads(state)
    if reveal is not None:
        stored = reveal(topic, stored)
    meta = stored["meta"]
    return {
        "schema": SCHEMA,
        "position": position,
        "event_id": f"{stored['originator_id']}:{stored['originator_version']}",
        "aggregate_type": kind.aggregate_type,
        "aggregate_id": stored["originator_id"],
        "version": stored["originator_version"],
        "type": kind.name,
        "occurred_at": meta["occurred_at"],
        "recorded_at": meta["recorded_at"],
        "actor": meta["actor"],
        "on_behalf_of": meta["on_behalf_of"],
        "source": meta["source"],
        "command_id": meta["command_id"],
        "data": {k: v for k, v in stored.items() if k not in ENVELOPE},
    }


def typed(published: dict[str, Any]) -> DomainEvent:
    """The domain's own event class, validated, from a published event."""
    kind = by_name()[published["type"]]
    state: dict[str, Any] = {
        **published["data"],
        "originator_id": published["aggregate_id"],
        "originator_version": published["version"],
        "timestamp": published["recorded_at"],
        "meta": {
            key: published.get(key)
            for key in ("occurred_at", "recorded_at", "actor", "on_behalf_of", "source", "command_id")
        },
    }
    if kind.creates:
        state["originator_topic"] = f"{kind.aggregate.__module__}:{kind.aggregate.__qualname__}"
    return kind.cls.model_validate(state)


@dataclass(frozen=True)
class Published:
    """A published event as a projection sees it: the domain's own event, typed, and the
    global position it was recorded at."""

    position: int
    event: DomainEvent

    @property
    def aggregate_id(self) -> str:
        return str(self.event.originator_id)

    @property
    def version(self) -> int:
        return self.event.originator_version

    @property
    def event_id(self) -> str:
        return f"{self.event.originator_id}:{self.event.originator_version}"

    @property
    def occurred_at(self) -> str:
        """Valid time as UTC ISO text: senders' offsets differ, so documents keep UTC."""
        return self.event.meta.occurred_at.astimezone(UTC).isoformat()

    @classmethod
    def of(cls, published: dict[str, Any]) -> Published:
        return cls(int(published["position"]), typed(published))
