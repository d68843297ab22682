"""The published shape of a stored event: what the bus carries and history shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from eventsourcing.utils import get_topic

from domain.network import Network
from domain.partnership import Partnership

SCHEMA = "verkosto.event.v1"

# Contract names of stored event classes. Renaming a class must keep its name here.
EVENT_TYPES: dict[type, tuple[str, str]] = {
    Partnership.Opened: ("partnership", "partnership_opened"),
    Partnership.ContactLogged: ("partnership", "contact_logged"),
    Partnership.InterestSignalled: ("partnership", "interest_signalled"),
    Partnership.JointActivityRecorded: ("partnership", "joint_activity_recorded"),
    Partnership.Evaluated: ("partnership", "evaluated"),
    Partnership.Segmented: ("partnership", "segmented"),
    Partnership.OwnershipTransferred: ("partnership", "ownership_transferred"),
    Partnership.StageChanged: ("partnership", "stage_changed"),
    Network.Joined: ("network", "network_joined"),
    Network.MemberAdded: ("network", "member_added"),
    Network.MemberRemoved: ("network", "member_removed"),
    Network.Activated: ("network", "network_activated"),
    Network.Parked: ("network", "network_parked"),
    Network.ContributionLogged: ("network", "network_contribution_logged"),
    Network.Evaluated: ("network", "network_evaluated"),
    Network.Left: ("network", "network_left"),
}
_BY_TOPIC = {get_topic(cls): names for cls, names in EVENT_TYPES.items()}
_NOT_DATA = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "meta"})


def published_event(
    topic: str, state: bytes, position: int, reveal: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Reshapes stored JSON without rebuilding the pydantic event (the relay's hot path).
    ``reveal`` unseals personal fields; without it they stay sealed."""
    aggregate_type, event_type = _BY_TOPIC[topic]
    stored = json.loads(state)
    if reveal is not None:
        stored = reveal(topic, stored)
    meta = stored["meta"]
    return {
        "schema": SCHEMA,
        "position": position,
        "event_id": f"{stored['originator_id']}:{stored['originator_version']}",
        "aggregate_type": aggregate_type,
        "aggregate_id": stored["originator_id"],
        "version": stored["originator_version"],
        "type": event_type,
        "occurred_at": meta["occurred_at"],
        "recorded_at": meta["recorded_at"],
        "actor": meta["actor"],
        "on_behalf_of": meta["on_behalf_of"],
        "source": meta["source"],
        "command_id": meta["command_id"],
        "data": {k: v for k, v in stored.items() if k not in _NOT_DATA},
    }
