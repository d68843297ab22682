"""What was true at a moment (valid time), by what had been recorded by a moment (record
time): the two axes an auditor asks along. A pure fold over a partnership's events."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.base import DomainEvent
from domain.network import Network
from domain.partnership import Partnership
from domain.values import Role, Stage


def known(events: Sequence[DomainEvent], as_of: datetime, known_at: datetime) -> list[DomainEvent]:
    """Events that had happened by ``as_of`` and been recorded by ``known_at``, in valid
    time (ties in the order they were recorded)."""
    chosen = [e for e in events if e.meta.occurred_at <= as_of and e.meta.recorded_at <= known_at]
    return sorted(chosen, key=lambda e: (e.meta.occurred_at, e.originator_version))


def partnership_then(
    events: Sequence[DomainEvent], as_of: datetime, known_at: datetime, start: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The partnership's state at ``as_of`` as known at ``known_at``; None if it did not
    exist then, or nobody had recorded it yet. ``start``: the view of events that all
    come before ``events`` in valid time and are all known then (a checkpoint), which
    the fold continues from."""
    view: dict[str, Any] | None = copy.deepcopy(start)
    for event in known(events, as_of, known_at):
        if isinstance(event, Partnership.Opened):
            view = {
                "partner": event.partner.model_dump(mode="json"),
                "owner_unit": event.owner_unit,
                "steward": event.steward,
                "stage": Stage.ANALYSE.value,
                "stage_since": event.meta.occurred_at,
                "segment": None,
                "contacts": 0,
                "last_contact_at": None,
                "interest_signals": 0,
                "joint_activities": 0,
                "last_outcome": None,
                "started_at": event.meta.occurred_at,
                "ended": False,
                "events_known": 0,
            }
        if view is None:
            continue
        view["events_known"] += 1
        _apply(view, event)
    return view


def _apply(view: dict[str, Any], event: DomainEvent) -> None:
    at = event.meta.occurred_at
    if isinstance(event, Partnership.ContactLogged):
        view["contacts"] += 1
        view["last_contact_at"] = at
    elif isinstance(event, Partnership.InterestSignalled):
        view["interest_signals"] += 1
    elif isinstance(event, Partnership.JointActivityRecorded):
        view["joint_activities"] += 1
    elif isinstance(event, Partnership.Evaluated):
        view["last_outcome"] = event.outcome
    elif isinstance(event, Partnership.Segmented):
        view["segment"] = event.segment.model_dump(mode="json")
    elif isinstance(event, Partnership.RolesChanged):
        view["partner"] = {**view["partner"], "roles": [Role(r).value for r in event.roles]}
    elif isinstance(event, Partnership.OwnershipTransferred):
        view["owner_unit"], view["steward"] = event.owner_unit, event.steward
    elif isinstance(event, Partnership.StageChanged):
        view["stage"], view["stage_since"] = event.stage.value, at
        view["ended"] = event.stage == Stage.ENDED


def network_then(
    events: Sequence[DomainEvent], as_of: datetime, known_at: datetime, start: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The network's state at ``as_of`` as known at ``known_at``; None if not known then.
    ``start`` as for ``partnership_then``."""
    view: dict[str, Any] | None = copy.deepcopy(start)
    for event in known(events, as_of, known_at):
        if isinstance(event, Network.Joined):
            view = {
                "name": event.name,
                "purposes": [p.value for p in event.purposes],
                "role": event.role.value,
                "activity": event.activity.value,
                "best_before": event.best_before,
                "members": [],
                "effort_hours": 0.0,
                "last_outcome": None,
                "started_at": event.meta.occurred_at,
                "left_reason": None,
                "ended": False,
                "events_known": 0,
            }
        if view is None:
            continue
        view["events_known"] += 1
        _apply_network(view, event)
    if view is not None:
        view["members"] = sorted(view["members"])
    return view


def _apply_network(view: dict[str, Any], event: DomainEvent) -> None:
    if isinstance(event, Network.MemberAdded):
        view["members"].append(str(event.partnership_id))
    elif isinstance(event, Network.MemberRemoved):
        view["members"] = [m for m in view["members"] if m != str(event.partnership_id)]
    elif isinstance(event, Network.Activated):
        view["activity"] = "active"
    elif isinstance(event, Network.Parked):
        view["activity"] = "passive"
    elif isinstance(event, Network.ContributionLogged):
        view["effort_hours"] += event.our_effort_hours
    elif isinstance(event, Network.Evaluated):
        view["last_outcome"] = event.outcome
    elif isinstance(event, Network.Left):
        view["left_reason"], view["ended"] = event.reason.value, True
