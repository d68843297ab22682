"""Lifecycle facts as indexed rows, so the board is answered by PostgreSQL, page by page.

Facts that pile up with history (contacts, joint activities, evaluations) are one row each,
found by ``(partnership_id, at)``. What holds over a span of valid time (owner unit,
steward, stage, segment, the last handover because a steward left) is folded into
``periods``: one row per span in which none of them changes, so "as of T" is a range test
on indexed columns. A back-dated event recomputes its partnership's periods from the fact
rows, so it lands where it took effect.

Every batch costs a fixed number of statements, whatever its size: one JSON parameter
unpacked by ``jsonb_array_elements`` per fact table, then the affected partnerships'
periods recomputed in set-based SQL.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published
from domain.organisation import Organisation
from domain.partnership import Partnership
from domain.people import person_key
from domain.values import Direction, Role, TransferReason
from projections.corrections import correct_rows
from projections.lifecycle_ddl import ROWS_DDL as ROWS_DDL

P = Partnership


ROW_TABLES = (
    "partners",
    "tenure_facts",
    "transitions",
    "segments",
    "contacts",
    "activities",
    "evaluations",
    "interests",
    "role_facts",
    "operating_models",
    "catalogues",
    "periods",
)

# Each fact table: its columns after (partnership_id, version, at), and their casts.
_FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "tenure_facts": (("owner_unit", "text"), ("steward", "text"), ("steward_left", "boolean"), ("steward_key", "text")),
    "transitions": (("previous", "text"), ("stage", "text"), ("reason", "text")),
    "segments": (("now", "text"), ("future", "text")),
    "contacts": (),
    "activities": (("our_hours", "float8"), ("their_hours", "float8")),
    "evaluations": (("outcome", "float8"), ("catalogue_version", "bigint")),
    "interests": (("inbound", "boolean"),),
    "role_facts": (("roles", "text[]"),),
}


def _fact(published: Published) -> tuple[str, list[Any]] | None:
    """The fact table an event adds a row to, and the row's own columns."""
    event = published.event
    if isinstance(event, P.Opened):
        return "tenure_facts", [event.owner_unit, event.steward, False, person_key(event.steward)]
    if isinstance(event, P.RolesChanged):
        return "role_facts", [[Role(r).value for r in event.roles]]
    if isinstance(event, P.InterestSignalled):
        return "interests", [event.direction == Direction.INBOUND]
    if isinstance(event, P.OwnershipTransferred):
        left = event.reason == TransferReason.STEWARD_LEFT
        return "tenure_facts", [event.owner_unit, event.steward, left, person_key(event.steward)]
    if isinstance(event, P.StageChanged):
        return "transitions", [event.previous.value, event.stage.value, event.reason]
    if isinstance(event, P.MergedInto):  # the duplicate ends where it was merged
        return "transitions", [event.previous.value, "ended", "merged"]
    if isinstance(event, P.Segmented):
        return "segments", [event.segment.now.value, event.segment.future.value]
    if isinstance(event, P.ContactLogged):
        return "contacts", []
    if isinstance(event, P.JointActivityRecorded):
        return "activities", [float(event.our_effort_hours), float(event.their_effort_hours)]
    if isinstance(event, P.Evaluated):
        return "evaluations", [float(event.outcome), event.catalogue_version]
    return None


def _insert_facts(rm: sql.Identifier, table: str) -> sql.Composed:
    extra = _FACTS[table]
    names = sql.SQL("").join(sql.SQL(", ") + sql.Identifier(name) for name, _ in extra)
    values = sql.SQL("").join(
        # A JSON array becomes a text[] element by element (its text form is no array literal).
        sql.SQL(", ARRAY(SELECT jsonb_array_elements_text(r->{}))").format(sql.Literal(3 + i))
        if cast == "text[]"
        else sql.SQL(", (r->>{})::").format(sql.Literal(3 + i)) + sql.SQL(cast)
        for i, (_, cast) in enumerate(extra)
    )
    return sql.SQL(
        "INSERT INTO {rm}.{t} (partnership_id, version, at{names}) "
        "SELECT (r->>0)::uuid, (r->>1)::bigint, (r->>2)::timestamptz{values} "
        "FROM jsonb_array_elements(%s::jsonb) r ON CONFLICT DO NOTHING"
    ).format(rm=rm, t=sql.Identifier(table), names=names, values=values)


# The periods of the given partnerships, recomputed from their facts: a period starts at
# every moment one of them takes effect; what holds is the last fact at or before it, in
# (valid time, version) order, as the Python fold reads its lists.
_PERIODS = """
INSERT INTO {rm}.periods (partnership_id, valid_from, valid_to, partner_name, opened_at, owner_unit,
    steward, stage, stage_since, segment_now, segment_future, left_at, steward_key)
SELECT c.pid, c.at, lead(c.at) OVER (PARTITION BY c.pid ORDER BY c.at), p.partner_name, p.opened_at,
    t.owner_unit, t.steward, coalesce(s.stage, 'analyse'), coalesce(s.at, p.opened_at), g.now, g.future, l.at,
    t.steward_key
FROM (
    SELECT partnership_id AS pid, at FROM {rm}.tenure_facts WHERE partnership_id = ANY(%(ids)s::uuid[])
    UNION SELECT partnership_id, at FROM {rm}.transitions WHERE partnership_id = ANY(%(ids)s::uuid[])
    UNION SELECT partnership_id, at FROM {rm}.segments WHERE partnership_id = ANY(%(ids)s::uuid[])
) c
JOIN {rm}.partners p ON p.partnership_id = c.pid
CROSS JOIN LATERAL (
    SELECT owner_unit, steward, steward_key FROM {rm}.tenure_facts WHERE partnership_id = c.pid AND at <= c.at
    ORDER BY at DESC, version DESC LIMIT 1
) t
LEFT JOIN LATERAL (
    SELECT stage, at FROM {rm}.transitions WHERE partnership_id = c.pid AND at <= c.at
    ORDER BY at DESC, version DESC LIMIT 1
) s ON true
LEFT JOIN LATERAL (
    SELECT now, future FROM {rm}.segments WHERE partnership_id = c.pid AND at <= c.at
    ORDER BY at DESC, version DESC LIMIT 1
) g ON true
LEFT JOIN LATERAL (
    SELECT max(at) AS at FROM {rm}.tenure_facts WHERE partnership_id = c.pid AND steward_left AND at <= c.at
) l ON true
"""


async def _store_organisation(cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
    """The organisation's operating models and criteria catalogues, each with the moment
    it applies from: the flags and the evaluation coverage are judged by what was in force."""
    models, catalogues = [], []
    for p in events:
        if isinstance(p.event, Organisation.OperatingModelDefined):
            models.append([p.version, p.occurred_at, [cell.model_dump(mode="json") for cell in p.event.cells]])
        elif isinstance(p.event, Organisation.CriteriaDefined):
            catalogues.append([p.version, p.occurred_at])
    if models:
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.operating_models (version, effective, cells) "
                "SELECT (r->>0)::bigint, (r->>1)::timestamptz, r->2 FROM jsonb_array_elements(%s::jsonb) r "
                "ON CONFLICT DO NOTHING"
            ).format(rm),
            (json.dumps(models),),
        )
    if catalogues:
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.catalogues (version, effective) "
                "SELECT (r->>0)::bigint, (r->>1)::timestamptz FROM jsonb_array_elements(%s::jsonb) r "
                "ON CONFLICT DO NOTHING"
            ).format(rm),
            (json.dumps(catalogues),),
        )


async def apply_rows(cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
    await _store_organisation(cur, rm, events)
    partners: list[list[Any]] = []
    facts: dict[str, list[list[Any]]] = {table: [] for table in _FACTS}
    for published in events:
        found = _fact(published)
        if found is None:
            continue
        table, columns = found
        if isinstance(published.event, P.Opened):
            partners.append([published.aggregate_id, published.event.partner.name, published.occurred_at])
            roles = [Role(r).value for r in published.event.partner.roles]
            facts["role_facts"].append([published.aggregate_id, published.version, published.occurred_at, roles])
        facts[table].append([published.aggregate_id, published.version, published.occurred_at, *columns])
    if partners:
        await cur.execute(
            sql.SQL(
                "INSERT INTO {}.partners (partnership_id, partner_name, opened_at) "
                "SELECT (r->>0)::uuid, r->>1, (r->>2)::timestamptz FROM jsonb_array_elements(%s::jsonb) r "
                "ON CONFLICT DO NOTHING"
            ).format(rm),
            (json.dumps(partners),),
        )
    for table, rows in facts.items():
        if rows:
            await cur.execute(_insert_facts(rm, table), (json.dumps(rows),))
    # Retractions and corrections after the rows they name (a later version, so never
    # before them, even within one batch).
    contacted = {row[0] for row in facts["contacts"]} | await correct_rows(cur, rm, events)
    if contacted:
        # The latest contact overall: "last contact as of now" without touching the rows
        # (an index lookup each; none left after a retraction is NULL).
        await cur.execute(
            sql.SQL(
                "UPDATE {rm}.partners p SET last_contact_at = ("
                " SELECT max(at) FROM {rm}.contacts c WHERE c.partnership_id = p.partnership_id"
                ") WHERE p.partnership_id = ANY(%s::uuid[])"
            ).format(rm=rm),
            (list(contacted),),
        )
    spans = list({row[0] for table in ("tenure_facts", "transitions", "segments") for row in facts[table]})
    if spans:
        await cur.execute(sql.SQL("DELETE FROM {}.periods WHERE partnership_id = ANY(%s::uuid[])").format(rm), (spans,))
        await cur.execute(sql.SQL(_PERIODS).format(rm=rm), {"ids": spans})
