"""API tokens: random bearer secrets, stored only as SHA-256 hashes, each with scopes,
an optional expiry, a revocation time, when it was last used, and optionally the person
it belongs to."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.people import person_key

SCOPES = ("events:write", "history:read", "dashboards:read", "admin")
# A busy client would otherwise write a row on every request: last_used_at is coarse.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    # The person the token belongs to, as given when it was issued, and their identity:
    # what `steward=me` means. None for a token issued without --person.
    person: str | None = None
    person_key: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class TokenInfo:
    """Everything about a token except its secret (which is never stored)."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    person: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_json(self, now: datetime) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "status": self.status(now),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
            "person": self.person,
        }


class TokenError(ValueError):
    """A token command that cannot be carried out (unknown id, ambiguous name, …)."""


def hash_token(token: str) -> str:
    # Tokens are 256-bit random, so a fast unsalted hash is enough to keep them unusable
    # if the table leaks, while keeping every request's lookup a single index probe.
    return hashlib.sha256(token.encode()).hexdigest()


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d`` or ``2w``."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise TokenError(f"{text!r} is not a duration: use a positive number and s, m, h, d or w (e.g. 30d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _table(schema: str) -> sql.Composed:
    return sql.SQL("{}.api_tokens").format(sql.Identifier(schema))


def _one(conn: psycopg.Connection[Any], query: sql.Composed, params: Any = None) -> dict[str, Any] | None:
    # A dict_row cursor: rows are dicts whatever the connection's own row factory.
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def _all(conn: psycopg.Connection[Any], query: sql.Composed, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def issue_token(
    conn: psycopg.Connection[Any],
    schema: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    person: str | None = None,
) -> str:
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; choose from {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("a token needs at least one scope")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("the expiry needs a UTC offset, e.g. 2027-01-01T00:00:00+00:00")
    key = person_key(person) if person is not None else None
    if key == "":
        raise ValueError("a token's person needs a name, not only spaces")
    token = "vk_" + secrets.token_urlsafe(32)
    # The expiry is compared with the database's clock, the one authenticate() uses.
    row = _one(
        conn,
        sql.SQL(
            "INSERT INTO {} (name, token_hash, scopes, expires_at, person, person_key)"
            " SELECT %(name)s, %(hash)s, %(scopes)s, %(expires)s::timestamptz, %(person)s, %(key)s"
            " WHERE %(expires)s::timestamptz IS NULL OR %(expires)s::timestamptz > now() RETURNING id"
        ).format(_table(schema)),
        {
            "name": name,
            "hash": hash_token(token),
            "scopes": sorted(set(scopes)),
            "expires": expires_at,
            "person": person,
            "key": key,
        },
    )
    if row is None:
        raise ValueError(f"the expiry {expires_at.isoformat() if expires_at else ''} has already passed")
    return token


def authenticate(conn: psycopg.Connection[Any], schema: str, token: str) -> Principal | None:
    """The token's principal, or None when it is unknown, revoked or expired.

    Marks the token as used, writing at most once per LAST_USED_RESOLUTION per token (in
    the caller's transaction when the connection is not in autocommit)."""
    row = _one(
        conn,
        sql.SQL(
            "SELECT id, name, scopes, person, person_key,"
            " (last_used_at IS NULL OR last_used_at < now() - %s) AS stale"
            " FROM {} WHERE token_hash = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())"
        ).format(_table(schema)),
        (LAST_USED_RESOLUTION, hash_token(token)),
    )
    if row is None:
        return None
    if row["stale"]:
        # The same condition again, so concurrent requests do not both write.
        conn.execute(
            sql.SQL(
                "UPDATE {} SET last_used_at = now() WHERE id = %s"
                " AND (last_used_at IS NULL OR last_used_at < now() - %s)"
            ).format(_table(schema)),
            (row["id"], LAST_USED_RESOLUTION),
        )
    return Principal(row["name"], frozenset(row["scopes"]), row["person"], row["person_key"])


_COLUMNS = "id, name, scopes, created_at, expires_at, last_used_at, revoked_at, person"


def _info(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo(**{key: row[key] for key in _COLUMNS.split(", ")} | {"scopes": tuple(row["scopes"])})


def list_tokens(conn: psycopg.Connection[Any], schema: str) -> list[TokenInfo]:
    rows = _all(conn, sql.SQL("SELECT " + _COLUMNS + " FROM {} ORDER BY id").format(_table(schema)))
    return [_info(row) for row in rows]


def revoke_token(conn: psycopg.Connection[Any], schema: str, ref: str) -> tuple[TokenInfo, bool]:
    """Revokes a token by id, or by name when exactly one unrevoked token has it.

    Returns the token and whether this call revoked it (False: it already was)."""
    if ref.isdigit():
        rows = _all(conn, sql.SQL("SELECT " + _COLUMNS + " FROM {} WHERE id = %s").format(_table(schema)), (int(ref),))
        if not rows:
            raise TokenError(f"no token has the id {ref}")
    else:
        rows = _all(
            conn,
            sql.SQL("SELECT " + _COLUMNS + " FROM {} WHERE name = %s AND revoked_at IS NULL ORDER BY id").format(
                _table(schema)
            ),
            (ref,),
        )
        if not rows:
            raise TokenError(f"no unrevoked token is named {ref!r}")
        if len(rows) > 1:
            ids = ", ".join(str(row["id"]) for row in rows)
            raise TokenError(f"{len(rows)} tokens are named {ref!r} (ids {ids}); revoke one by its id")
    token = _info(rows[0])
    if token.revoked_at is not None:
        return token, False
    row = _one(
        conn,
        sql.SQL("UPDATE {} SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING " + _COLUMNS).format(
            _table(schema)
        ),
        (token.id,),
    )
    return (_info(row), True) if row is not None else (token, False)


def token_people(conn: psycopg.Connection[Any], schema: str) -> list[tuple[str, str]]:
    """(person as given, person key) of every active token that belongs to a person."""
    rows = _all(
        conn,
        sql.SQL(
            "SELECT person, person_key FROM {} WHERE person_key IS NOT NULL AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now()) ORDER BY id"
        ).format(_table(schema)),
    )
    return [(row["person"], row["person_key"]) for row in rows]
