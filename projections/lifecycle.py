"""Relationship lifecycle: stage, since when, transitions, and the facts its flags need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.lifecycle import Activity, PartnershipFacts
from domain.values import Importance, Stage
from projections.documents import DocumentProjection, utc


PARTNERSHIP_TYPES = frozenset({
    "partnership_opened", "contact_logged", "joint_activity_recorded", "evaluated", "segmented",
    "ownership_transferred", "stage_changed",
})


def fold_partnership(doc: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    """Keeps every fact with its valid time, so the flags can be asked about any date."""
    kind, data, at = event["type"], event["data"], utc(event["occurred_at"])
    if kind == "partnership_opened":
        return {
            "partner_name": data["partner"]["name"], "partner_kind": data["partner"]["kind"],
            "opened_at": at, "tenures": [[at, data["owner_unit"], data["steward"]]],
            "transitions": [], "contacts_at": [], "segments": [],
            "activities": [], "evaluations": [], "stewards_left_at": [],
        }
    if doc is None:
        return None  # events of a partnership opened before this read model existed
    if kind == "contact_logged":
        doc["contacts_at"] = sorted([*doc["contacts_at"], at])
    elif kind == "joint_activity_recorded":
        doc["activities"].append([at, data["our_effort_hours"], data["their_effort_hours"]])
    elif kind == "evaluated":
        doc["evaluations"].append([at, data["outcome"]])
    elif kind == "segmented":
        entry = [at, data["segment"]["now"], data["segment"]["future"]]
        doc["segments"] = sorted([*doc["segments"], entry], key=lambda s: s[0])
    elif kind == "ownership_transferred":
        doc["tenures"] = sorted([*doc["tenures"], [at, data["owner_unit"], data["steward"]]], key=lambda t: t[0])
        if data["reason"] == "steward_left":
            doc["stewards_left_at"] = sorted([*doc["stewards_left_at"], at])
    elif kind == "stage_changed":
        # The domain keeps stage moves in valid-time order, so appending keeps them sorted.
        doc["transitions"].append([at, data["previous"], data["stage"], data["reason"]])
    return doc


def _last(items: list[Any], moment: str) -> Any:
    """The last item (sorted by valid time, first field) in force at ``moment``."""
    found = None
    for item in items:
        if (item[0] if isinstance(item, list) else item) > moment:
            break
        found = item
    return found


def facts_of(partnership_id: str, doc: dict[str, Any], as_of: datetime) -> PartnershipFacts:
    """What was true at ``as_of`` (valid time), from the stored facts."""
    when = datetime.fromisoformat
    moment = as_of.astimezone(UTC).isoformat()
    _, owner_unit, steward = _last(doc["tenures"], moment) or doc["tenures"][0]
    transition = _last(doc["transitions"], moment)
    segment = _last(doc["segments"], moment)
    contact = _last(doc["contacts_at"], moment)
    left = _last(doc["stewards_left_at"], moment)
    return PartnershipFacts(
        partnership_id=partnership_id, partner_name=doc["partner_name"], owner_unit=owner_unit,
        steward=steward,
        stage=Stage(transition[2]) if transition else Stage.ANALYSE,
        stage_since=when(transition[0] if transition else doc["opened_at"]),
        opened_at=when(doc["opened_at"]),
        last_contact_at=when(contact) if contact else None,
        segment_now=Importance(segment[1]) if segment else None,
        segment_future=Importance(segment[2]) if segment else None,
        activities=tuple(Activity(when(a), o, t) for a, o, t in doc["activities"] if a <= moment),
        evaluations=tuple((when(a), o) for a, o in doc["evaluations"] if a <= moment),
        steward_left_at=when(left) if left else None,
    )


def lifecycle_projection() -> DocumentProjection:
    return DocumentProjection("lifecycle", PARTNERSHIP_TYPES, fold_partnership)
