"""Crypto-shredding: personal data is sealed per data subject with a key of its own, kept
outside the event records. Destroying a subject's key erases them from every history
while the events, their hash chain and everything else about them stay intact.

Subjects are named ``person:<name>`` (stewards, contact participants, on_behalf_of) and
``partnership:<id>`` (a person-kind partner's name and the partnership's free text). Only a
hash of the subject's name is stored, so the key table itself names nobody.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel

from contract.events import by_topic, published_event
from contract.personal import EVERY, personal_fields
from domain.values import Personal
from services.store import EventStore
from services.store_snapshots import SnapshotStore

ERASED = "[erased]"
UNREADABLE = "[unreadable]"
CACHE_S = 2.0
PREFIX = "pii:v1:"
# A sealed value's subject in stored JSON bytes: the digest after the prefix.
_SEALED = re.compile(rb'"pii:v1:([0-9a-f]{64}):')
Reveal = Callable[[dict[str, Any]], dict[str, Any]]


@functools.lru_cache(maxsize=65_536)
def subject_hash(subject: str) -> str:
    # Cached: every personal field of every event written hashes its subject. The cache
    # holds subjects' names, so an erasure empties it (_forget_derived).
    return hashlib.sha256(subject.encode()).hexdigest()


class _Nonces:
    """Fresh 96-bit nonces from the operating system's CSPRNG, read a few thousand at a
    time: one ``os.urandom`` per sealed field was a tenth of the ingest's cost. The buffer
    is dropped in a forked child, so two processes never hand out the same bytes."""

    SIZE = 12
    BATCH = 4096

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buffer = b""
        self.offset = 0
        os.register_at_fork(after_in_child=self.drop)

    def drop(self) -> None:
        self.buffer, self.offset = b"", 0

    def take(self) -> bytes:
        with self.lock:
            if self.offset + self.SIZE > len(self.buffer):
                self.buffer, self.offset = os.urandom(self.SIZE * self.BATCH), 0
            nonce = self.buffer[self.offset : self.offset + self.SIZE]
            self.offset += self.SIZE
            return nonce


_nonces = _Nonces()


@functools.lru_cache(maxsize=4096)
def _cipher(key: bytes) -> AESGCM:
    # Keyed by the key itself; emptied with the key cache (KeyStore.forget*), so an erased
    # subject's key does not linger in the process once the erasure is seen.
    return AESGCM(key)


def person(name: str) -> str:
    return f"person:{name}"


def partnership(aggregate_id: str) -> str:
    return f"partnership:{aggregate_id}"


def _forget_derived() -> None:
    """Drops what was worked out from keys and subjects (ciphers, subject hashes): once an
    erasure is seen, no cache in the process holds an erased subject's name or key."""
    _cipher.cache_clear()
    subject_hash.cache_clear()


class KeyStore:
    """Subject keys in PostgreSQL, cached in the process; thread-safe."""

    def __init__(self, database_url: str, schema: str) -> None:
        self.database_url = database_url
        self.store = EventStore(schema)
        # Keys are cached briefly: an erasure reaches every running process within this.
        self.cache: dict[str, tuple[float, bytes | None]] = {}
        self.lock = threading.Lock()
        self.conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = _connect(self.database_url, autocommit=True)
        return self.conn

    def _cached(self, digest: str, now: float) -> tuple[float, bytes | None] | None:
        """The cached entry for ``digest`` if it is recent enough to trust (lock held)."""
        cached = self.cache.get(digest)
        return cached if cached is not None and now - cached[0] < CACHE_S else None

    def key(self, digest: str, create: bool) -> bytes | None:
        with self.lock:
            cached = self._cached(digest, time.monotonic())
            if cached is not None and (cached[1] is not None or not create):
                return cached[1]
            conn = self._connection()
            if create:
                self.store.create_key(conn, digest, AESGCM.generate_key(bit_length=256))
            found = self.store.key(conn, digest)
            self.cache[digest] = (time.monotonic(), found)
            return found

    def prefetch(self, states: Iterable[bytes]) -> None:
        """Looks up, in one query, the keys of every subject sealed in ``states`` that the
        cache lacks: a page of events about many people otherwise costs a round trip per
        person (an audit search of ownership transfers, say)."""
        digests = {m.decode() for state in states for m in _SEALED.findall(state)}
        with self.lock:
            now = time.monotonic()
            missing = sorted(d for d in digests if self._cached(d, now) is None)
            if not missing:
                return
            found = self.store.keys(self._connection(), missing)
            for digest in missing:
                self.cache[digest] = (now, found.get(digest))

    def forget(self, digest: str) -> None:
        with self.lock:
            self.cache.pop(digest, None)
            _forget_derived()

    def forget_all(self) -> None:
        """Drops every cached key (an erasure happened: look each one up again)."""
        with self.lock:
            self.cache.clear()
            _forget_derived()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def published_page(rows: list[dict[str, Any]], reveal: Any, keys: KeyStore | None) -> list[dict[str, Any]]:
    """Stored rows (``topic``, ``state``, ``notification_id``) as published events,
    revealed by ``reveal`` once ``keys`` (if given) has looked up every subject of the page
    in one query: a page about many people otherwise costs a round trip per person, and
    again every few seconds as cached keys expire."""
    states = [bytes(r["state"]) for r in rows]
    if keys is not None:
        keys.prefetch(states)
    return [
        published_event(r["topic"], state, r["notification_id"], reveal) for r, state in zip(rows, states, strict=True)
    ]


def seal(value: str | None, subject: str, keys: KeyStore) -> str | None:
    # Everything new is sealed, even text that merely looks sealed: only the mapper
    # writes events, and it only ever sees plaintext.
    if not isinstance(value, str) or value == ERASED:
        return value  # numbers (an evaluation's outcome) and absent fields are not text
    digest = subject_hash(subject)
    key = keys.key(digest, create=True)
    if key is None:
        return ERASED  # an erased subject stays erased, whatever arrives about them later
    nonce = _nonces.take()
    sealed = _cipher(key).encrypt(nonce, value.encode(), digest.encode())
    return f"{PREFIX}{digest}:{base64.b64encode(nonce + sealed).decode()}"


def unseal(value: Any, keys: KeyStore) -> Any:
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return value
    digest, _, payload = value[len(PREFIX) :].partition(":")
    key = keys.key(digest, create=False) if payload else None
    if key is None:
        return ERASED
    try:
        raw = base64.b64decode(payload)
        return _cipher(key).decrypt(raw[:12], raw[12:], digest.encode()).decode()
    except (ValueError, InvalidTag):
        # Damaged ciphertext: the hash chain names where; readers must not crash on it.
        return UNREADABLE


def _places(node: Any, path: tuple[str, ...]) -> list[tuple[Any, Any]]:
    """Every (parent, key) that ``path`` leads to in stored JSON. Level by level, without
    recursion or closures: it runs for every personal field of every event written."""
    parents = [node]
    for step in path[:-1]:
        children: list[Any] = []
        for parent in parents:
            if step == EVERY:
                if isinstance(parent, list):
                    children.extend(parent)
            elif isinstance(parent, dict) and step in parent:
                children.append(parent[step])
        parents = children
    last = path[-1]
    if last == EVERY:
        return [(parent, i) for parent in parents if isinstance(parent, list) for i in range(len(parent))]
    return [(parent, last) for parent in parents if isinstance(parent, dict) and last in parent]


def _walk(topic: str, state: dict[str, Any], change: Callable[[Any, str], Any]) -> dict[str, Any]:
    """Applies ``change(value, subject)`` to every personal field of a stored event, as
    its class marks them (see ``contract.personal``)."""
    kind = by_topic().get(topic)
    if kind is None:
        return state  # not an event of ours (nothing personal to find)
    return _walk_fields(personal_fields(kind.cls), f"{kind.aggregate_type}:{state['originator_id']}", state, change)


def _walk_fields(
    fields: Any, own_subject: str, state: dict[str, Any], change: Callable[[Any, str], Any]
) -> dict[str, Any]:
    for field in fields:
        mark: Personal = field.mark
        by_person = mark.subject == "person"
        for parent, key in _places(state, field.path):
            if mark.only_for_persons and parent.get("kind") != "person":
                continue
            value = parent[key]
            parent[key] = change(value, person_of(value) if by_person else own_subject)
    return state


def person_of(value: Any) -> str:
    # When sealing, value is the plain name; when unsealing, the subject is not needed.
    return person(value) if isinstance(value, str) else ""


def seal_event(topic: str, state: dict[str, Any], keys: KeyStore, erased: list[str] | None = None) -> dict[str, Any]:
    """``erased``, if given, collects the subjects whose plaintext was stored as ERASED
    (their key is gone): the stored event then says less than the domain event did."""
    if topic not in by_topic():
        # Fail closed: an event the contract does not know cannot say what is personal.
        raise LookupError(f"{topic} is not an event of the contract; declare it on its aggregate")
    if erased is None:
        return _walk(topic, state, lambda value, subject: seal(value, subject, keys))

    def sealing(value: Any, subject: str) -> Any:
        sealed = seal(value, subject, keys)
        if sealed == ERASED and value != ERASED:
            erased.append(subject)
        return sealed

    return _walk(topic, state, sealing)


def unseal_event(topic: str, state: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    return _walk(topic, state, lambda value, _subject: unseal(value, keys))


def unseal_kept(topic: str, state: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    """A stored event as folding it into its aggregate needs it: only the personal fields
    its class keeps (``keeps_personal``) are unsealed; the others read as ERASED, which
    every personal field accepts and which ``apply`` never reads. A command then costs
    no key lookups or decryption for the contacts' participants it does not look at."""
    kind = by_topic().get(topic)
    if kind is None or kind.cls.keeps_personal is None:
        return unseal_event(topic, state, keys)
    kept, unread = _kept_and_unread(kind.cls)
    _walk_fields(kept, "", state, lambda value, _subject: unseal(value, keys))
    return _walk_fields(unread, "", state, lambda value, _subject: ERASED if _is_sealed(value) else value)


@functools.cache
def _kept_and_unread(event: type[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    keeps = event.keeps_personal or frozenset()
    fields = personal_fields(event)
    return tuple(f for f in fields if f.path[0] in keeps), tuple(f for f in fields if f.path[0] not in keeps)


def _is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal_state(model: type[BaseModel], own_subject: str, state: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    """Seals the personal fields of an aggregate's snapshot (JSON of ``model``, whose
    fields carry the same ``Personal`` marks as the events) with the same subjects' keys:
    a snapshot then forgets an erased subject exactly as the events do."""
    return _walk_fields(personal_fields(model), own_subject, state, lambda value, subject: seal(value, subject, keys))


def unseal_state(model: type[BaseModel], state: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    return _walk_fields(personal_fields(model), "", state, lambda value, _subject: unseal(value, keys))


def erase(database_url: str, schema: str, subject: str) -> list[str]:
    """Destroys the subject's key and scrubs the audit-read log of their plaintext;
    returns the plaintexts that were scrubbed. Read models must be rebuilt afterwards."""
    digest = subject_hash(subject)
    keys = KeyStore(database_url, schema)
    plaintexts = [subject.split(":", 1)[1]] if subject.startswith("person:") else []
    if subject.startswith("partnership:"):
        plaintexts += _partner_names(database_url, schema, subject.split(":", 1)[1], keys)
    keys.close()
    with _connect(database_url) as conn, conn.transaction():
        # Scrub first: if it fails, the key still exists and the erasure can be retried.
        _scrub_audit_reads(conn, sql.Identifier(schema), plaintexts)
        EventStore(schema).erase_key(conn, digest)
        # Tells every process's aggregate cache to drop what it revealed (same commit).
        SnapshotStore(schema).bump_erasure_generation(conn)
    return plaintexts


def _connect(database_url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    # Rows as dicts, as from services.db.connect (which this module cannot import: the
    # application it imports imports this).
    return psycopg.connect(database_url, row_factory=dict_row, **kwargs)


def _scrub_audit_reads(conn: psycopg.Connection[Any], schema: sql.Identifier, plaintexts: list[str]) -> None:
    """Replaces the plaintexts in the logged paths and query values (never in keys)."""
    from psycopg.types.json import Jsonb

    for text in plaintexts:
        rows = conn.execute(
            sql.SQL(
                "SELECT id, path, query FROM {}.audit_reads WHERE strpos(path, %s) > 0 "
                "OR EXISTS (SELECT 1 FROM jsonb_each_text(query) q WHERE strpos(q.value, %s) > 0)"
            ).format(schema),
            (text, text),
        ).fetchall()
        for row in rows:
            cleaned = {k: v.replace(text, ERASED) if isinstance(v, str) else v for k, v in row["query"].items()}
            conn.execute(
                sql.SQL("UPDATE {}.audit_reads SET path = %s, query = %s WHERE id = %s").format(schema),
                (row["path"].replace(text, ERASED), Jsonb(cleaned), row["id"]),
            )


def _partner_names(database_url: str, schema: str, aggregate_id: str, keys: KeyStore) -> list[str]:
    import json

    with _connect(database_url) as conn:
        rows = EventStore(schema).first_events(conn, aggregate_id)
    names = []
    for row in rows:
        opened = unseal_event(row["topic"], json.loads(bytes(row["state"])), keys)
        if opened.get("partner", {}).get("kind") == "person" and opened["partner"]["name"] != ERASED:
            names.append(opened["partner"]["name"])
    return names
