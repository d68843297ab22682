"""API tokens end to end: the CLI that issues, lists and revokes them, the API that refuses
expired and revoked ones and slows down guessers, and the files that hold secrets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from rich.console import Console

from services.api.app import create_app
from services.auth import hash_token, issue_token
from services.settings import Settings


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "COLUMNS": "200",  # rich would otherwise fold the table to 80 columns
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "--data-dir", str(settings.data_dir), "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def issue(settings: Settings, *args: str) -> str:
    done = cli(settings, "issue", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def listed(settings: Settings, *args: str) -> list[dict[str, Any]]:
    done = cli(settings, "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def sql_exec(settings: Settings, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        cursor = conn.execute(
            sql.SQL(statement).format(tokens=sql.SQL("{}.api_tokens").format(sql.Identifier(settings.db_schema))),
            params,
        )
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:  # as a context manager, so the lifespan runs
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def read(client: TestClient, token: str) -> Any:
    # An unknown partnership: 404 proves the token was accepted, 401/429 that it was not.
    return client.get(f"/v1/partnerships/{uuid.uuid4()}", headers=bearer(token))


# --- the CLI -------------------------------------------------------------------------


def test_repeated_scopes_accumulate_and_list_never_shows_a_secret(settings: Settings) -> None:
    repeated = issue(settings, "--name", "crm-sync", "--scope", "events:write", "--scope", "history:read")
    listed_together = issue(settings, "--name", "board", "--scope", "dashboards:read", "history:read")
    assert repeated.startswith("vk_") and listed_together.startswith("vk_")

    tokens = {t["name"]: t for t in listed(settings)}
    assert tokens["crm-sync"]["scopes"] == ["events:write", "history:read"]
    assert tokens["board"]["scopes"] == ["dashboards:read", "history:read"]
    assert tokens["crm-sync"]["status"] == "active"
    assert tokens["crm-sync"]["expires_at"] is None and tokens["crm-sync"]["revoked_at"] is None
    assert datetime.fromisoformat(tokens["crm-sync"]["created_at"]) > datetime.now(UTC) - timedelta(minutes=5)

    table = cli(settings, "list")
    assert table.returncode == 0, table.stderr
    assert "crm-sync" in table.stdout and "events:write history:read" in table.stdout
    for output in (table.stdout, cli(settings, "list", "--json").stdout):
        for secret in (repeated, listed_together):
            assert secret not in output and hash_token(secret) not in output


def test_unknown_scope_and_past_expiry_are_refused_without_storing_a_token(settings: Settings) -> None:
    unknown = cli(settings, "issue", "--name", "x", "--scope", "events:write", "--scope", "everything")
    assert unknown.returncode == 2 and "unknown scopes ['everything']" in unknown.stderr
    past = cli(settings, "issue", "--name", "x", "--scope", "admin", "--expires", "2020-01-01T00:00:00+00:00")
    assert past.returncode == 2 and "already passed" in past.stderr
    naive = cli(settings, "issue", "--name", "x", "--scope", "admin", "--expires", "2099-01-01T00:00:00")
    assert naive.returncode == 2 and "UTC offset" in naive.stderr
    bad = cli(settings, "issue", "--name", "x", "--scope", "admin", "--expires-in", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    assert listed(settings) == []


def test_expiry_is_stored_from_a_lifetime_or_a_moment(settings: Settings) -> None:
    issue(settings, "--name", "month", "--scope", "history:read", "--expires-in", "30d")
    issue(settings, "--name", "fixed", "--scope", "history:read", "--expires", "2099-05-01T12:00:00+03:00")
    tokens = {t["name"]: t for t in listed(settings)}
    month = datetime.fromisoformat(tokens["month"]["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < month <= timedelta(days=30)
    assert datetime.fromisoformat(tokens["fixed"]["expires_at"]) == datetime(2099, 5, 1, 9, tzinfo=UTC)


def test_revoke_by_id_or_by_a_unique_name(settings: Settings) -> None:
    issue(settings, "--name", "twin", "--scope", "history:read")
    issue(settings, "--name", "twin", "--scope", "history:read")
    issue(settings, "--name", "solo", "--scope", "history:read")
    ids = {t["id"]: t["name"] for t in listed(settings)}

    ambiguous = cli(settings, "revoke", "twin")
    assert ambiguous.returncode == 2 and "2 tokens are named 'twin'" in ambiguous.stderr
    by_name = cli(settings, "revoke", "solo")
    assert by_name.returncode == 0 and "revoked token" in by_name.stdout
    first_twin = min(i for i, name in ids.items() if name == "twin")
    by_id = cli(settings, "revoke", str(first_twin))
    assert by_id.returncode == 0, by_id.stderr
    # One twin left unrevoked: its name is unique among live tokens now.
    assert cli(settings, "revoke", "twin").returncode == 0

    again = cli(settings, "revoke", str(first_twin))
    assert again.returncode == 0 and "already revoked" in again.stdout
    assert cli(settings, "revoke", "99999").returncode == 2
    assert cli(settings, "revoke", "nobody").returncode == 2

    tokens = listed(settings)
    assert {t["status"] for t in tokens} == {"revoked"} and all(t["revoked_at"] for t in tokens)
    assert listed(settings, "--active") == []


# --- the API -------------------------------------------------------------------------


def test_revoked_and_expired_tokens_get_401(settings: Settings, api: TestClient) -> None:
    revoked = issue(settings, "--name", "leaver", "--scope", "history:read")
    expiring = issue(settings, "--name", "temp", "--scope", "history:read", "--expires-in", "1h")
    assert read(api, revoked).status_code == 404
    assert read(api, expiring).status_code == 404

    assert cli(settings, "revoke", "leaver").returncode == 0
    # Time passes: the expiry is now behind the database's clock.
    sql_exec(settings, "UPDATE {tokens} SET expires_at = now() - interval '1 second' WHERE name = 'temp'")

    for token in (revoked, expiring):
        answer = read(api, token)
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "invalid_token"
        assert answer.headers["www-authenticate"] == "Bearer"
    assert [t["status"] for t in sorted(listed(settings), key=lambda t: t["id"])] == ["revoked", "expired"]


def test_last_used_is_recorded_at_most_once_a_minute(settings: Settings, api: TestClient) -> None:
    token = issue(settings, "--name", "busy", "--scope", "history:read")
    assert listed(settings)[0]["last_used_at"] is None

    assert read(api, token).status_code == 404
    (first,) = sql_exec(settings, "SELECT last_used_at FROM {tokens}")
    assert first[0] is not None and first[0] > datetime.now(UTC) - timedelta(minutes=1)
    for _ in range(3):
        assert read(api, token).status_code == 404
    assert sql_exec(settings, "SELECT last_used_at FROM {tokens}") == [first]  # no write per request

    sql_exec(settings, "UPDATE {tokens} SET last_used_at = now() - interval '2 minutes'")
    assert read(api, token).status_code == 404
    (later,) = sql_exec(settings, "SELECT last_used_at FROM {tokens}")
    assert later[0] > first[0]
    assert datetime.fromisoformat(listed(settings)[0]["last_used_at"]) == later[0]


def test_repeated_bad_tokens_get_429_while_a_good_token_still_works(settings: Settings) -> None:
    settings = settings.model_copy(update={"auth_failures_per_minute": 3})
    good = issue(settings, "--name", "good", "--scope", "history:read")
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.7", 40000)) as client:
        for _ in range(3):
            refused = read(client, "vk_guess")
            assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
        # A request without any token is not a failed attempt and is not limited either.
        assert client.get(f"/v1/partnerships/{uuid.uuid4()}").status_code == 401

        limited = read(client, "vk_guess")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert limited.json()["code"] == "too_many_requests"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert read(client, "vk_another_guess").status_code == 429

        # The same address with a good token: never limited.
        for _ in range(3):
            assert read(client, good).status_code == 404

        # Another address has its own count (no lifespan here: the app's state is shared).
        elsewhere = TestClient(app, client=("192.0.2.8", 40000))
        assert read(elsewhere, "vk_guess").status_code == 401


def test_a_stale_session_cookie_keeps_getting_401_so_the_page_can_sign_in_again(settings: Settings) -> None:
    from services.api.sessions import COOKIE

    settings = settings.model_copy(update={"auth_failures_per_minute": 2})
    with TestClient(create_app(settings), cookies={COOKIE: "ended-session"}) as client:
        answers = [client.get(f"/v1/projections/partnerships/{uuid.uuid4()}").status_code for _ in range(5)]
        assert answers == [401] * 5
        # Bad bearer tokens from the same address are still counted.
        assert [read(client, "vk_guess").status_code for _ in range(3)] == [401, 401, 429]


def test_expired_token_cannot_be_issued_through_the_function_either(settings: Settings) -> None:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        with pytest.raises(ValueError, match="already passed"):
            issue_token(conn, settings.db_schema, "x", ["admin"], datetime(2020, 1, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="UTC offset"):
            issue_token(conn, settings.db_schema, "x", ["admin"], datetime(2099, 1, 1))
    assert sql_exec(settings, "SELECT count(*) FROM {tokens}") == [(0,)]


# --- OpenAPI -------------------------------------------------------------------------

# The README's table of scopes per route; this test keeps it true.
SCOPE_OF_ROUTE = {
    ("POST", "/v1/partnerships"): "events:write",
    ("POST", "/v1/partnerships/{partnership_id}/events"): "events:write",
    ("GET", "/v1/partnerships/{partnership_id}"): "history:read",
    ("GET", "/v1/partnerships/{partnership_id}/history"): "history:read",
    ("GET", "/v1/partnerships/{partnership_id}/owners"): "history:read",
    ("GET", "/v1/partnerships/{partnership_id}/networks"): "history:read",
    ("GET", "/v1/partnerships"): "dashboards:read",
    ("GET", "/v1/partnerships/similar"): "dashboards:read",
    ("GET", "/v1/networks"): "dashboards:read",
    ("POST", "/v1/networks"): "events:write",
    ("POST", "/v1/networks/{network_id}/events"): "events:write",
    ("GET", "/v1/networks/{network_id}"): "history:read",
    ("GET", "/v1/networks/{network_id}/history"): "history:read",
    ("GET", "/v1/networks/{network_id}/owners"): "history:read",
    ("POST", "/v1/organisation/events"): "events:write",
    ("GET", "/v1/organisation/criteria"): "history:read",
    ("GET", "/v1/organisation/operating-model"): "history:read",
    ("GET", "/v1/organisation/candidates"): "history:read",
    ("GET", "/v1/projections/trust/{partnership_id}"): "dashboards:read",
    ("GET", "/v1/projections/lifecycle"): "dashboards:read",
    ("GET", "/v1/projections/portfolio"): "dashboards:read",
    ("GET", "/v1/projections/portfolio/members"): "dashboards:read",
    ("GET", "/v1/projections/networks"): "dashboards:read",
    ("GET", "/v1/network-plan"): "dashboards:read",
    ("GET", "/v1/graph"): "dashboards:read",
    ("GET", "/v1/graph/measures"): "dashboards:read",
    ("GET", "/v1/attention"): "dashboards:read",
    ("GET", "/v1/people"): "dashboards:read",
    ("GET", "/v1/people/me"): "dashboards:read",
    ("POST", "/v1/imports"): "events:write",
    ("POST", "/v1/imports/calendar"): "events:write",
    ("GET", "/v1/projections/organisation/criteria"): "dashboards:read",
    # The dashboards' own copies of the partnership reads (services/api/dashboard.py).
    ("GET", "/v1/projections/partnerships/{partnership_id}"): "dashboards:read",
    ("GET", "/v1/projections/partnerships/{partnership_id}/history"): "dashboards:read",
    ("GET", "/v1/projections/partnerships/{partnership_id}/owners"): "dashboards:read",
    ("GET", "/v1/projections/partnerships/{partnership_id}/networks"): "dashboards:read",
    ("GET", "/v1/audit/events"): "history:read",
    ("GET", "/v1/audit/stewards/{steward}"): "history:read",
    ("GET", "/v1/audit/handovers"): "history:read",
    ("POST", "/v1/audit/erasures"): "admin",
    ("GET", "/v1/audit/reads"): "admin",
}


def test_openapi_states_the_bearer_scheme_and_scope_of_every_v1_operation(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    bearer_names = {name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme") == "bearer"}
    assert bearer_names, schemes

    found = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/v1/"):
                assert "security" not in operation, (method, path)  # health stays open
                continue
            requirements = operation.get("security")
            assert requirements, f"{method.upper()} {path} has no security requirement"
            scopes = {tuple(scope) for req in requirements for name, scope in req.items() if name in bearer_names}
            assert len(scopes) == 1, (method, path, requirements)
            (scope,) = scopes.pop()
            found[(method.upper(), path)] = scope
    assert found == SCOPE_OF_ROUTE


# --- secret files --------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bootstrap_writes_the_dev_token_0600_in_a_0700_data_dir(settings: Settings, tmp_path: Path) -> None:
    from services.auth import authenticate
    from services.supervisor import bootstrap

    settings = settings.model_copy(update={"data_dir": tmp_path / "fresh" / ".verkosto"})
    token = bootstrap(settings, Console(quiet=True))
    token_file = settings.data_dir / "dev-token"
    assert token_file.read_text() == token + "\n"
    assert mode(token_file) == 0o600 and mode(settings.data_dir) == 0o700
    assert bootstrap(settings, Console(quiet=True)) == token  # kept while it is valid

    # A loose directory and a stale, world-readable token file from earlier days.
    settings.data_dir.chmod(0o755)
    token_file.write_text("vk_stale\n")
    token_file.chmod(0o644)
    fresh = bootstrap(settings, Console(quiet=True))
    assert fresh != token and token_file.read_text() == fresh + "\n"
    assert mode(token_file) == 0o600 and mode(settings.data_dir) == 0o700
    assert [p.name for p in settings.data_dir.iterdir()] == ["dev-token"]  # no temporary left behind
    with psycopg.connect(settings.require_database_url()) as conn:
        principal = authenticate(conn, settings.db_schema, fresh)
    assert principal is not None and principal.name == "developer" and principal.allows("admin")


def test_endpoints_are_replaced_atomically_as_0600(tmp_path: Path) -> None:
    from services.private_files import write_private

    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text("{}")
    endpoints.chmod(0o644)
    before = endpoints.stat().st_ino
    write_private(endpoints, '{"database_url": "postgresql://secret"}\n')
    assert json.loads(endpoints.read_text()) == {"database_url": "postgresql://secret"}
    assert mode(endpoints) == 0o600
    assert endpoints.stat().st_ino != before  # a new file renamed into place, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endpoints.json"]
