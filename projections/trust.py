"""Trust trajectory per partnership: the fold state, and one point per event that moved it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from domain import trust as model
from projections.documents import utc

# Which published events the trust model sees, and as what.
_KINDS = {
    "partnership_opened": "opened",
    "contact_logged": "contact",
    "interest_signalled": "interest",
    "joint_activity_recorded": "joint_activity",
    "evaluated": "evaluation",
}


def happening(event: dict[str, Any], steward_changed: bool = False) -> model.Happening | None:
    data = event["data"]
    kind = "steward_changed" if steward_changed else _KINDS.get(event["type"])
    if kind is None:
        return None
    return model.Happening(
        event_id=event["event_id"],
        at=datetime.fromisoformat(event["occurred_at"]),
        kind=kind,  # type: ignore[arg-type]
        direction=data.get("direction"),
        strength=data.get("strength"),
        our_hours=float(data.get("our_effort_hours") or 0.0),
        their_hours=float(data.get("their_effort_hours") or 0.0),
        outcome=data.get("outcome") if event["type"] == "evaluated" else None,
    )


class TrustProjection:
    name = "trust"
    tables = ("trust_state", "trust_points")
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
    """

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[dict[str, Any]]) -> None:
        mine = [e for e in events if e["aggregate_type"] == "partnership"]
        if not mine:
            return
        await cur.execute(
            sql.SQL("SELECT partnership_id::text, tenures, state FROM {}.trust_state "
                    "WHERE partnership_id = ANY(%s::uuid[])").format(rm),
            (list({e["aggregate_id"] for e in mine}),),
        )
        states: dict[str, tuple[list[list[str]], model.TrustState]] = {
            pid: (tenures, model.TrustState.from_dict(state)) for pid, tenures, state in await cur.fetchall()
        }
        points = []
        for event in mine:
            pid = event["aggregate_id"]
            if event["type"] == "partnership_opened":
                opened = happening(event)
                assert opened is not None
                states[pid] = ([[utc(event["occurred_at"]), event["data"]["steward"]]], model.initial(opened))
            elif pid not in states:
                continue  # opened before this read model existed; a rebuild covers it
            else:
                tenures, state = states[pid]
                changed = False
                if event["type"] == "ownership_transferred":
                    # Valid time decides who the steward is now: a back-dated transfer that
                    # took effect before the current steward's does not replace them.
                    before = tenures[-1][1]
                    tenures = sorted([*tenures, [utc(event["occurred_at"]), event["data"]["steward"]]],
                                     key=lambda tenure: tenure[0])
                    changed = tenures[-1][1] != before
                seen = happening(event, steward_changed=changed)
                states[pid] = (tenures, model.step(state, seen) if seen else state)
                if seen is None:
                    continue
            p = model.point(states[pid][1], (event["event_id"],))
            points.append([
                pid, event["version"], p.at.isoformat(), p.inbound_interest, p.outbound_interest,
                p.mutual_interest, p.trust, p.attention, p.phase, list(p.moved_by), p.model_version,
                event["position"],
            ])
        # Whole-batch statements: row-by-row writes would dominate catch-up.
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.trust_state (partnership_id, steward, tenures, state, model_version) "
                "SELECT (r->>0)::uuid, r->>1, r->2, r->3, %s FROM jsonb_array_elements(%s::jsonb) r "
                "ON CONFLICT (partnership_id) DO UPDATE SET steward = EXCLUDED.steward, "
                "tenures = EXCLUDED.tenures, state = EXCLUDED.state, model_version = EXCLUDED.model_version"
            ).format(rm),
            (
                model.TRUST_MODEL_VERSION,
                json.dumps([
                    [pid, tenures[-1][1], tenures, state.to_dict()] for pid, (tenures, state) in states.items()
                ]),
            ),
        )
        if points:
            # One JSON parameter: psycopg escapes text arrays element by element, slowly.
            await cur.execute(
                sql.SQL(
                    "INSERT INTO {}.trust_points SELECT (r->>0)::uuid, (r->>1)::bigint, "
                    "(r->>2)::timestamptz, (r->>3)::float8, (r->>4)::float8, (r->>5)::float8, "
                    "(r->>6)::float8, (r->>7)::float8, r->>8, "
                    "ARRAY(SELECT jsonb_array_elements_text(r->9)), r->>10, (r->>11)::bigint "
                    "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
                ).format(rm),
                (json.dumps(points),),
            )
