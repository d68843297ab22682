"""Snapshots: an aggregate's state at a version, stored so loading it costs the same
whatever its length (the latest snapshot plus the events after it).

Why our own table rather than eventsourcing's snapshotting: the library snapshots by
copying the aggregate's ``__dict__`` through its transcoder and reads one aggregate at a
time through its repository, while Verkosto's events are pydantic models mapped by our own
mapper, sealed per data subject, and loaded many aggregates per query (the Kafka ingest
decides batches). So the state is declared here as a pydantic model per aggregate whose
fields carry the same ``Personal`` marks as the events: a snapshot is validated on the way
back in, like an event, and its personal fields are sealed with the same subjects' keys,
so erasing a subject (destroying its key) erases it from snapshots too.

A state model must list exactly the aggregate's state: an aggregate whose attributes
differ from its model is not snapshotted (it is replayed, which is slower but right),
and tests/unit/test_aggregate_cache.py checks they agree.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic
from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

from domain.base import Aggregate
from domain.network import Network
from domain.partnership import Partnership
from domain.values import (
    LeaveReason,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    Partner,
    PersonName,
    Segment,
    Stage,
    Tenure,
)
from services.privacy import KeyStore, seal_state, unseal_state

# A snapshot every this many versions: loading then reads at most this many events past
# the snapshot (and a process's cache usually reads none), while snapshots cost one
# write per hundred events.
SNAPSHOT_EVERY = 100

# eventsourcing's own attributes, kept beside the state.
_BASE = {"_id", "_version", "_created_on", "_modified_on", "_pending_events"}


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def domain_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}


class _TenureState(BaseModel):
    owner_unit: str
    steward: PersonName  # personal, as in the events that set it
    since: AwareDatetime


class PartnershipState(_State):
    partner: Partner
    tenures: list[_TenureState]
    started_at: AwareDatetime
    stage: Stage
    stage_since: AwareDatetime
    segment: Segment | None
    contacts: int
    last_contact_at: AwareDatetime | None
    interest_signals: int
    joint_activities: int
    last_outcome: float | None
    ended: bool
    # Corrections and merges (defaults: snapshots taken before they existed had none).
    retracted: list[int] = []
    corrected: list[int] = []
    outcomes: list[tuple[int, float]] = []
    merged_into: UUID | None = None

    def domain_values(self) -> dict[str, Any]:
        values = super().domain_values()
        values["tenures"] = [Tenure(**t.model_dump()) for t in self.tenures]
        return values


class NetworkState(_State):
    name: str
    purposes: tuple[NetworkPurpose, ...]
    role: NetworkRole
    activity: NetworkActivity
    best_before: date | None
    started_at: AwareDatetime
    members: set[UUID]
    effort_hours: float
    last_outcome: float | None
    left_reason: LeaveReason | None
    ended: bool
    # Owners: a snapshot taken before joins named one had none, as its replay has none.
    tenures: list[_TenureState] = []
    # No default: an older snapshot cannot tell whether an activation was open (a replay
    # can), so it fails to load and the network is replayed whole (services/loading.py).
    activation_open: bool

    def domain_values(self) -> dict[str, Any]:
        values = super().domain_values()
        values["tenures"] = [Tenure(**t.model_dump()) for t in self.tenures]
        return values


STATES: dict[type[Aggregate], type[_State]] = {Partnership: PartnershipState, Network: NetworkState}


class Snapshot(NamedTuple):
    originator_id: UUID
    originator_version: int
    topic: str  # the aggregate's class
    state: bytes  # JSON, personal fields sealed


def can_snapshot(aggregate: Aggregate) -> bool:
    model = STATES.get(type(aggregate))
    return model is not None and set(vars(aggregate)) - _BASE == set(model.model_fields)


def take(aggregate: Aggregate, keys: KeyStore | None) -> Snapshot | None:
    """The aggregate's snapshot, sealed; None if its state is not what its model says."""
    if not can_snapshot(aggregate):
        return None
    model = STATES[type(aggregate)]
    plain = to_jsonable_python({name: getattr(aggregate, name) for name in model.model_fields})
    state = model.model_validate(plain).model_dump(mode="json")
    if keys is not None:
        state = seal_state(model, f"{aggregate.kind}:{aggregate.id}", state, keys)
    document = {
        "created_on": aggregate.created_on.isoformat(),
        "modified_on": aggregate.modified_on.isoformat(),
        "state": state,
    }
    return Snapshot(
        aggregate.id,
        aggregate.version,
        get_topic(type(aggregate)),
        json.dumps(document, separators=(",", ":")).encode(),
    )


def restore(row: dict[str, Any], keys: KeyStore | None) -> Aggregate:
    """The aggregate a stored snapshot row describes (personal fields unsealed)."""
    kind = resolve_topic(row["topic"])
    model = STATES[kind]
    document = json.loads(bytes(row["state"]))
    state = document["state"]
    if keys is not None:
        state = unseal_state(model, state, keys)
    aggregate: Aggregate = object.__new__(kind)
    aggregate.__dict__.update(
        _id=row["originator_id"],
        _version=int(row["originator_version"]),
        _created_on=datetime.fromisoformat(document["created_on"]),
        _modified_on=datetime.fromisoformat(document["modified_on"]),
        _pending_events=[],
    )
    aggregate.__dict__.update(model.model_validate(state).domain_values())
    return aggregate
