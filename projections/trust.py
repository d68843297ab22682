"""Trust trajectory per partnership: the fold state, and one point per event that moved it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain import trust as model
from domain.base import DomainEvent
from domain.partnership import Partnership
from projections.corrections import CORRECTION_TYPES, CORRECTIONS
from projections.trust_refold import point_row, refold

P = Partnership
_TRUST = 6  # a point row's trust (projections/trust_refold.point_row)
# Which events the trust model sees, and as what.
_KINDS: dict[type[DomainEvent], str] = {
    P.Opened: "opened",
    P.ContactLogged: "contact",
    P.InterestSignalled: "interest",
    P.JointActivityRecorded: "joint_activity",
    P.Evaluated: "evaluation",
}


def happening(published: Published, steward_changed: bool = False) -> model.Happening | None:
    event = published.event
    kind = "steward_changed" if steward_changed else _KINDS.get(type(event))
    if kind is None:
        return None
    # The event's fields as a dict: getattr of a field an event type lacks goes through
    # pydantic's slow __getattr__, and this runs for every event of a catch-up.
    fields = vars(event)
    direction = fields.get("direction")
    return model.Happening(
        event_id=published.event_id,
        at=event.meta.occurred_at,
        kind=kind,  # type: ignore[arg-type]
        direction=direction.value if direction is not None else None,
        strength=fields.get("strength"),
        our_hours=float(fields.get("our_effort_hours", 0.0)),
        their_hours=float(fields.get("their_effort_hours", 0.0)),
        outcome=event.outcome if isinstance(event, P.Evaluated) else None,
    )


class TrustProjection:
    name = "trust"
    tables = ("trust_state", "trust_points")
    # What moves trust, and transfers (a new steward restarts attention).
    handles = frozenset({kind.type for kind in _KINDS} | {P.OwnershipTransferred.type} | CORRECTION_TYPES)
    ddl = """
    CREATE TABLE IF NOT EXISTS {rm}.trust_state (
        partnership_id uuid PRIMARY KEY,
        steward        text NOT NULL,
        state          jsonb NOT NULL,
        model_version  text NOT NULL
    );
    -- [[valid from (UTC ISO), steward], ...] in valid time: who the steward is *now*.
    ALTER TABLE {rm}.trust_state ADD COLUMN IF NOT EXISTS tenures jsonb NOT NULL DEFAULT '[]';
    CREATE TABLE IF NOT EXISTS {rm}.trust_points (
        partnership_id    uuid NOT NULL,
        version           bigint NOT NULL,
        at                timestamptz NOT NULL,
        inbound_interest  double precision NOT NULL,
        outbound_interest double precision NOT NULL,
        mutual_interest   double precision NOT NULL,
        trust             double precision NOT NULL,
        attention         double precision NOT NULL,
        phase             text NOT NULL,
        moved_by          text[] NOT NULL,
        model_version     text NOT NULL,
        position          bigint NOT NULL,
        PRIMARY KEY (partnership_id, version)
    );
    -- The happening each point folded: its partnership's trajectory is folded again from
    -- these when an event is retracted or corrected (projections/trust_refold.py).
    ALTER TABLE {rm}.trust_points ADD COLUMN IF NOT EXISTS happening jsonb;
    -- Trust at a moment (the board's trust now and 180 days before) is an index lookup.
    CREATE INDEX IF NOT EXISTS trust_points_at ON {rm}.trust_points (partnership_id, at, version);
    -- The highest trust of any point so far. Every point's moment is at or before the
    -- state's as_of, so for a moment after it the peak is this one value, not a scan of
    -- a trajectory that grows with the partnership's history (the board asks it per row).
    ALTER TABLE {rm}.trust_state ADD COLUMN IF NOT EXISTS peak double precision;
    UPDATE {rm}.trust_state s SET peak = (
        SELECT max(p.trust) FROM {rm}.trust_points p WHERE p.partnership_id = s.partnership_id
    ) WHERE s.peak IS NULL;
    """

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        mine = [p for p in events if isinstance(p.event, Partnership.Event)]
        if not mine:
            return
        await cur.execute(
            sql.SQL(
                "SELECT partnership_id::text, tenures, state, peak FROM {}.trust_state "
                "WHERE partnership_id = ANY(%s::uuid[])"
            ).format(rm),
            (list({p.aggregate_id for p in mine}),),
        )
        rows = await cur.fetchall()
        states: dict[str, tuple[list[list[str]], model.TrustState]] = {
            pid: (tenures, model.TrustState.from_dict(state)) for pid, tenures, state, _ in rows
        }
        peaks: dict[str, float | None] = {pid: peak for pid, _, _, peak in rows}
        points: list[list[Any]] = []
        for published in mine:
            pid, event = published.aggregate_id, published.event
            if isinstance(event, CORRECTIONS):
                if pid in states:
                    # Folded again from the rows, so what this batch folded so far is written first.
                    await _write(cur, rm, states, points, peaks)
                    points = []
                    refolded = await refold(cur, rm, published)
                    if refolded is not None:
                        states[pid] = (states[pid][0], refolded[0])
                        points = refolded[1]
                        peaks[pid] = None  # its whole trajectory is in points now
                continue
            if isinstance(event, P.Opened):
                opened = happening(published)
                assert opened is not None
                states[pid] = ([[published.occurred_at, event.steward]], model.initial(opened))
                seen: model.Happening | None = opened
            elif pid not in states:
                continue  # opened before this read model existed; a rebuild covers it
            else:
                tenures, state = states[pid]
                changed = False
                if isinstance(event, P.OwnershipTransferred):
                    # Valid time decides who the steward is now: a back-dated transfer that
                    # took effect before the current steward's does not replace them.
                    before = tenures[-1][1]
                    tenures = sorted([*tenures, [published.occurred_at, event.steward]], key=lambda tenure: tenure[0])
                    changed = tenures[-1][1] != before
                seen = happening(published, steward_changed=changed)
                states[pid] = (tenures, model.step(state, seen) if seen else state)
                if seen is None:
                    continue
            points.append(point_row(pid, published.version, published.position, states[pid][1], seen))
        await _write(cur, rm, states, points, peaks)


async def _write(
    cur: psycopg.AsyncCursor[Any],
    rm: sql.Identifier,
    states: dict[str, tuple[list[list[str]], model.TrustState]],
    points: list[list[Any]],
    peaks: dict[str, float | None],
) -> None:
    """The batch's states and points in whole-batch statements: row-by-row writes would
    dominate catch-up. ``peaks`` (each partnership's highest trust before ``points``)
    takes the points' trust in."""
    for row in points:
        pid, trust = row[0], row[_TRUST]
        known = peaks.get(pid)
        peaks[pid] = trust if known is None else max(known, trust)
    await cur.execute(
        sql.SQL(
            "INSERT INTO {}.trust_state (partnership_id, steward, tenures, state, model_version, peak) "
            "SELECT (r->>0)::uuid, r->>1, r->2, r->3, %s, (r->>4)::float8 FROM jsonb_array_elements(%s::jsonb) r "
            "ON CONFLICT (partnership_id) DO UPDATE SET steward = EXCLUDED.steward, "
            "tenures = EXCLUDED.tenures, state = EXCLUDED.state, model_version = EXCLUDED.model_version, "
            "peak = EXCLUDED.peak"
        ).format(rm),
        (
            model.TRUST_MODEL_VERSION,
            json.dumps(
                [
                    [pid, tenures[-1][1], tenures, state.to_dict(), peaks.get(pid)]
                    for pid, (tenures, state) in states.items()
                ]
            ),
        ),
    )
    if points:
        # One JSON parameter: psycopg escapes text arrays element by element, slowly.
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.trust_points SELECT (r->>0)::uuid, (r->>1)::bigint, "
                "(r->>2)::timestamptz, (r->>3)::float8, (r->>4)::float8, (r->>5)::float8, "
                "(r->>6)::float8, (r->>7)::float8, r->>8, "
                "ARRAY(SELECT jsonb_array_elements_text(r->9)), r->>10, (r->>11)::bigint, r->12 "
                "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
            ).format(rm),
            (json.dumps(points),),
        )
