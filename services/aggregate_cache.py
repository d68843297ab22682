"""A bounded, process-local cache of aggregates, safe beside other writer processes.

It never answers on its own: a load still asks the event store for the events after the
cached version (one indexed range scan, usually empty), so what another process wrote is
always applied, and a commit that lost a race (the version check of the event store's
primary key) simply decides again on the state that load brings. Callers get deep copies
and only committed aggregates are put back: deciding mutates aggregates, and a rejected or
conflicting batch must not leave half-applied state behind.

Cached aggregates hold personal data in plaintext, so each load also reads the erasure
generation (services/privacy.py bumps it in the erasing transaction); when it moved, the
cache drops everything, and so does the key cache, before anything is revealed again.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple
from uuid import UUID

from pydantic import BaseModel

from domain.base import Aggregate

DEFAULT_CAPACITY = 10_000  # aggregates; a partnership is a few kilobytes in memory


# Values copying never needs to descend into: immutable, or (frozen pydantic models, the
# domain's values and events) never changed in place by the domain, which replaces them.
_ATOMS: tuple[type, ...] = (
    str,
    bytes,
    int,
    float,
    bool,
    type(None),
    UUID,
    datetime,
    date,
    time,
    timedelta,
    Decimal,
    Enum,
)


_EXACT_ATOMS = frozenset({str, int, float, bool, type(None), UUID, datetime, date})


def _immutable(value: Any) -> bool:
    if type(value) in _EXACT_ATOMS:  # the common case, without walking isinstance's MRO
        return True
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, BaseModel):
        return bool(value.model_config.get("frozen"))
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    return False


def _copy_value(value: Any) -> Any:
    if _immutable(value):
        return value
    if type(value) in (list, set) and all(_immutable(v) for v in value):
        return type(value)(value)
    if type(value) is dict and all(_immutable(k) and _immutable(v) for k, v in value.items()):
        return dict(value)
    return copy.deepcopy(value)


def private_copy(aggregate: Aggregate) -> Aggregate:
    """What ``copy.deepcopy`` gives for an aggregate, several times faster: a new instance
    whose mutable containers (lists, sets, dicts of immutable values) are copied and whose
    immutable values are shared; anything else is deep-copied. Deep copies were most of a
    cached load's cost."""
    clone: Aggregate = object.__new__(type(aggregate))
    clone.__dict__.update({name: _copy_value(value) for name, value in vars(aggregate).items()})
    return clone


class Entry(NamedTuple):
    aggregate: Aggregate
    snapshot_version: int  # the version of its latest stored snapshot (0: none)


class AggregateCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[UUID, Entry] = OrderedDict()
        self.generation: int | None = None
        self.lock = threading.Lock()

    def observe(self, generation: int, on_change: Callable[[], None] | None = None) -> bool:
        """Records the erasure generation a load read; True (and emptied) if it moved.
        ``on_change`` (dropping the key cache) runs under the lock, so no other thread
        that read the new generation unseals anything before it has run."""
        with self.lock:
            if generation == self.generation:
                return False
            self.entries.clear()
            self.generation = generation
            if on_change is not None:
                on_change()
            return True

    def get(self, aggregate_id: UUID) -> Entry | None:
        """A private copy of the cached aggregate, or None."""
        with self.lock:
            entry = self.entries.get(aggregate_id)
            if entry is None:
                return None
            self.entries.move_to_end(aggregate_id)
            return Entry(private_copy(entry.aggregate), entry.snapshot_version)

    def put(self, aggregate: Aggregate, snapshot_version: int, generation: int, *, owned: bool = False) -> None:
        """Keeps a copy of a committed (or freshly loaded) aggregate, unless the cache saw
        an erasure since ``generation`` was read or already holds a later version.
        ``owned``: the caller hands the aggregate itself over and never touches it again
        (a committed decision's), so no copy is needed."""
        if aggregate.pending_events or self.capacity <= 0:
            return  # uncommitted changes never enter the cache
        with self.lock:
            if generation != self.generation:
                return
            held = self.entries.get(aggregate.id)
            if held is not None and held.aggregate.version > aggregate.version:
                return
            if (
                held is not None
                and held.aggregate.version == aggregate.version
                and held.snapshot_version >= snapshot_version
            ):
                # The same version (loaded from this very entry, say): nothing new to copy.
                self.entries.move_to_end(aggregate.id)
                return
            self.entries[aggregate.id] = Entry(aggregate if owned else private_copy(aggregate), snapshot_version)
            self.entries.move_to_end(aggregate.id)
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)

    def discard(self, aggregate_id: UUID) -> None:
        with self.lock:
            self.entries.pop(aggregate_id, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
