"""The directory: every partnership and network as it stands now, found by name.

One row per partnership (partner name, normalised name, kind, roles, owner unit, steward,
stage, segment, when it opened, whether it ended or was merged into another, the
partner's e-mail domains) and per network, plus each name's trigrams (domain/names.py),
so a search ranks by similarity from an index rather than by reading every name
(projections/queries/directory.py).

Each batch costs a fixed number of statements per kind: the rows it touches are read in
one, folded here event by event (each aggregate's in version order), and written back in
one upsert; the trigrams of names new in the batch in one more. A fact that took effect
earlier than the one held (a back-dated handover, say) does not replace it: what "now"
means is the latest in valid time, as the aggregate itself reads its tenures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from contract.events import Published, by_name
from domain.names import normalise, trigrams
from domain.network import Network
from domain.partnership import Partnership
from domain.people import person_key
from domain.values import Role, Stage
from projections.directory_ddl import DDL, TABLES

P, N = Partnership, Network
# Merges, by contract name: folded when the contract has them, and otherwise never
# decoded (an event a release does not know cannot stop the projection). The absorbed
# partnership ends, as its aggregate does, and says where it went.
MERGED, ABSORBED = "partnership_merged", "partnership_absorbed"
# What a destroyed key reveals (services.privacy.ERASED): no name to find, so no trigrams.
ERASED = "[erased]"
Row = dict[str, Any]


def name_key(name: str) -> str:
    return "" if name == ERASED else normalise(name)


def _later(at: str, version: int, held_at: str | None, held_version: int | None) -> bool:
    """Whether a fact taking effect at ``at`` replaces the one held (valid time, then the
    later recorded of two at one moment)."""
    if held_at is None or held_version is None:
        return True
    return (datetime.fromisoformat(at), version) > (datetime.fromisoformat(held_at), held_version)


def fold_partnership(row: Row | None, published: Published) -> Row | None:
    event, at, v = published.event, published.occurred_at, published.version
    if isinstance(event, P.Opened):
        key = name_key(event.partner.name)
        return {
            "partnership_id": published.aggregate_id,
            "partner_name": event.partner.name,
            "name_key": key,
            "trigram_count": len(trigrams(key)),
            "kind": event.partner.kind.value,
            "roles": [Role(r).value for r in event.partner.roles],
            "roles_at": at,
            "roles_version": v,
            "owner_unit": event.owner_unit,
            "steward": event.steward,
            "steward_key": person_key(event.steward),
            "tenure_at": at,
            "tenure_version": v,
            "stage": Stage.ANALYSE.value,
            "segment_now": None,
            "segment_future": None,
            "segment_at": None,
            "segment_version": None,
            "opened_at": at,
            "ended": False,
            "merged_into": None,
            # No event changes them later: an opening names them once (calendar capture).
            "domains": list(event.partner.domains),
        }
    if row is None:
        return None  # events of a partnership opened before this read model existed
    if isinstance(event, P.RolesChanged) and _later(at, v, row["roles_at"], row["roles_version"]):
        row.update(roles=[Role(r).value for r in event.roles], roles_at=at, roles_version=v)
    elif isinstance(event, P.OwnershipTransferred) and _later(at, v, row["tenure_at"], row["tenure_version"]):
        row.update(owner_unit=event.owner_unit, steward=event.steward, steward_key=person_key(event.steward))
        row.update(tenure_at=at, tenure_version=v)
    elif isinstance(event, P.StageChanged):
        row["stage"] = event.stage.value  # the domain keeps stage moves in valid-time order
    elif isinstance(event, P.Segmented) and _later(at, v, row["segment_at"], row["segment_version"]):
        row.update(segment_now=event.segment.now.value, segment_future=event.segment.future.value)
        row.update(segment_at=at, segment_version=v)
    elif event.type == MERGED:  # by name: no class of it is needed to fold it
        row.update(merged_into=str(getattr(event, "survivor_id")), stage=Stage.ENDED.value)  # noqa: B009
    # ABSORBED: the survivor stays as it is; the absorbed one says where it went.
    row["ended"] = row["stage"] == Stage.ENDED.value or row["merged_into"] is not None
    return row


def fold_network(row: Row | None, published: Published) -> Row | None:
    event = published.event
    if isinstance(event, N.Joined):
        key = name_key(event.name)
        return {
            "network_id": published.aggregate_id,
            "name": event.name,
            "name_key": key,
            "trigram_count": len(trigrams(key)),
            "role": event.role.value,
            "activity": event.activity.value,
            "purposes": [p.value for p in event.purposes],
            "joined_at": published.occurred_at,
            "ended": False,
        }
    if row is None:
        return None
    if isinstance(event, N.Activated):
        row["activity"] = "active"
    elif isinstance(event, N.Parked):
        row["activity"] = "passive"
    elif isinstance(event, N.Left):
        row["ended"] = True
    return row


@dataclass(frozen=True)
class Kind:
    """One kind of aggregate the directory lists: its table, trigram table and fold."""

    table: str
    id: str
    trigrams: str
    types: frozenset[str]
    created: str  # the contract name of the event that names it
    fold: Callable[[Row | None, Published], Row | None]


def _known(*names: str) -> frozenset[str]:
    return frozenset(name for name in names if name in by_name())


PARTNERSHIPS = Kind(
    "partnerships",
    "partnership_id",
    "partnership_trigrams",
    frozenset(t.type for t in (P.Opened, P.RolesChanged, P.OwnershipTransferred, P.StageChanged, P.Segmented))
    | _known(MERGED, ABSORBED),
    P.Opened.type,
    fold_partnership,
)
NETWORKS = Kind(
    "networks",
    "network_id",
    "network_trigrams",
    frozenset(t.type for t in (N.Joined, N.Activated, N.Parked, N.Left)),
    N.Joined.type,
    fold_network,
)


async def _apply_kind(cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, kind: Kind, events: list[Published]) -> None:
    mine = [p for p in events if p.event.type in kind.types]
    if not mine:
        return
    table, id_ = sql.Identifier(kind.table), sql.Identifier(kind.id)
    await cur.execute(
        sql.SQL("SELECT {id}::text, to_jsonb(d) FROM {rm}.{t} d WHERE {id} = ANY(%s::uuid[])").format(
            id=id_, rm=rm, t=table
        ),
        (list({p.aggregate_id for p in mine}),),
    )
    rows: dict[str, Row | None] = {key: row for key, row in await cur.fetchall()}
    named: dict[str, str] = {}  # aggregate id: normalised name, for names new in this batch
    for published in mine:
        key = published.aggregate_id
        rows[key] = kind.fold(rows.get(key), published)
        if published.event.type == kind.created and rows[key] is not None:
            named[key] = rows[key]["name_key"]  # type: ignore[index]
    changed = [row for key in dict.fromkeys(p.aggregate_id for p in mine) if (row := rows.get(key)) is not None]
    if changed:
        columns = [sql.Identifier(c) for c in changed[0] if c != kind.id]
        await cur.execute(
            sql.SQL(
                "INSERT INTO {rm}.{t} SELECT * FROM jsonb_populate_recordset(NULL::{rm}.{t}, %s::jsonb) "
                "ON CONFLICT ({id}) DO UPDATE SET ({cols}) = ROW({excluded})"
            ).format(
                rm=rm,
                t=table,
                id=id_,
                cols=sql.SQL(", ").join(columns),
                excluded=sql.SQL(", ").join(sql.SQL("EXCLUDED.") + c for c in columns),
            ),
            (json.dumps(changed),),
        )
    pairs = [(key, gram) for key, normalised in named.items() for gram in sorted(trigrams(normalised))]
    if pairs:
        await cur.execute(
            sql.SQL(
                "INSERT INTO {rm}.{t} ({id}, trigram) SELECT * FROM unnest(%s::uuid[], %s::text[]) "
                "ON CONFLICT DO NOTHING"
            ).format(rm=rm, t=sql.Identifier(kind.trigrams), id=id_),
            ([key for key, _ in pairs], [gram for _, gram in pairs]),
        )


class DirectoryProjection:
    name = "directory"
    handles = PARTNERSHIPS.types | NETWORKS.types
    tables: tuple[str, ...] = TABLES
    ddl = DDL

    async def apply(self, cur: psycopg.AsyncCursor[Any], rm: sql.Identifier, events: list[Published]) -> None:
        for kind in (PARTNERSHIPS, NETWORKS):
            await _apply_kind(cur, rm, kind, events)


def directory_projection() -> DirectoryProjection:
    return DirectoryProjection()
