"""Dashboard sign-in, sessions, CSRF, security headers and /docs, on the real API and
real PostgreSQL (the browser's view of the same is in tests/e2e/test_dashboards.py)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from services.api.app import create_app
from services.api.security import CONTENT_SECURITY_POLICY, RedactTokens, redact
from services.api.sessions import COOKIE
from services.auth import issue_token
from services.db import connect
from services.settings import Settings

ORIGIN = "http://testserver"
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
OPEN = {
    "partner": {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]},
    "owner_unit": "research",
    "steward": "alice",
}


def issue(settings: Settings, name: str, *scopes: str) -> str:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return issue_token(conn, settings.db_schema, name, list(scopes))


def sessions(settings: Settings) -> list[dict[str, Any]]:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {}.dashboard_sessions").format(sql.Identifier(settings.db_schema))
        ).fetchall()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, token: str, next_page: str = "/dashboard/lifecycle.html") -> Any:
    return client.post("/dashboard/sign-in", data={"token": token, "next": next_page}, headers={"Origin": ORIGIN})


def test_a_page_without_a_session_redirects_to_a_sign_in_form(client: TestClient) -> None:
    page = client.get("/dashboard/partnership.html?id=abc&token=vk_old")
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/sign-in?next=%2Fdashboard%2Fpartnership.html%3Fid%3Dabc"
    form = client.get(page.headers["location"])
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    assert '<label for="token">' in form.text and 'id="token" name="token" type="password"' in form.text
    assert 'name="next" value="/dashboard/partnership.html?id=abc"' in form.text
    assert "<script" not in form.text and "style=" not in form.text
    # A return address elsewhere is never followed.
    assert 'value="/dashboard/attention.html"' in client.get("/dashboard/sign-in?next=https://evil.example/").text


def test_signing_in_sets_a_session_cookie_that_is_not_the_token(client: TestClient, settings: Settings) -> None:
    token = issue(settings, "viewer", "dashboards:read")
    refused = sign_in(client, "vk_not-a-token")
    assert refused.status_code == 401 and "not valid" in refused.text and "set-cookie" not in refused.headers
    writer = issue(settings, "writer", "events:write")
    assert sign_in(client, writer).status_code == 403

    answer = sign_in(client, token)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/lifecycle.html"
    cookie = answer.headers["set-cookie"]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http here
    session_id = client.cookies[COOKIE]
    assert session_id and token not in cookie and session_id != token
    [row] = sessions(settings)
    assert row["session_hash"] == hashlib.sha256(session_id.encode()).hexdigest()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.encode() not in bytes(row["sealed_token"]) and session_id.encode() not in bytes(row["sealed_token"])
    assert 11.9 * 3600 < (row["expires_at"] - row["created_at"]).total_seconds() <= 12 * 3600

    assert client.get("/dashboard/lifecycle.html").status_code == 200
    assert client.get("/v1/projections/lifecycle").status_code == 200  # the fetches ride on the cookie


def test_over_tls_the_cookie_is_secure(settings: Settings) -> None:
    token = issue(settings, "viewer", "dashboards:read")
    with TestClient(create_app(settings), base_url="https://testserver", follow_redirects=False) as tls:
        answer = tls.post("/dashboard/sign-in", data={"token": token}, headers={"Origin": "https://testserver"})
    assert answer.status_code == 303
    assert "secure" in [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]


def test_a_session_only_reads_dashboards_and_never_writes(client: TestClient, settings: Settings) -> None:
    admin = issue(settings, "boss", "admin")
    assert sign_in(client, admin).status_code == 303
    assert client.get("/v1/projections/portfolio").status_code == 200
    # Even an admin token's session cannot write without its page's proof (CSRF; see
    # test_dashboard_writes.py) or read the audit trail: that needs the header.
    write = client.post("/v1/partnerships", json=OPEN, headers={"Origin": ORIGIN})
    assert write.status_code == 403 and write.json()["code"] == "csrf"
    assert client.get("/v1/audit/events").status_code == 403
    assert client.post("/v1/partnerships", json=OPEN, headers={"Authorization": f"Bearer {admin}"}).status_code == 201
    # A cross-site login attempt is refused.
    for foreign in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        assert client.post("/dashboard/sign-in", data={"token": admin}, headers=foreign).status_code == 403


def test_sign_out_checks_the_origin_ends_the_session_and_clears_the_cookie(
    client: TestClient,
    settings: Settings,
) -> None:
    token = issue(settings, "viewer", "dashboards:read")
    assert sign_in(client, token).status_code == 303
    session_id = client.cookies[COOKIE]
    proof = re.search(r'name="proof" value="([0-9a-f]{64})"', client.get("/dashboard/networks.html").text)
    assert proof
    # Only our own page holds the proof; and a browser naming another site is refused anyway.
    assert client.post("/dashboard/sign-out", headers={"Origin": ORIGIN}).status_code == 403
    assert client.post("/dashboard/sign-out", data={"proof": "0" * 64}, headers={"Origin": ORIGIN}).status_code == 403
    for foreign in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}):
        assert client.post("/dashboard/sign-out", data={"proof": proof[1]}, headers=foreign).status_code == 403
    assert len(sessions(settings)) == 1
    # What Chromium sends from our page under Referrer-Policy no-referrer: Origin null, same-origin.
    out = client.post(
        "/dashboard/sign-out", data={"proof": proof[1]}, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    )
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/sign-in"
    assert f'{COOKIE}=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert sessions(settings) == []
    client.cookies.set(COOKIE, session_id)  # the old cookie, replayed
    assert client.get("/v1/projections/portfolio").status_code == 401
    assert client.get("/dashboard/portfolio.html").status_code == 303


def test_a_revoked_token_ends_its_sessions(client: TestClient, settings: Settings) -> None:
    token = issue(settings, "viewer", "dashboards:read")
    assert sign_in(client, token).status_code == 303
    assert client.get("/v1/projections/networks").status_code == 200
    with connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.api_tokens SET revoked_at = now() WHERE token_hash = %s").format(
                sql.Identifier(settings.db_schema)
            ),
            (hashlib.sha256(token.encode()).hexdigest(),),
        )
    assert client.get("/v1/projections/networks").status_code == 401
    assert sessions(settings) == []
    assert client.get("/dashboard/networks.html").headers["location"].startswith("/dashboard/sign-in")


def test_the_partnership_page_reads_with_dashboards_read_alone(client: TestClient, settings: Settings) -> None:
    admin = issue(settings, "boss", "admin")
    created = client.post("/v1/partnerships", json=OPEN, headers={"Authorization": f"Bearer {admin}"})
    pid = created.json()["id"]
    viewer = {"Authorization": f"Bearer {issue(settings, 'viewer', 'dashboards:read')}"}
    historian = {"Authorization": f"Bearer {issue(settings, 'historian', 'history:read')}"}
    assert client.get(f"/v1/partnerships/{pid}/history", headers=viewer).status_code == 403
    for suffix in ("", "/history", "/owners", "?as_of=2100-01-01T00:00:00Z"):
        mine = client.get(f"/v1/projections/partnerships/{pid}{suffix}", headers=viewer)
        theirs = client.get(f"/v1/partnerships/{pid}{suffix}", headers=historian)
        assert mine.status_code == theirs.status_code == 200, suffix
        assert {**mine.json(), "known_at": None} == {**theirs.json(), "known_at": None}  # (now, read twice)
        assert client.get(f"/v1/projections/partnerships/{pid}{suffix}", headers=historian).status_code == 403
    assert (
        client.get(f"/v1/projections/partnerships/{pid}/history", headers=viewer).json()["events"][0]["type"]
        == "partnership_opened"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/projections/portfolio",
        "/v1/projections/portfolio?as_of=nonsense",
        "/nowhere",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/docs/init.js",
        "/docs/assets/swagger-ui.css",
        "/dashboard/dashboard.js",
        "/dashboard/sign-in",
        "/dashboard/portfolio.html",
        "/dashboard/nothing.css",
    ],
)
def test_every_response_carries_the_security_headers(client: TestClient, settings: Settings, path: str) -> None:
    token = issue(settings, "viewer", "dashboards:read")
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        answer = client.get(path, headers=headers)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, answer.status_code, name)
        assert len(answer.headers.get_list("content-security-policy")) == 1


def test_even_an_unexpected_error_carries_the_security_headers(settings: Settings) -> None:
    api = create_app(settings)

    @api.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(api, raise_server_exceptions=False) as test_client:
        answer = test_client.get("/v1/boom")
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, name


def test_docs_come_from_this_server_and_can_be_turned_off(client: TestClient, settings: Settings) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    text = page.text.lower()
    assert "cdn" not in text and "https://" not in text and "http://" not in text
    assert "<script>" not in text and "onload" not in text  # the init code is a file
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in text
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert "SwaggerUIBundle(" in client.get("/docs/init.js").text
    assert client.get("/redoc").status_code == 404
    off = settings.model_copy(update={"docs_enabled": False})
    with TestClient(create_app(off)) as no_docs:
        assert no_docs.get("/docs").status_code == 404
        assert no_docs.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
        assert no_docs.get("/openapi.json").status_code == 200


def test_the_access_log_never_shows_a_token() -> None:
    assert redact("GET /dashboard/p.html?token=vk_secret&x=1") == "GET /dashboard/p.html?token=[redacted]&x=1"
    assert "vk_s" not in redact("/dashboard/sign-in?next=%2Fdashboard%2Fp.html%3Faccess_token%3Dvk_s")
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/x?a=1&token=vk_secret", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/x?a=1&token=[redacted] HTTP/1.1" 200'
