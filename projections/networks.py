"""Network facts per network, for health and the organisation's network plan, and which
networks a partnership is a member of.

Documents folded before a key existed lack it until the projection is rebuilt
(``verkosto projections rebuild networks``); the fold and the readers treat a missing
list as empty, so an older document never stops the projection.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contract.events import Published
from domain.network import Network
from projections.documents import DocumentProjection
from projections.network_plan_rows import NetworksProjection

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
    N.MemberContributionLogged,
    N.NeedMet,
    N.BestBeforeRevised,
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
            "memberships": [],  # [partnership id, added at, removed at or None], in valid time
            "member_contributions": [],  # [at, partnership id, hours, outcome factor]
            "needs": [],  # [at, met/partly/not_met]
            "best_before_revisions": [],  # [at, date before, date after]
        }
    if doc is None:
        return None
    if isinstance(event, N.MemberAdded):
        doc["members"] = sorted({*doc["members"], str(event.partnership_id)})
        spans = [*doc.get("memberships", []), [str(event.partnership_id), at, None]]
        doc["memberships"] = sorted(spans, key=lambda span: (span[0], span[1]))
    elif isinstance(event, N.MemberRemoved):
        doc["members"] = [m for m in doc["members"] if m != str(event.partnership_id)]
        doc["memberships"] = _close(doc.get("memberships", []), str(event.partnership_id), at)
    elif isinstance(event, N.MemberContributionLogged):
        contribution = [at, str(event.partnership_id), event.effort_hours, event.outcome.factor]
        doc.setdefault("member_contributions", []).append(contribution)
    elif isinstance(event, N.NeedMet):
        doc.setdefault("needs", []).append([at, event.outcome.value])
    elif isinstance(event, N.BestBeforeRevised):
        revised = event.best_before.isoformat() if event.best_before else None
        doc.setdefault("best_before_revisions", []).append([at, doc["best_before"], revised])
        doc["best_before"] = revised
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


def _close(memberships: list[list[Any]], partnership_id: str, at: str) -> list[list[Any]]:
    """Ends the partnership's open membership at ``at``; removals come only for members."""
    spans = [list(span) for span in memberships]
    still = [span for span in spans if span[0] == partnership_id and span[2] is None]
    if still:
        still[-1][2] = at
    return spans


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
        member_contributions=tuple((when(a), m, h, f) for a, m, h, f in doc.get("member_contributions", [])),
        needs=tuple((when(a), outcome) for a, outcome in doc.get("needs", [])),
        best_before_revisions=tuple(
            (when(a), _day(before), _day(after)) for a, before, after in doc.get("best_before_revisions", [])
        ),
    )


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def membership(network_id: str, doc: dict[str, Any], partnership_id: str, as_of: datetime | None) -> Any:
    """The network as the partnership's, if it was a member at ``as_of`` (valid time; None:
    now) of a network we were in then; else None."""
    from domain.network_health import recorded_activity_as_of

    when = datetime.fromisoformat
    spans = [s for s in doc.get("memberships", []) if s[0] == partnership_id]
    if as_of is None:
        member = partnership_id in doc["members"] and doc["left_at"] is None
        current = [s for s in spans if s[2] is None]
    else:
        left = doc["left_at"] is not None and when(doc["left_at"]) <= as_of
        current = [s for s in spans if when(s[1]) <= as_of and (s[2] is None or when(s[2]) > as_of)]
        member = bool(current) and when(doc["joined_at"]) <= as_of and not left
    if not member:
        return None
    facts = network_facts(network_id, doc)
    return {
        "network_id": network_id,
        "name": doc["name"],
        "purposes": doc["purposes"],
        "role": doc["role"],
        "activity": recorded_activity_as_of(facts, as_of) if as_of else doc["activity"],
        "member_since": current[-1][1] if current else None,  # None: added before this was kept
    }


def networks_projection() -> NetworksProjection:
    # With the organisation's candidates and plan decisions as rows (network_plan_rows).
    return NetworksProjection(DocumentProjection("networks", NETWORK_TYPES, fold_network))
