"""The event store as the history a rebuild replays (projections.rebuild.EventSource):
pages of published events in global order, personal fields revealed with the subjects'
keys, since read models hold what was revealed, never ciphertext."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contract.events import published_event
from services.privacy import KeyStore, unseal_event
from services.store import EventStore


class StoreHistory:
    """One connection and one key store for one rebuild; close it (or use ``with``)."""

    def __init__(self, database_url: str, schema: str) -> None:
        self.store = EventStore(schema)
        self.keys = KeyStore(database_url, schema)
        # Rows as dicts, as from services.db.connect (which imports this module).
        self.conn = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)

    def reveal(self, topic: str, state: dict[str, Any]) -> dict[str, Any]:
        return unseal_event(topic, state, self.keys)

    def last_position(self) -> int:
        return self.store.last_position(self.conn)

    def events_after(self, after: int, until: int | None, limit: int) -> list[dict[str, Any]]:
        rows = self.store.events_after(self.conn, after, limit, until)
        return [published_event(r["topic"], bytes(r["state"]), r["notification_id"], self.reveal) for r in rows]

    def close(self) -> None:
        self.conn.close()
        self.keys.close()

    def __enter__(self) -> StoreHistory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
