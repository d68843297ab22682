"""Network facts per network, for health and the organisation's network plan."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from projections.documents import DocumentProjection, utc


NETWORK_TYPES = frozenset({
    "network_joined", "member_added", "member_removed", "network_activated", "network_parked",
    "network_contribution_logged", "network_evaluated", "network_left",
})


def fold_network(doc: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    kind, data, at = event["type"], event["data"], utc(event["occurred_at"])
    if kind == "network_joined":
        return {
            "name": data["name"], "purposes": data["purposes"], "role": data["role"],
            "activity": data["activity"], "joined_at": at, "best_before": data["best_before"],
            "left_at": None, "left_reason": None, "members": [], "contributions": [],
            "evaluations": [], "activations": [], "parkings": [], "last_event_at": at,
        }
    if doc is None:
        return None
    if kind == "member_added":
        doc["members"] = sorted({*doc["members"], data["partnership_id"]})
    elif kind == "member_removed":
        doc["members"] = [m for m in doc["members"] if m != data["partnership_id"]]
    elif kind == "network_activated":
        doc["activity"] = "active"
        doc["activations"].append([at, data["need"]])
    elif kind == "network_parked":
        doc["activity"] = "passive"
        doc["parkings"].append(at)
    elif kind == "network_contribution_logged":
        doc["contributions"].append([at, data["our_effort_hours"]])
    elif kind == "network_evaluated":
        doc["evaluations"].append([at, data["outcome"]])
    elif kind == "network_left":
        doc["left_at"], doc["left_reason"] = at, data["reason"]
    doc["last_event_at"] = max(doc["last_event_at"], at)
    return doc


def network_facts(network_id: str, doc: dict[str, Any]) -> Any:
    from domain.network_health import NetworkFacts

    when = datetime.fromisoformat
    return NetworkFacts(
        network_id=network_id, name=doc["name"], purposes=tuple(doc["purposes"]), role=doc["role"],
        activity=doc["activity"], joined_at=when(doc["joined_at"]),
        best_before=date.fromisoformat(doc["best_before"]) if doc["best_before"] else None,
        left_at=when(doc["left_at"]) if doc["left_at"] else None, left_reason=doc["left_reason"],
        members=len(doc["members"]),
        contributions=tuple((when(a), h) for a, h in doc["contributions"]),
        evaluations=tuple((when(a), o) for a, o in doc["evaluations"]),
        activations=tuple((when(a), n) for a, n in doc["activations"]),
        last_event_at=when(doc["last_event_at"]),
        parkings=tuple(when(a) for a in doc["parkings"]),
    )


def networks_projection() -> DocumentProjection:
    return DocumentProjection("networks", NETWORK_TYPES, fold_network)
