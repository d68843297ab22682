"""Relationship lifecycle: stage, since when, transitions, and the facts its flags need."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.lifecycle import Activity, Evaluation, Interest, PartnershipFacts, Segmentation
from domain.organisation import Organisation
from domain.partnership import Partnership
from domain.timeline import in_force_at
from domain.values import Direction, Importance, Role, Stage, TransferReason
from projections.corrections import CORRECTIONS, correct_document
from projections.lifecycle_rows import ROW_TABLES, ROWS_DDL, apply_rows

P = Partnership
PARTNERSHIP_TYPES = (
    P.Opened,
    P.ContactLogged,
    P.InterestSignalled,
    P.JointActivityRecorded,
    P.Evaluated,
    P.Segmented,
    P.RolesChanged,
    P.OwnershipTransferred,
    P.StageChanged,
    P.MergedInto,
    *CORRECTIONS,
)


def _by_time(items: list[list[Any]]) -> list[list[Any]]:
    # Stable: of facts taking effect at one moment, the later recorded stays later.
    return sorted(items, key=lambda item: item[0])


def fold_partnership(doc: dict[str, Any] | None, published: Published) -> dict[str, Any] | None:
    """Keeps every fact with its valid time and version, so the flags can be asked about
    any date and name the events behind them."""
    event, at, v = published.event, published.occurred_at, published.version
    if isinstance(event, P.Opened):
        return {
            "partner_name": event.partner.name,
            "partner_kind": event.partner.kind.value,
            "opened_at": at,
            "tenures": [[at, event.owner_unit, event.steward, v]],
            "roles": [[at, [Role(r).value for r in event.partner.roles], v]],
            "transitions": [],
            "contacts": [],
            "interests": [],
            "segments": [],
            "activities": [],
            "evaluations": [],
            "stewards_left": [],
        }
    if doc is None:
        return None  # events of a partnership opened before this read model existed
    if isinstance(event, P.ContactLogged):
        doc["contacts"] = _by_time([*doc["contacts"], [at, v]])
    elif isinstance(event, P.InterestSignalled):
        doc["interests"].append([at, event.direction == Direction.INBOUND, v])
    elif isinstance(event, P.JointActivityRecorded):
        doc["activities"].append([at, event.our_effort_hours, event.their_effort_hours, v])
    elif isinstance(event, P.Evaluated):
        doc["evaluations"].append([at, event.outcome, v])
    elif isinstance(event, P.Segmented):
        doc["segments"] = _by_time([*doc["segments"], [at, event.segment.now.value, event.segment.future.value, v]])
    elif isinstance(event, P.RolesChanged):
        doc["roles"] = _by_time([*doc["roles"], [at, [Role(r).value for r in event.roles], v]])
    elif isinstance(event, P.OwnershipTransferred):
        doc["tenures"] = _by_time([*doc["tenures"], [at, event.owner_unit, event.steward, v]])
        if event.reason == TransferReason.STEWARD_LEFT:
            doc["stewards_left"] = _by_time([*doc["stewards_left"], [at, v]])
    elif isinstance(event, P.StageChanged):
        # The domain keeps stage moves in valid-time order, so appending keeps them sorted.
        doc["transitions"].append([at, event.previous.value, event.stage.value, event.reason, v])
    elif isinstance(event, P.MergedInto):
        doc["transitions"].append([at, event.previous.value, "ended", "merged", v])
    elif isinstance(event, CORRECTIONS):
        return correct_document(doc, published)
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
    _, owner_unit, steward, tenure_version = _last(doc["tenures"], moment) or doc["tenures"][0]
    transition = _last(doc["transitions"], moment)
    segments = [s for s in doc["segments"] if s[0] <= moment]
    segment = segments[-1] if segments else None
    previous = segments[-2] if len(segments) > 1 else None
    contact = _last(doc["contacts"], moment)
    left = _last(doc["stewards_left"], moment)
    roles = _last(doc["roles"], moment) or doc["roles"][0]
    return PartnershipFacts(
        partnership_id=partnership_id,
        partner_name=doc["partner_name"],
        owner_unit=owner_unit,
        steward=steward,
        stage=Stage(transition[2]) if transition else Stage.ANALYSE,
        stage_since=when(transition[0] if transition else doc["opened_at"]),
        opened_at=when(doc["opened_at"]),
        last_contact_at=when(contact[0]) if contact else None,
        segment_now=Importance(segment[1]) if segment else None,
        segment_future=Importance(segment[2]) if segment else None,
        activities=tuple(Activity(when(a), o, t, v) for a, o, t, v in doc["activities"] if a <= moment),
        evaluations=tuple(Evaluation(when(a), o, v) for a, o, v in doc["evaluations"] if a <= moment),
        steward_left_at=when(left[0]) if left else None,
        steward_left_version=left[1] if left else 0,
        roles=tuple(roles[1]),
        interests=tuple(Interest(when(a), inbound, v) for a, inbound, v in doc["interests"] if a <= moment),
        segment_version=segment[3] if segment else 0,
        segment_at=when(segment[0]) if segment else None,
        previous_segment=Segmentation(Importance(previous[1]), Importance(previous[2]), previous[3])
        if previous
        else None,
        stage_version=transition[4] if transition else 0,
        last_contact_version=contact[1] if contact else 0,
        tenure_version=tenure_version,
    )


class LifecycleProjection:
    """The board's facts as indexed rows (projections/lifecycle_rows.py): each event adds a
    row or two, so applying one costs the same however long the partnership's history is.
    ``fold_partnership`` and ``facts_of`` stay as the pure reference fold the tests hold
    the rows' answers equal to."""

    name = "lifecycle"
    # The organisation's models and catalogues too: flags and coverage are judged by them.
    handles = frozenset(t.type for t in PARTNERSHIP_TYPES) | {
        Organisation.OperatingModelDefined.type,
        Organisation.CriteriaDefined.type,
    }
    tables: tuple[str, ...] = ROW_TABLES
    ddl = ROWS_DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        # A partner name PostgreSQL cannot store (a NUL) fails in the partners insert, and
        # the event is parked, as it was when a document held the name.
        await apply_rows(cur, rm, events)


def lifecycle_projection() -> LifecycleProjection:
    return LifecycleProjection()
