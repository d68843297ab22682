"""Loading aggregates without replaying their histories: from this process's cache or
the latest snapshot, plus the events after it (services/aggregate_cache.py,
services/snapshots.py), for many aggregates in one round trip."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from pydantic import ValidationError

from domain.base import Aggregate
from services.aggregate_cache import AggregateCache, Entry
from services.privacy import KeyStore
from services.snapshots import SNAPSHOT_EVERY, Snapshot, take
from services.snapshots import restore as restore_snapshot

log = logging.getLogger(__name__)


@runtime_checkable
class SnapshotPort(Protocol):
    """What a recorder offers for loading from snapshots and caches and for paging
    history (services/eventstore.py's VerkostoRecorder; a recorder without it is
    replayed in full, as eventsourcing's in-memory one of the unit tests is)."""

    def events_since(self, marks: dict[UUID, int]) -> list[dict[str, Any]]: ...
    def load_rows(self, marks: dict[UUID, int | None]) -> list[dict[str, Any]]: ...
    def save_snapshots(self, snapshots: Sequence[Snapshot]) -> None: ...
    def first_topic(self, aggregate_id: UUID) -> str | None: ...
    def history_page(self, aggregate_id: UUID, **page: Any) -> list[dict[str, Any]]: ...


class IncrementalLoading:
    """The application's loading, mixed into services.application.Verkosto."""

    recorder: ApplicationRecorder
    cache: AggregateCache
    keys: KeyStore | None
    snapshot_every = SNAPSHOT_EVERY
    # Off: every load replays each aggregate's whole history (what the benchmark compares
    # against, and an escape hatch should a snapshot or the cache ever be in doubt).
    incremental_loading = True

    def stored_events(self, aggregate_ids: Iterable[UUID]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _folded_event(self, row: dict[str, Any]) -> Any:
        raise NotImplementedError

    def load_many(self, aggregate_ids: set[UUID]) -> dict[UUID, Aggregate]:
        """Many aggregates at their latest versions, each the caller's own copy: from this
        process's cache or the latest snapshot, plus the events after it, in one query
        for them all (one query per aggregate would cap ingest)."""
        return {i: e.aggregate for i, e in self._load(aggregate_ids)[1].items()}

    def _load(self, aggregate_ids: set[UUID]) -> tuple[int, dict[UUID, Entry]]:
        """(erasure generation, aggregate id -> entry) for the ids that exist."""
        if not aggregate_ids:
            return 0, {}
        if not self.incremental_loading or not isinstance(self.recorder, SnapshotPort):
            replayed: dict[UUID, Any] = {}
            for row in self.stored_events(aggregate_ids):
                key = row["originator_id"]
                replayed[key] = self._folded_event(row).mutate(replayed.get(key))
            return 0, {i: Entry(a, 0) for i, a in replayed.items()}
        generation, bases, rows = self._rows(self.recorder, aggregate_ids)
        aggregates: dict[UUID, Any] = {i: e.aggregate for i, e in bases.items()}
        for row in rows:
            key = row["originator_id"]
            aggregates[key] = self._folded_event(row).mutate(aggregates.get(key))
        snapshot_versions = {i: bases[i].snapshot_version if i in bases else 0 for i in aggregates}
        self._remember(aggregates.values(), snapshot_versions, generation)
        return generation, {i: Entry(a, snapshot_versions[i]) for i, a in aggregates.items()}

    def _rows(
        self, recorder: SnapshotPort, aggregate_ids: set[UUID]
    ) -> tuple[int, dict[UUID, Entry], list[dict[str, Any]]]:
        """(erasure generation, starting points from the cache or snapshots, the events
        to apply after them), usually in one round trip to the store."""
        cached_under = self.cache.generation
        bases = {i: e for i in aggregate_ids if (e := self.cache.get(i)) is not None}
        rows = recorder.load_rows({i: bases[i].aggregate.version if i in bases else None for i in aggregate_ids})
        generation = int(rows[0]["originator_version"])
        # Someone was erased since: what the cache held, and keys cached before it, must
        # not reveal them again. Start over from snapshots (sealed) alone.
        self.cache.observe(generation, self.keys.forget_all if self.keys is not None else None)
        if bases and cached_under != generation:
            bases = {}
            rows = recorder.load_rows(dict.fromkeys(aggregate_ids))
        events = [r for r in rows if r["part"] == 2]
        for row in rows:
            if row["part"] != 1:
                continue
            try:
                restored = restore_snapshot(row, self.keys)
            except (ValidationError, KeyError, LookupError, ValueError):
                # A snapshot that no longer loads is ignored: replay that aggregate whole.
                key = row["originator_id"]
                events = [r for r in events if r["originator_id"] != key] + recorder.events_since({key: 0})
                continue
            bases[restored.id] = Entry(restored, restored.version)
        events.sort(key=lambda r: (str(r["originator_id"]), r["originator_version"]))
        return generation, bases, events

    def _remember(self, aggregates: Iterable[Aggregate], snapshot_versions: dict[UUID, int], generation: int) -> None:
        """Snapshots the aggregates that moved SNAPSHOT_EVERY versions past their last
        snapshot, and caches them all (copies: the caller goes on mutating its own).
        Called with loaded state only, which is what a full replay would give."""
        if not self.incremental_loading or not isinstance(self.recorder, SnapshotPort):
            return
        aggregates = list(aggregates)
        due = [a for a in aggregates if a.version - snapshot_versions.get(a.id, 0) >= self.snapshot_every]
        if due:
            # In a transaction of its own, outside any command's: a snapshot is an
            # optimisation (the events' version check keeps writers consistent), so
            # failing to write one fails nothing; the next load tries again.
            try:
                snapshots = [s for a in due if (s := take(a, self.keys)) is not None]
                self.recorder.save_snapshots(snapshots)
            except Exception:
                log.warning("could not write %d snapshot(s)", len(due), exc_info=True)
            else:
                snapshot_versions.update({s.originator_id: s.originator_version for s in snapshots})
        for aggregate in aggregates:
            self.cache.put(aggregate, snapshot_versions.get(aggregate.id, 0), generation)

    def _remember_committed(
        self, aggregates: Iterable[Aggregate], snapshot_versions: dict[UUID, int], generation: int
    ) -> None:
        """Caches aggregates just committed, holding exactly what their stored events say
        (the caller leaves out any whose stored events say less). They are handed over,
        not copied: a committed decision's aggregates are never mutated again (each
        decision loads copies of its own)."""
        if not self.incremental_loading or not isinstance(self.recorder, SnapshotPort):
            return
        for aggregate in aggregates:
            self.cache.put(aggregate, snapshot_versions.get(aggregate.id, 0), generation, owned=True)
