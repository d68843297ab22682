"""Dashboard sessions: a person pastes a token once and the browser keeps only a cookie.

The cookie holds a random session id. The database keeps its SHA-256 and the token,
sealed (AES-GCM) with a key derived from the session id, so every request is still
checked by ``services.auth.authenticate`` (a revoked or expired token ends its sessions)
while neither the cookie nor a copy of the table alone yields the token.

A browser sends the cookie with whatever a foreign site makes it post, so a cookie
counts for a write only with proof that our own page made the request: it comes from
this site (fetch metadata or Origin) and carries the session's synchronizer token
(``form_proof``), which only pages served to the session contain.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql
from psycopg.rows import dict_row
from starlette.requests import Request

from services.auth import Principal, hash_token

COOKIE = "verkosto_session"
LIFETIME = timedelta(hours=12)
# What a session may do, whatever else the token could: read dashboards, and record
# events if the token may (with the CSRF proof, ``cookie_write_allowed``). Audit reads and
# administration always need the bearer header.
SESSION_SCOPE = "dashboards:read"
WRITE_SCOPE = "events:write"
CSRF_HEADER = "X-CSRF-Token"  # where the pages' fetches send form_proof
_KEY_LABEL = b"verkosto dashboard session: token key"


def _table(schema: str) -> sql.Composed:
    return sql.SQL("{}.dashboard_sessions").format(sql.Identifier(schema))


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _key(session_id: str) -> bytes:
    # The session id is 256-bit random: an HMAC under it is a sound key derivation.
    return hmac.new(session_id.encode(), _KEY_LABEL, hashlib.sha256).digest()


def open_session(conn: psycopg.Connection[Any], schema: str, token: str) -> str:
    """A new session for an already authenticated token; returns the cookie's value."""
    session_id = secrets.token_urlsafe(32)
    session_hash = _session_hash(session_id)
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(_key(session_id)).encrypt(nonce, token.encode(), session_hash.encode())
    conn.execute(sql.SQL("DELETE FROM {} WHERE expires_at <= now()").format(_table(schema)))
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (session_hash, token_hash, sealed_token, expires_at) VALUES (%s, %s, %s, now() + %s)"
        ).format(_table(schema)),
        (session_hash, hash_token(token), sealed, LIFETIME),
    )
    return session_id


def session_token(conn: psycopg.Connection[Any], schema: str, session_id: str) -> str | None:
    """The token behind an unexpired session, or None."""
    session_hash = _session_hash(session_id)
    with conn.cursor(row_factory=dict_row) as cur:  # dicts, whatever the connection's row factory
        row = cur.execute(
            sql.SQL("SELECT sealed_token FROM {} WHERE session_hash = %s AND expires_at > now()").format(
                _table(schema)
            ),
            (session_hash,),
        ).fetchone()
    if row is None:
        return None
    sealed = bytes(row["sealed_token"])
    try:
        return AESGCM(_key(session_id)).decrypt(sealed[:12], sealed[12:], session_hash.encode()).decode()
    except InvalidTag:
        return None


def close_session(conn: psycopg.Connection[Any], schema: str, session_id: str) -> None:
    conn.execute(sql.SQL("DELETE FROM {} WHERE session_hash = %s").format(_table(schema)), (_session_hash(session_id),))


def session_principal(principal: Principal) -> Principal | None:
    """The principal a session acts as: the token's name and person, with dashboards:read
    and, if the token may write, events:write; never more (no admin, no history:read)."""
    if not principal.allows(SESSION_SCOPE):
        return None
    scopes = {SESSION_SCOPE} | ({WRITE_SCOPE} if principal.allows(WRITE_SCOPE) else set())
    return Principal(principal.name, frozenset(scopes), principal.person, principal.person_key)


def authenticate_session(conn: psycopg.Connection[Any], schema: str, session_id: str) -> Principal | None:
    """The session's principal, or None; a session whose token no longer authenticates ends."""
    from services.auth import authenticate  # the one place that decides whether a token is good

    token = session_token(conn, schema, session_id)
    if token is None:
        return None
    principal = authenticate(conn, schema, token)
    if principal is None:
        close_session(conn, schema, session_id)
        return None
    return session_principal(principal)


def form_proof(session_id: str) -> str:
    """The synchronizer token for the session's own forms (sign-out) and fetches that
    write: only a page served to this session contains it, and a foreign site can neither
    read nor compute it."""
    return hmac.new(session_id.encode(), b"verkosto dashboard session: form proof", hashlib.sha256).hexdigest()


def proves(session_id: str, proof: str) -> bool:
    return hmac.compare_digest(proof.encode(), form_proof(session_id).encode())


def cross_site(request: Request) -> bool:
    """Whether the browser says another site made this request. Fetch metadata first: with
    Referrer-Policy no-referrer a browser sends `Origin: null` even for our own forms."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site != "same-origin"
    return request.headers.get("origin") not in (None, "null", f"{request.url.scheme}://{request.url.netloc}")


def cookie_write_allowed(request: Request, session_id: str) -> bool:
    """A write riding on the session cookie: from this site, with the page's proof."""
    return not cross_site(request) and proves(session_id, request.headers.get(CSRF_HEADER, ""))
