"""The trust trajectory of one partnership folded again after a retraction or correction.

Trust is a fold: every point depends on everything before it, so a changed event changes
every point after it. Each point row keeps the happening it folded (its input), so the
partnership's trajectory is folded again from its own rows, with the retracted happening
left out or the corrected one patched, without reading the event store. The cost is the
one partnership's history, paid once per correction (rare), never by ordinary events.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain import trust as model
from domain.corrections import target_version
from domain.partnership import Partnership
from domain.trust_types import Happening

P = Partnership


class RebuildNeeded(ValueError):
    """Points folded before they kept their inputs cannot be folded again: a rebuild of
    the trust projection fills them (the projector parks the correction until then)."""


def happening_json(h: Happening) -> dict[str, Any]:
    return {
        "event_id": h.event_id,
        "at": h.at.isoformat(),
        "kind": h.kind,
        "direction": h.direction,
        "strength": h.strength,
        "our_hours": h.our_hours,
        "their_hours": h.their_hours,
        "outcome": h.outcome,
    }


def _happening(data: dict[str, Any]) -> Happening:
    return Happening(**{**data, "at": datetime.fromisoformat(data["at"])})


def point_row(pid: str, version: int, position: int, state: model.TrustState, h: Happening) -> list[Any]:
    p = model.point(state, (h.event_id,))
    return [
        pid,
        version,
        p.at.isoformat(),
        p.inbound_interest,
        p.outbound_interest,
        p.mutual_interest,
        p.trust,
        p.attention,
        p.phase,
        list(p.moved_by),
        p.model_version,
        position,
        happening_json(h),
    ]


def _patched(h: Happening, event: Any) -> Happening:
    changes = event.changes
    updates: dict[str, Any] = {}
    if changes.occurred_at is not None:
        updates["at"] = changes.occurred_at
    if changes.direction is not None:
        updates["direction"] = changes.direction.value
    if changes.strength is not None:
        updates["strength"] = changes.strength
    if changes.our_effort_hours is not None:
        updates["our_hours"] = float(changes.our_effort_hours)
    if changes.their_effort_hours is not None:
        updates["their_hours"] = float(changes.their_effort_hours)
    if changes.evaluated_outcome is not None:
        updates["outcome"] = changes.evaluated_outcome
    return replace(h, **updates)


async def refold(
    cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, published: Published
) -> tuple[model.TrustState, list[list[Any]]] | None:
    """The partnership's state and every point folded again with ``published`` (a
    retraction or correction) taken into account; None if trust never saw the event."""
    event: Any = published.event
    version = target_version(event.event_id)
    await cur.execute(
        sql.SQL(
            "SELECT version, position, happening FROM {}.trust_points WHERE partnership_id = %s ORDER BY version"
        ).format(rm),
        (published.aggregate_id,),
    )
    rows = await cur.fetchall()
    if not any(v == version for v, _, _ in rows):
        return None  # an event trust does not fold, or one of a partnership it never saw opened
    if any(h is None for _, _, h in rows):
        raise RebuildNeeded(
            f"trust points of {published.aggregate_id} were folded before they kept their inputs; "
            "rebuild the trust projection (verkosto projections rebuild trust) to apply this correction"
        )
    inputs = []
    for v, position, data in rows:
        h = _happening(data)
        if v == version:
            if isinstance(event, P.EventRetracted):
                continue
            h = _patched(h, event)
        inputs.append((v, position, h))
    (v0, position0, opened), *rest = inputs
    state = model.initial(opened)
    points = [point_row(published.aggregate_id, v0, position0, state, opened)]
    for v, position, h in rest:
        state = model.step(state, h)
        points.append(point_row(published.aggregate_id, v, position, state, h))
    await cur.execute(
        sql.SQL("DELETE FROM {}.trust_points WHERE partnership_id = %s").format(rm), (published.aggregate_id,)
    )
    return state, points
