"""`as_of/known_at` from the nearest checkpoint instead of the whole history.

The question folds the events that occurred by ``as_of`` and were recorded by
``known_at``, in valid time (domain/history.py). A snapshot of the aggregate cannot start
that fold: it holds state in recorded order. So this keeps checkpoints of the fold itself:
the view of an aggregate's first v events in valid-time order, with the latest occurred_at
and recorded_at among them. A checkpoint is a correct start for a question when

  (a) all its events are selected: max_occurred_at <= as_of, max_recorded_at <= known_at
      (the store picks the latest such checkpoint: the maxima grow with v), and
  (b) every selected event after it sorts after all of its events: none occurred before
      its max_occurred_at (an equal moment sorts after, by version).

Then the selected events, in valid time, are the checkpoint's followed by the selected
later ones, and the fold just continues. When (b) fails (an event recorded later was
back-dated before the checkpoint's events), the question is answered by the full replay,
as before: correct, only slower.

Checkpoints are written by these reads (every SNAPSHOT_EVERY versions, past the latest
one), not by commands, so writes stay as they are. Their personal fields are sealed with
the subjects' keys, as events and snapshots are: an erasure reaches them too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from pydantic import AwareDatetime, BaseModel
from pydantic_core import to_jsonable_python

from domain.base import Aggregate, DomainEvent
from domain.history import known
from domain.network import Network
from domain.values import Partner, PersonName
from services.privacy import seal_state, unseal_state

Fold = Callable[..., dict[str, Any] | None]  # (events, as_of, known_at, start) -> view
FAR = datetime.max.replace(tzinfo=UTC)
log = logging.getLogger(__name__)


class _PartnershipView(BaseModel):
    partner: Partner
    owner_unit: str
    steward: PersonName
    stage: str
    stage_since: AwareDatetime
    segment: dict[str, Any] | None
    contacts: int
    last_contact_at: AwareDatetime | None
    interest_signals: int
    joint_activities: int
    last_outcome: float | None
    started_at: AwareDatetime
    ended: bool
    events_known: int


class _NetworkView(BaseModel):
    name: str
    purposes: list[str]
    role: str
    activity: str
    best_before: date | None
    members: list[str]
    effort_hours: float
    last_outcome: float | None
    started_at: AwareDatetime
    left_reason: str | None
    ended: bool
    events_known: int


@runtime_checkable
class CheckpointPort(Protocol):
    def checkpoint_for(self, aggregate_id: UUID, as_of: datetime, known_at: datetime) -> dict[str, Any] | None: ...
    def save_checkpoints(self, checkpoints: Sequence[tuple[UUID, int, datetime, datetime, bytes]]) -> None: ...
    def events_since(self, marks: dict[UUID, int]) -> list[dict[str, Any]]: ...
    def events_known(
        self, aggregate_id: UUID, after: int, as_of: datetime, known_at: datetime
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Checkpoint:
    version: int
    max_occurred: datetime
    max_recorded: datetime
    view: dict[str, Any]


def state_then(
    app: Any, aggregate_id: UUID, kind: type[Aggregate], fold: Fold, as_of: datetime, known_at: datetime
) -> dict[str, Any] | None:
    """The aggregate's view at ``as_of`` by what was recorded at ``known_at`` (None if
    not known then); raises NotFound if there is no such aggregate."""
    app.require(aggregate_id, kind)
    recorder = app.recorder
    if not app.incremental_loading or not isinstance(recorder, CheckpointPort):
        return fold(app.domain_events(aggregate_id), as_of, known_at)
    model = _VIEWS[kind is Network]
    row = recorder.checkpoint_for(aggregate_id, as_of, known_at)
    latest = int(row["latest"]) if row else 0
    start = _decode(row, model, app.keys) if row and row["originator_version"] is not None else None
    if start is not None and start.version < latest:
        # A moment before the latest checkpoint: later checkpoints exist, so only the
        # events that moment selects are read (usually none past this checkpoint).
        selected = [app._domain_event(r) for r in recorder.events_known(aggregate_id, start.version, as_of, known_at)]
        if any(e.meta.occurred_at < start.max_occurred for e in selected):
            return fold(app.domain_events(aggregate_id), as_of, known_at)  # back-dated past it
        return fold(selected, as_of, known_at, start.view)
    tail = _events_after(app, aggregate_id, start.version if start else 0)
    if start is not None and any(e.meta.occurred_at < start.max_occurred for e in known(tail, as_of, known_at)):
        start, tail = None, app.domain_events(aggregate_id)  # back-dated past the checkpoint
    answer = fold(tail, as_of, known_at, start.view if start else None)
    _extend(app, aggregate_id, kind, fold, model, start, tail, latest)
    return answer


def _events_after(app: Any, aggregate_id: UUID, version: int) -> list[DomainEvent]:
    return [app._domain_event(r) for r in app.recorder.events_since({aggregate_id: version})]


def _extend(
    app: Any,
    aggregate_id: UUID,
    kind: type[Aggregate],
    fold: Fold,
    model: type[BaseModel],
    start: Checkpoint | None,
    tail: list[DomainEvent],
    latest: int,
) -> None:
    """Writes the checkpoints due past the latest one (every ``snapshot_every`` versions)."""
    every = app.snapshot_every
    base = start.version if start else 0
    due = [v for v in range((latest // every + 1) * every, base + len(tail) + 1, every)]
    if not due:
        return
    if start is not None and any(e.meta.occurred_at < start.max_occurred for e in tail[: due[-1] - base]):
        start, tail, base = None, app.domain_events(aggregate_id), 0  # continuing would be wrong
    try:
        rows = [
            _checkpoint(app, aggregate_id, kind, fold, model, start, tail[: version - base], version) for version in due
        ]
        app.recorder.save_checkpoints([r for r in rows if r is not None])
    except Exception:  # an optimisation: the answer is already right, the next read retries
        log.warning("could not write %d history checkpoint(s)", len(due), exc_info=True)


def _checkpoint(
    app: Any,
    aggregate_id: UUID,
    kind: type[Aggregate],
    fold: Fold,
    model: type[BaseModel],
    start: Checkpoint | None,
    prefix: list[DomainEvent],
    version: int,
) -> tuple[UUID, int, datetime, datetime, bytes] | None:
    view = fold(prefix, FAR, FAR, start.view if start else None)
    if view is None:
        return None
    occurred = max([e.meta.occurred_at for e in prefix] + ([start.max_occurred] if start else []))
    recorded = max([e.meta.recorded_at for e in prefix] + ([start.max_recorded] if start else []))
    return aggregate_id, version, occurred, recorded, _encode(view, model, f"{kind.kind}:{aggregate_id}", app)


def _encode(view: dict[str, Any], model: type[BaseModel], own_subject: str, app: Any) -> bytes:
    state = to_jsonable_python(view)
    if app.keys is not None:
        state = seal_state(model, own_subject, state, app.keys)
    return json.dumps(state, separators=(",", ":")).encode()


def _decode(row: dict[str, Any], model: type[BaseModel], keys: Any) -> Checkpoint:
    state = json.loads(bytes(row["view"]))
    if keys is not None:
        state = unseal_state(model, state, keys)
    parsed = model.model_validate(state)
    view = parsed.model_dump()
    if isinstance(parsed, _PartnershipView):
        view["partner"] = parsed.partner.model_dump(mode="json")
    return Checkpoint(int(row["originator_version"]), row["max_occurred_at"], row["max_recorded_at"], view)


_VIEWS: dict[bool, type[BaseModel]] = {False: _PartnershipView, True: _NetworkView}
