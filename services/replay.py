"""The event store as the history a rebuild replays (projections.rebuild.EventSource):
pages of published events in global order, personal fields revealed with the subjects'
keys, since read models hold what was revealed, never ciphertext.

A history can be split into shares by aggregate (``shares``): each share is opened again
in a worker process of the rebuild and reveals only its own aggregates' events, so the
unsealing and decoding are divided between the machine's cores as well as the folding.
"""

from __future__ import annotations

import json
import zlib
from types import TracebackType
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.privacy import KeyStore, published_page, unseal_event
from services.store import EventStore

# eventsourcing writes the aggregate's id first: read from the bytes, a share skips the
# other shares' events without parsing their JSON.
_ID_PREFIX = b'{"originator_id":"'
_ID_END = len(_ID_PREFIX) + 36


def share_of(aggregate_id: str, count: int) -> int:
    """Which of ``count`` shares an aggregate falls in: the same in every process."""
    return zlib.crc32(aggregate_id.encode()) % count


def _aggregate_id(state: bytes) -> str:
    if state.startswith(_ID_PREFIX) and state[_ID_END : _ID_END + 1] == b'"':
        return state[len(_ID_PREFIX) : _ID_END].decode()
    return str(json.loads(state)["originator_id"])


class StoreHistory:
    """One connection and one key store for one rebuild; close it (or use ``with``).
    ``share`` (index, count) keeps only the aggregates of that share."""

    def __init__(self, database_url: str, schema: str, share: tuple[int, int] | None = None) -> None:
        self.database_url = database_url
        self.schema = schema
        self.share = share
        self.store = EventStore(schema)
        self.keys = KeyStore(database_url, schema)
        # Rows as dicts, as from services.db.connect (which imports this module).
        self.conn = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)

    def reveal(self, topic: str, state: dict[str, Any]) -> dict[str, Any]:
        return unseal_event(topic, state, self.keys)

    def last_position(self) -> int:
        return self.store.last_position(self.conn)

    def events_after(self, after: int, until: int | None, limit: int) -> list[dict[str, Any]]:
        return self.events_page(after, until, limit)[0]

    def events_page(self, after: int, until: int | None, limit: int) -> tuple[list[dict[str, Any]], int]:
        """(this history's events among the next ``limit`` rows of the store after
        ``after``, up to ``until``; the position of the last row read). A share's page
        may hold none of the rows it read; the end is when the position stays ``after``."""
        rows = self.store.events_after(self.conn, after, limit, until)
        if not rows:
            return [], after
        read_to = int(rows[-1]["notification_id"])
        if self.share is not None:
            index, count = self.share
            rows = [r for r in rows if share_of(_aggregate_id(bytes(r["state"])), count) == index]
        return published_page(rows, self.reveal, self.keys), read_to

    def shares(self, count: int) -> list[dict[str, Any]]:
        """``count`` disjoint shares of this history by aggregate, together holding every
        event once, each as a plain JSON description a worker process opens with
        projections.rebuild_workers.open_share."""
        return [
            {"factory": f"{__name__}:StoreHistory", "args": [self.database_url, self.schema, [index, count]]}
            for index in range(count)
        ]

    def close(self) -> None:
        self.conn.close()
        self.keys.close()

    def __enter__(self) -> StoreHistory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
