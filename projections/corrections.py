"""How the read models follow retractions and corrections (domain/corrections.py).

A retraction takes the named event's facts out; a correction lays its replacement values
over them. Both touch only the rows of the one event named, so they cost the same however
long the partnership's history is; the periods (ownership, stage, segment) never change,
because only observations are corrected. The trust fold is the exception: it depends on
the order of everything after the event, so its partnership is folded again
(projections/trust_refold.py).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.corrections import target_version
from domain.partnership import Partnership
from domain.values import Direction

P = Partnership
CORRECTIONS = (P.EventRetracted, P.EventCorrected)
CORRECTION_TYPES = frozenset(t.type for t in CORRECTIONS)

# The fact table each correctable event adds its row to, and the lists of the reference
# document that hold the same facts (the version is each item's last field).
FACT_TABLE = {
    "contact_logged": "contacts",
    "interest_signalled": "interests",
    "joint_activity_recorded": "activities",
    "evaluated": "evaluations",
}


def _at(changes: Any) -> str | None:
    return changes.occurred_at.astimezone(UTC).isoformat() if changes.occurred_at is not None else None


def _columns(kind: str, changes: Any) -> dict[str, Any]:
    """The fact row's columns a correction replaces, by column name."""
    columns: dict[str, Any] = {}
    if (at := _at(changes)) is not None:
        columns["at"] = at
    if kind == "interest_signalled" and changes.direction is not None:
        columns["inbound"] = changes.direction == Direction.INBOUND
    if kind == "joint_activity_recorded":
        if changes.our_effort_hours is not None:
            columns["our_hours"] = float(changes.our_effort_hours)
        if changes.their_effort_hours is not None:
            columns["their_hours"] = float(changes.their_effort_hours)
    if kind == "evaluated" and changes.evaluated_outcome is not None:
        columns["outcome"] = float(changes.evaluated_outcome)
    return columns


def correct_document(doc: dict[str, Any], published: Published) -> dict[str, Any]:
    """The reference fold's side (projections/lifecycle.py): the same change to a document."""
    event = published.event
    kind = event.retracted_type if isinstance(event, P.EventRetracted) else event.corrected_type  # type: ignore[attr-defined]
    if kind not in FACT_TABLE:
        return doc
    name, version = FACT_TABLE[kind], target_version(event.event_id)  # type: ignore[attr-defined]
    items = doc[name]
    if isinstance(event, P.EventRetracted):
        doc[name] = [item for item in items if item[-1] != version]
        return doc
    columns = _columns(kind, event.changes)  # type: ignore[attr-defined]
    # The document's item layout per list: [at, ..., version].
    layout = {
        "contacts": ("at",),
        "interests": ("at", "inbound"),
        "activities": ("at", "our_hours", "their_hours"),
        "evaluations": ("at", "outcome"),
    }[name]
    patched = []
    for item in items:
        if item[-1] == version:
            item = [columns.get(field, item[i]) for i, field in enumerate(layout)] + [version]
        patched.append(item)
    # Contacts are kept in valid-time order (stable: the later recorded stays later).
    doc[name] = sorted(patched, key=lambda item: (item[0], item[-1])) if name == "contacts" else patched
    return doc


async def correct_rows(cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> set[str]:
    """Applies the batch's retractions and corrections to the fact rows, in order; returns
    the partnerships whose contacts changed (their last contact is recomputed)."""
    contacts_changed: set[str] = set()
    for published in events:
        event = published.event
        if not isinstance(event, CORRECTIONS):
            continue
        kind = event.retracted_type if isinstance(event, P.EventRetracted) else event.corrected_type
        table = FACT_TABLE.get(kind)
        if table is None:
            continue
        key = (published.aggregate_id, target_version(event.event_id))
        if isinstance(event, P.EventRetracted):
            await cur.execute(
                sql.SQL("DELETE FROM {}.{} WHERE partnership_id = %s AND version = %s").format(
                    rm, sql.Identifier(table)
                ),
                key,
            )
        else:
            columns = _columns(kind, event.changes)
            if not columns:
                continue  # it corrected only what no read model keeps (a summary, say)
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = (%s::jsonb ->> {})::{}").format(
                    sql.Identifier(name), sql.Literal(name), sql.SQL(_CASTS[name])
                )
                for name in columns
            )
            await cur.execute(
                sql.SQL("UPDATE {}.{} SET {} WHERE partnership_id = %s AND version = %s").format(
                    rm, sql.Identifier(table), assignments
                ),
                (*[json.dumps(columns)] * len(columns), *key),
            )
        if table == "contacts":
            contacts_changed.add(published.aggregate_id)
    return contacts_changed


_CASTS = {
    "at": "timestamptz",
    "inbound": "boolean",
    "our_hours": "float8",
    "their_hours": "float8",
    "outcome": "float8",
}
