"""API tokens: random bearer secrets, stored only as SHA-256 hashes, each with scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

SCOPES = ("events:write", "history:read", "dashboards:read", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def hash_token(token: str) -> str:
    # Tokens are 256-bit random, so a fast unsalted hash is enough to keep them unusable
    # if the table leaks, while keeping every request's lookup a single index probe.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: psycopg.Connection[Any], schema: str, name: str, scopes: list[str]) -> str:
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; choose from {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("a token needs at least one scope")
    token = "vk_" + secrets.token_urlsafe(32)
    conn.execute(
        sql.SQL("INSERT INTO {}.api_tokens (name, token_hash, scopes) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema)
        ),
        (name, hash_token(token), sorted(set(scopes))),
    )
    return token


def authenticate(conn: psycopg.Connection[Any], schema: str, token: str) -> Principal | None:
    row = conn.execute(
        sql.SQL(
            "SELECT name, scopes FROM {}.api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
        ).format(sql.Identifier(schema)),
        (hash_token(token),),
    ).fetchone()
    if row is None:
        return None
    name, scopes = (row["name"], row["scopes"]) if isinstance(row, dict) else row
    return Principal(name, frozenset(scopes))
