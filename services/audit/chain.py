"""A hash chain over the event store, in global order, kept next to it.

Each link hashes the previous link's hash with the stored bytes of one event (its
position, aggregate id, version, topic and state), so changing, deleting or reordering
any stored event breaks every link from there on. Links are written in the same
transaction as the events, under the event table's exclusive lock, so chain order is
commit order.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.store import EventStore

GENESIS = bytes(32)


def link(previous: bytes, position: int, originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    topic_bytes = topic.encode()
    digest = hashlib.sha256(previous)
    digest.update(struct.pack(">QQ", position, version))
    digest.update(originator_id.bytes)
    digest.update(struct.pack(">I", len(topic_bytes)) + topic_bytes)
    digest.update(struct.pack(">Q", len(state)) + state)
    return digest.digest()


@dataclass(frozen=True)
class Stored:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes


def extend(conn: Any, schema: str, events: Iterable[Stored]) -> None:
    """Appends links for ``events`` (ascending positions) after the current head, on the
    caller's connection and so inside its transaction."""
    store = EventStore(schema)
    head = store.chain_head(conn)
    previous_position, previous_hash = head if head is not None else (0, GENESIS)
    links = []
    for event in events:
        digest = link(previous_hash, event.position, event.originator_id, event.version, event.topic, event.state)
        links.append((event.position, previous_position, digest))
        previous_position, previous_hash = event.position, digest
    store.append_links(conn, links)


def backfill(conn: Any, schema: str) -> int:
    """Chains events recorded before the chain existed (or by anything that skipped it)."""
    with conn.transaction():
        events = [
            Stored(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
            for r in EventStore(schema).lock_unchained(conn)
        ]
        extend(conn, schema, events)
    return len(events)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    head_position: int
    head_hash: str
    failed_at: int | None = None
    problem: str | None = None


def verify(conn: Any, schema: str, upto: int | None = None) -> Verdict:
    """Walks the chain from the start; names the first position that fails."""
    with conn.transaction(), closing(EventStore(schema).chain_walk(conn, upto)) as rows:
        return _walk(rows)


def _walk(rows: Iterable[dict[str, Any]]) -> Verdict:
    previous_position, previous_hash, checked = 0, GENESIS, 0
    for row in rows:
        failure = _check(row, previous_position, previous_hash)
        if failure:
            problem, failed_at = failure
            return Verdict(False, checked, previous_position, previous_hash.hex(), failed_at, problem)
        previous_position, previous_hash, checked = row["position"], bytes(row["hash"]), checked + 1
    return Verdict(True, checked, previous_position, previous_hash.hex())


def _check(row: dict[str, Any], previous_position: int, previous_hash: bytes) -> tuple[str, int] | None:
    """(what is wrong, the first position it concerns), or None for a sound link."""
    position, previous = row["position"], row["previous"]
    if not row["has_event"]:
        return "the event at this position was deleted", position
    if not row["has_link"]:
        return "this event was never chained (recorded around the chain, or its link deleted)", position
    if previous != previous_position:
        # The link names a predecessor we never saw: that one is what went missing.
        return f"position {previous}, which this link follows, is missing", min(previous, position)
    digest = link(
        previous_hash, position, row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
    )
    if digest != bytes(row["hash"]):
        return "the stored event differs from what was chained (changed or moved)", position
    return None
