"""Relationship lifecycle: stage, since when, transitions, and the facts its flags need."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.lifecycle import Activity, PartnershipFacts
from domain.partnership import Partnership
from domain.timeline import in_force_at
from domain.values import Importance, Stage, TransferReason
from projections.lifecycle_rows import ROW_TABLES, ROWS_DDL, apply_rows

P = Partnership
PARTNERSHIP_TYPES = (
    P.Opened,
    P.ContactLogged,
    P.JointActivityRecorded,
    P.Evaluated,
    P.Segmented,
    P.OwnershipTransferred,
    P.StageChanged,
)


def fold_partnership(doc: dict[str, Any] | None, published: Published) -> dict[str, Any] | None:
    """Keeps every fact with its valid time, so the flags can be asked about any date."""
    event, at = published.event, published.occurred_at
    if isinstance(event, P.Opened):
        return {
            "partner_name": event.partner.name,
            "partner_kind": event.partner.kind.value,
            "opened_at": at,
            "tenures": [[at, event.owner_unit, event.steward]],
            "transitions": [],
            "contacts_at": [],
            "segments": [],
            "activities": [],
            "evaluations": [],
            "stewards_left_at": [],
        }
    if doc is None:
        return None  # events of a partnership opened before this read model existed
    if isinstance(event, P.ContactLogged):
        doc["contacts_at"] = sorted([*doc["contacts_at"], at])
    elif isinstance(event, P.JointActivityRecorded):
        doc["activities"].append([at, event.our_effort_hours, event.their_effort_hours])
    elif isinstance(event, P.Evaluated):
        doc["evaluations"].append([at, event.outcome])
    elif isinstance(event, P.Segmented):
        entry = [at, event.segment.now.value, event.segment.future.value]
        doc["segments"] = sorted([*doc["segments"], entry], key=lambda s: s[0])
    elif isinstance(event, P.OwnershipTransferred):
        doc["tenures"] = sorted([*doc["tenures"], [at, event.owner_unit, event.steward]], key=lambda t: t[0])
        if event.reason == TransferReason.STEWARD_LEFT:
            doc["stewards_left_at"] = sorted([*doc["stewards_left_at"], at])
    elif isinstance(event, P.StageChanged):
        # The domain keeps stage moves in valid-time order, so appending keeps them sorted.
        doc["transitions"].append([at, event.previous.value, event.stage.value, event.reason])
    return doc


def fold_all(events: Iterable[Published]) -> dict[str, dict[str, Any]]:
    """Every partnership's document folded from published events, in position order (each
    aggregate's events in version order): the reference the read model's rows are held to."""
    docs: dict[str, dict[str, Any]] = {}
    for published in sorted(events, key=lambda p: p.position):
        if isinstance(published.event, PARTNERSHIP_TYPES):
            doc = fold_partnership(docs.get(published.aggregate_id), published)
            if doc is not None:
                docs[published.aggregate_id] = doc
    return docs


def _last(items: list[Any], moment: str) -> Any:
    """The last item (sorted by valid time: a list's first field, or the ISO string
    itself) in force at ``moment``."""
    return in_force_at(items, moment, key=lambda item: item[0] if isinstance(item, list) else item)


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
        partnership_id=partnership_id,
        partner_name=doc["partner_name"],
        owner_unit=owner_unit,
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


class LifecycleProjection:
    """The board's facts as indexed rows (projections/lifecycle_rows.py): each event adds a
    row or two, so applying one costs the same however long the partnership's history is.
    ``fold_partnership`` and ``facts_of`` stay as the pure reference fold the tests hold
    the rows' answers equal to."""

    name = "lifecycle"
    handles = frozenset(t.type for t in PARTNERSHIP_TYPES)
    tables: tuple[str, ...] = ROW_TABLES
    ddl = ROWS_DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        # A partner name PostgreSQL cannot store (a NUL) fails in the partners insert, and
        # the event is parked, as it was when a document held the name.
        await apply_rows(cur, rm, events)


def lifecycle_projection() -> LifecycleProjection:
    return LifecycleProjection()
