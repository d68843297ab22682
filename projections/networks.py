"""Network facts per network, for health and the organisation's network plan."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contract.events import Published
from domain.network import Network
from projections.documents import DocumentProjection

N = Network
NETWORK_TYPES = (
    N.Joined,
    N.MemberAdded,
    N.MemberRemoved,
    N.Activated,
    N.Parked,
    N.ContributionLogged,
    N.Evaluated,
    N.Left,
)


def fold_network(doc: dict[str, Any] | None, published: Published) -> dict[str, Any] | None:
    event, at = published.event, published.occurred_at
    if isinstance(event, N.Joined):
        return {
            "name": event.name,
            "purposes": [p.value for p in event.purposes],
            "role": event.role.value,
            "activity": event.activity.value,
            "joined_at": at,
            "best_before": event.best_before.isoformat() if event.best_before else None,
            "left_at": None,
            "left_reason": None,
            "members": [],
            "contributions": [],
            "evaluations": [],
            "activations": [],
            "parkings": [],
            "last_event_at": at,
        }
    if doc is None:
        return None
    if isinstance(event, N.MemberAdded):
        doc["members"] = sorted({*doc["members"], str(event.partnership_id)})
    elif isinstance(event, N.MemberRemoved):
        doc["members"] = [m for m in doc["members"] if m != str(event.partnership_id)]
    elif isinstance(event, N.Activated):
        doc["activity"] = "active"
        doc["activations"].append([at, event.need])
    elif isinstance(event, N.Parked):
        doc["activity"] = "passive"
        doc["parkings"].append(at)
    elif isinstance(event, N.ContributionLogged):
        doc["contributions"].append([at, event.our_effort_hours])
    elif isinstance(event, N.Evaluated):
        doc["evaluations"].append([at, event.outcome])
    elif isinstance(event, N.Left):
        doc["left_at"], doc["left_reason"] = at, event.reason.value
    doc["last_event_at"] = max(doc["last_event_at"], at)
    return doc


def network_facts(network_id: str, doc: dict[str, Any]) -> Any:
    from domain.network_health import NetworkFacts

    when = datetime.fromisoformat
    return NetworkFacts(
        network_id=network_id,
        name=doc["name"],
        purposes=tuple(doc["purposes"]),
        role=doc["role"],
        activity=doc["activity"],
        joined_at=when(doc["joined_at"]),
        best_before=date.fromisoformat(doc["best_before"]) if doc["best_before"] else None,
        left_at=when(doc["left_at"]) if doc["left_at"] else None,
        left_reason=doc["left_reason"],
        members=len(doc["members"]),
        contributions=tuple((when(a), h) for a, h in doc["contributions"]),
        evaluations=tuple((when(a), o) for a, o in doc["evaluations"]),
        activations=tuple((when(a), n) for a, n in doc["activations"]),
        last_event_at=when(doc["last_event_at"]),
        parkings=tuple(when(a) for a in doc["parkings"]),
    )


def networks_projection() -> DocumentProjection:
    return DocumentProjection("networks", NETWORK_TYPES, fold_network)
