"""Relationship lifecycle: stage, since when, transitions, and the facts its flags need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.lifecycle import Activity, PartnershipFacts
from domain.values import Importance, Stage
from projections.documents import DocumentProjection, utc


PARTNERSHIP_TYPES = frozenset({
    "partnership_opened", "contact_logged", "joint_activity_recorded", "evaluated", "segmented",
    "ownership_transferred", "stage_changed",
})


def fold_partnership(doc: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    kind, data, at = event["type"], event["data"], utc(event["occurred_at"])
    if kind == "partnership_opened":
        return {
            "partner_name": data["partner"]["name"], "partner_kind": data["partner"]["kind"],
            "owner_unit": data["owner_unit"], "steward": data["steward"],
            "tenures": [[at, data["owner_unit"], data["steward"]]],
            "stage": Stage.ANALYSE.value, "stage_since": at, "opened_at": at, "transitions": [],
            "last_contact_at": None, "contacts": 0, "segment": None,
            "activities": [], "evaluations": [], "steward_left_at": None,
        }
    if doc is None:
        return None  # events of a partnership opened before this read model existed
    if kind == "contact_logged":
        doc["contacts"] += 1
        doc["last_contact_at"] = max(filter(None, [doc["last_contact_at"], at]))
    elif kind == "joint_activity_recorded":
        doc["activities"].append([at, data["our_effort_hours"], data["their_effort_hours"]])
    elif kind == "evaluated":
        doc["evaluations"].append([at, data["outcome"]])
    elif kind == "segmented":
        # Valid time decides: a late report of an older segmentation does not override.
        if doc["segment"] is None or at >= doc["segment"]["at"]:
            doc["segment"] = {"at": at, "now": data["segment"]["now"], "future": data["segment"]["future"]}
    elif kind == "ownership_transferred":
        doc["tenures"] = sorted([*doc["tenures"], [at, data["owner_unit"], data["steward"]]], key=lambda t: t[0])
        _, doc["owner_unit"], doc["steward"] = doc["tenures"][-1]
        if data["reason"] == "steward_left":
            doc["steward_left_at"] = max(filter(None, [doc["steward_left_at"], at]))
    elif kind == "stage_changed":
        doc["transitions"].append([at, data["previous"], data["stage"], data["reason"]])
        doc["stage"], doc["stage_since"] = data["stage"], at
    return doc


def facts_of(partnership_id: str, doc: dict[str, Any]) -> PartnershipFacts:
    when = datetime.fromisoformat
    segment = doc["segment"]
    return PartnershipFacts(
        partnership_id=partnership_id, partner_name=doc["partner_name"], owner_unit=doc["owner_unit"],
        steward=doc["steward"], stage=Stage(doc["stage"]), stage_since=when(doc["stage_since"]),
        opened_at=when(doc["opened_at"]),
        last_contact_at=when(doc["last_contact_at"]) if doc["last_contact_at"] else None,
        segment_now=Importance(segment["now"]) if segment else None,
        segment_future=Importance(segment["future"]) if segment else None,
        activities=tuple(Activity(when(a), o, t) for a, o, t in doc["activities"]),
        evaluations=tuple((when(a), o) for a, o in doc["evaluations"]),
        steward_left_at=when(doc["steward_left_at"]) if doc["steward_left_at"] else None,
    )


def lifecycle_projection() -> DocumentProjection:
    return DocumentProjection("lifecycle", PARTNERSHIP_TYPES, fold_partnership)
