"""Correcting the record without rewriting it: retractions and corrections are events.

A mistaken contact, interest signal, joint activity or evaluation stays in the store as
it was recorded (the hash chain never changes); a later ``event_retracted`` says it
should not count, an ``event_corrected`` says what it should have said. Every reader
(the aggregate, trust, the lifecycle rows, the reference folds) reads the effective
history: the original with its corrections applied, the retracted left out.

Only observations are corrected this way. States that a newer event supersedes
(segmentation, roles, stage, ownership) are put right by recording the right state: a
re-segmentation or a transfer says so in history already, and what held in between
stays answerable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.errors import NotCorrectable, NothingChanged, UnknownEvent
from domain.values import (
    ActivityKind,
    Channel,
    Direction,
    Factors,
    Hours,
    Minutes,
    Personal,
    StorableName,
    Strength,
    Text,
    Value,
    outcome_of,
)

# The limits of the commands' fields, and the personal marks of the events' fields.
_Text = Annotated[Text, Personal("aggregate")]
_Person = Annotated[StorableName, Personal("person")]

# "<aggregate id>:<version>", as published events and flag evidence name an event.
EventId = Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{36}:[1-9][0-9]{0,9}$")]
_EVENT_ID = re.compile(r"^(?P<aggregate>[0-9a-fA-F-]{36}):(?P<version>[1-9][0-9]{0,9})$")

# What each correctable event's correction may change (its own field names).
CORRECTABLE: Mapping[str, frozenset[str]] = {
    "contact_logged": frozenset({"occurred_at", "channel", "direction", "participants", "effort_minutes", "summary"}),
    "interest_signalled": frozenset({"occurred_at", "direction", "strength", "evidence"}),
    "joint_activity_recorded": frozenset(
        {"occurred_at", "kind", "title", "our_effort_hours", "their_effort_hours", "outcome"}
    ),
    "evaluated": frozenset({"occurred_at", "factors", "note"}),
}


class Changes(Value):
    """The replacement values of a correction; the fields left out stay as recorded.
    Personal fields carry the same marks as in the events they replace."""

    occurred_at: AwareDatetime | None = None
    channel: Channel | None = None
    direction: Direction | None = None
    participants: Annotated[tuple[_Person, ...], Field(min_length=1, max_length=50)] | None = None
    effort_minutes: Minutes | None = None
    summary: _Text | None = None
    strength: Strength | None = None
    evidence: _Text | None = None
    kind: ActivityKind | None = None
    title: Annotated[StorableName, Personal("aggregate")] | None = None
    our_effort_hours: Hours | None = None
    their_effort_hours: Hours | None = None
    outcome: _Text | None = None  # a joint activity's outcome, in words
    factors: Factors | None = None
    note: _Text | None = None
    # Derived from ``factors``: the corrected evaluation's outcome (their product).
    evaluated_outcome: float | None = None

    def given(self) -> dict[str, Any]:
        """The fields this correction sets, derived ones aside."""
        return {k: v for k, v in self if v is not None and k != "evaluated_outcome"}


def parse_event_id(event_id: str) -> tuple[UUID, int]:
    found = _EVENT_ID.match(event_id)
    if found is None:
        raise UnknownEvent(f"{event_id!r} is no event id (<aggregate id>:<version>)", event_id=event_id)
    return UUID(found["aggregate"]), int(found["version"])


def check_correctable(event_type: str, event_id: str) -> None:
    if event_type not in CORRECTABLE:
        raise NotCorrectable(
            f"{event_id} is a {event_type}; only {', '.join(sorted(CORRECTABLE))} are retracted or corrected "
            "(a state such as a segmentation is put right by recording the right one)",
            event_id=event_id,
            event_type=event_type,
            correctable=sorted(CORRECTABLE),
        )


def target_version(event_id: str) -> int:
    return int(event_id.rsplit(":", 1)[1])


def check_changes(event_type: str, event_id: str, changes: Changes, recorded: Mapping[str, Any] | None) -> Changes:
    """The correction as it will be stored: only fields the event has, at least one of
    them different from ``recorded`` (the event as recorded; None: not compared); an
    evaluation's outcome derived again."""
    given = changes.given()
    foreign = sorted(set(given) - CORRECTABLE[event_type])
    if foreign:
        raise NotCorrectable(
            f"a {event_type} has no correctable {', '.join(foreign)}",
            event_id=event_id,
            fields=foreign,
            correctable=sorted(CORRECTABLE[event_type]),
        )
    if not given:
        raise NothingChanged("a correction must give at least one replacement field", event_id=event_id)
    if recorded is not None and all(_same(recorded.get(name), value) for name, value in given.items()):
        raise NothingChanged(f"{event_id} already says exactly this", event_id=event_id)
    if changes.factors is not None:
        return changes.model_copy(update={"evaluated_outcome": outcome_of(changes.factors)})
    return changes


def _same(recorded: Any, value: Any) -> bool:
    if isinstance(recorded, tuple | list) and isinstance(value, tuple | list):
        return list(recorded) == list(value)
    return bool(recorded == value)
