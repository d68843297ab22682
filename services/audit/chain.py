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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql

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


def extend(cur: Any, schema: str, events: Iterable[Stored]) -> None:
    """Appends links for ``events`` (ascending positions) after the current head."""
    ids = sql.Identifier(schema)
    head = cur.execute(
        sql.SQL("SELECT position, hash FROM {}.event_chain ORDER BY position DESC LIMIT 1").format(ids)
    ).fetchone()
    if head is None:
        previous_position, previous_hash = 0, GENESIS
    elif isinstance(head, dict):
        previous_position, previous_hash = head["position"], bytes(head["hash"])
    else:
        previous_position, previous_hash = head[0], bytes(head[1])
    rows = []
    for event in events:
        digest = link(previous_hash, event.position, event.originator_id, event.version, event.topic, event.state)
        rows.append((event.position, previous_position, digest))
        previous_position, previous_hash = event.position, digest
    if rows:
        # One statement with plain arrays: executemany would pipeline, and a pipelined
        # batch can deadlock over the embedded PostgreSQL's Unix socket.
        cur.execute(
            sql.SQL(
                "INSERT INTO {}.event_chain (position, previous, hash) "
                "SELECT p, q, decode(h, 'hex') FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS r(p, q, h)"
            ).format(ids),
            ([r[0] for r in rows], [r[1] for r in rows], [r[2].hex() for r in rows]),
        )


def backfill(conn: Any, schema: str) -> int:
    """Chains events recorded before the chain existed (or by anything that skipped it)."""
    ids = sql.Identifier(schema)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("LOCK TABLE {}.verkosto_events IN EXCLUSIVE MODE").format(ids))
        rows = cur.execute(
            sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {0}.verkosto_events WHERE notification_id > "
                "(SELECT coalesce(max(position), 0) FROM {0}.event_chain) ORDER BY notification_id"
            ).format(ids)
        ).fetchall()
        events = [Stored(*_values(r)) for r in rows]
        extend(cur, schema, events)
    return len(events)


def _values(row: Any) -> tuple[int, UUID, int, str, bytes]:
    if isinstance(row, dict):
        row = (row["notification_id"], row["originator_id"], row["originator_version"], row["topic"], row["state"])
    return row[0], row[1], row[2], row[3], bytes(row[4])


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
    ids = sql.Identifier(schema)
    with conn.transaction(), conn.cursor(name="verkosto_audit_verify") as cur:
        return _walk(cur, ids, upto)


def _walk(cur: Any, ids: sql.Identifier, upto: int | None) -> Verdict:
    cur.execute(
        sql.SQL(
            "SELECT coalesce(e.notification_id, c.position) AS position, e.notification_id IS NOT NULL AS has_event, "
            "c.position IS NOT NULL AS has_link, e.originator_id, e.originator_version, e.topic, e.state, "
            "c.previous, c.hash FROM {0}.verkosto_events e FULL JOIN {0}.event_chain c "
            "ON c.position = e.notification_id WHERE (%s::bigint IS NULL OR coalesce(e.notification_id, c.position) <= %s) "
            "ORDER BY 1"
        ).format(ids),
        (upto, upto),
    )
    previous_position, previous_hash, checked = 0, GENESIS, 0
    for row in _rows(cur):
        position = row[0]
        failure = _check(row, previous_position, previous_hash)
        if failure:
            problem, failed_at = failure
            return Verdict(False, checked, previous_position, previous_hash.hex(), failed_at, problem)
        previous_position, previous_hash, checked = position, bytes(row[8]), checked + 1
    return Verdict(True, checked, previous_position, previous_hash.hex())


def _rows(cur: Any) -> Iterable[Sequence[Any]]:
    for row in cur:
        yield tuple(row.values()) if isinstance(row, dict) else row


def _check(row: Sequence[Any], previous_position: int, previous_hash: bytes) -> tuple[str, int] | None:
    """(what is wrong, the first position it concerns), or None for a sound link."""
    position, has_event, has_link, originator_id, version, topic, state, previous, digest = row
    if not has_event:
        return "the event at this position was deleted", position
    if not has_link:
        return "this event was never chained (recorded around the chain, or its link deleted)", position
    if previous != previous_position:
        # The link names a predecessor we never saw: that one is what went missing.
        return f"position {previous}, which this link follows, is missing", min(previous, position)
    if link(previous_hash, position, originator_id, version, topic, bytes(state)) != bytes(digest):
        return "the stored event differs from what was chained (changed or moved)", position
    return None
