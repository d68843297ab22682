"""Fakes of the project's own ports, for unit tests without PostgreSQL.

``MemoryRecorder`` is eventsourcing's in-memory (POPO) application recorder with what
Verkosto's PostgreSQL recorder adds: the command log written with the events (a command
id seen before aborts the whole save, as the primary key does), consumer positions by
compare-and-set, outcome tallies, and the reads the application makes through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.utils import get_topic

from services.application import Verkosto, utc_now
from services.eventstore import CommandRecord, ConsumerPosition, StalePosition


class MemoryRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.command_log: dict[str, tuple[UUID, int]] = {}
        self.positions: dict[tuple[str, str, int], int] = {}
        self.tallies: dict[tuple[str, str, str], int] = {}

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        positions: Sequence[ConsumerPosition] = kwargs.get("positions", ())
        with self._database_lock:
            # Every check before any write: one transaction, all or nothing.
            if any(c.command_id in self.command_log for c in commands):
                raise IntegrityError("command id already recorded")
            for p in positions:
                stored = self.positions.get((p.consumer, p.topic, p.partition))
                if stored is not None and stored > p.first_offset:
                    raise StalePosition(f"partition {p.partition} already moved past this batch")
            ids = super()._insert_events(stored_events, **kwargs)
            self.command_log.update({c.command_id: (c.aggregate_id, c.version) for c in commands})
            self.positions.update({(p.consumer, p.topic, p.partition): p.next_offset for p in positions})
            for key, count in kwargs.get("tallies", {}).items():
                self.tallies[key] = self.tallies.get(key, 0) + count
            return ids

    def _row(self, index: int) -> dict[str, Any]:
        s = self._stored_events[index]
        return {
            "originator_id": s.originator_id,
            "originator_version": s.originator_version,
            "topic": s.topic,
            "state": s.state,
            "notification_id": index + 1,
        }

    def commands(self, command_ids: list[str]) -> list[dict[str, Any]]:
        with self._database_lock:
            rows = []
            for command_id in command_ids:
                if command_id in self.command_log:
                    aggregate_id, version = self.command_log[command_id]
                    index = self._stored_events_index[str(aggregate_id)][version]
                    rows.append(
                        {
                            "command_id": command_id,
                            "aggregate_id": aggregate_id,
                            "version": version,
                            "notification_id": index + 1,
                        }
                    )
            return rows

    def events_of(self, aggregate_ids: Iterable[UUID]) -> list[dict[str, Any]]:
        with self._database_lock:
            return [
                self._row(index)
                for aggregate_id in sorted(set(aggregate_ids), key=str)
                for _, index in sorted(self._stored_events_index[str(aggregate_id)].items())
            ]

    def event_at(self, position: int) -> dict[str, Any] | None:
        with self._database_lock:
            return self._row(position - 1) if 0 < position <= len(self._stored_events) else None


class MemoryFactory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return MemoryRecorder()


def memory_app(clock: Callable[[], datetime] = utc_now) -> Verkosto:
    """The real application on the in-memory recorder (no key store: nothing is sealed)."""
    return Verkosto({"PERSISTENCE_MODULE": get_topic(MemoryFactory)}, clock=clock)
