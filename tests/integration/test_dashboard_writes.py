"""Recording from the dashboards: a session's cookie writes only for a token that may
write, only from this site and only with the proof its own page holds (CSRF); bearer
requests are unaffected. On the real API and real PostgreSQL; the browser's view is in
tests/e2e/test_dashboard_forms.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contract.commands import SPECS
from domain.corrections import CORRECTABLE
from domain.partnership import Partnership
from domain.values import OUTCOME_FACTOR_VALUES
from services.api.app import create_app
from services.auth import issue_token
from services.db import connect
from services.settings import Settings

ORIGIN = "http://testserver"
# What Chromium sends with a fetch from our own page under Referrer-Policy no-referrer.
OWN_PAGE = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
PROBLEM = "application/problem+json"


def opening(name: str = "Acme Oy") -> dict[str, Any]:
    return {
        "partner": {"name": name, "kind": "organisation", "roles": ["customer"]},
        "owner_unit": "research",
        "steward": "alice",
    }


def issue(settings: Settings, name: str, *scopes: str, person: str | None = None) -> str:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return issue_token(conn, settings.db_schema, name, list(scopes), person=person)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def signed_in(client: TestClient, token: str) -> str:
    """Signs in through the form and returns the proof the session's pages carry."""
    answer = client.post("/dashboard/sign-in", data={"token": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 303, answer.text
    page = client.get("/dashboard/partnership.html")
    found = re.search(r'name="proof" value="([0-9a-f]{64})"', page.text)
    assert page.status_code == 200 and found
    return found[1]


def refused(answer: Any, code: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == PROBLEM and answer.json()["code"] == code


def test_a_cookie_write_needs_the_proof_from_this_sites_own_page(client: TestClient, settings: Settings) -> None:
    writer = issue(settings, "writer", "dashboards:read", "events:write")
    admin = {"Authorization": f"Bearer {issue(settings, 'boss', 'admin')}"}
    proof = signed_in(client, writer)
    attempts: list[tuple[dict[str, str], str]] = [
        ({**OWN_PAGE}, "no proof"),
        ({**OWN_PAGE, "X-CSRF-Token": "0" * 64}, "a wrong proof"),
        ({**OWN_PAGE, "X-CSRF-Token": proof.upper()}, "the proof, altered"),
        ({"Origin": "https://evil.example", "X-CSRF-Token": proof}, "another site, by Origin"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "null", "X-CSRF-Token": proof}, "another site"),
        ({"Sec-Fetch-Site": "same-site", "X-CSRF-Token": proof}, "a sibling site"),
    ]
    for headers, what in attempts:
        command_id = f"refused-{uuid.uuid4()}"
        answer = client.post("/v1/partnerships", json={**opening(), "command_id": command_id}, headers=headers)
        refused(answer, "csrf")
        # Nothing was recorded: the same command id is new to the bearer's request.
        again = client.post("/v1/partnerships", json={**opening(), "command_id": command_id}, headers=admin)
        assert again.status_code == 201 and not again.json()["duplicate"], what

    opened = client.post("/v1/partnerships", json=opening("Cookie Oy"), headers={**OWN_PAGE, "X-CSRF-Token": proof})
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    contact = {"type": "contact_logged", "channel": "call", "direction": "outbound", "participants": ["Alice"]}
    logged = client.post(f"/v1/partnerships/{pid}/events", json=contact, headers={**OWN_PAGE, "X-CSRF-Token": proof})
    assert logged.status_code == 201, logged.text
    # Without fetch metadata (an older browser), Origin alone says where it came from.
    signal = {"type": "interest_signalled", "direction": "inbound", "strength": 2}
    same = {"Origin": ORIGIN, "X-CSRF-Token": proof}
    assert client.post(f"/v1/partnerships/{pid}/events", json=signal, headers=same).status_code == 201
    events = client.get(f"/v1/partnerships/{pid}/history", headers=admin).json()["events"]
    assert [(e["type"], e["actor"]) for e in events] == [
        ("partnership_opened", "writer"),
        ("contact_logged", "writer"),
        ("interest_signalled", "writer"),
    ]
    assert events[1]["data"]["participants"] == ["Alice"]


def test_a_read_only_session_cannot_write_even_with_the_proof(client: TestClient, settings: Settings) -> None:
    proof = signed_in(client, issue(settings, "viewer", "dashboards:read"))
    answer = client.post("/v1/partnerships", json=opening(), headers={**OWN_PAGE, "X-CSRF-Token": proof})
    refused(answer, "insufficient_scope")
    assert 'data-writes="no"' in client.get("/dashboard/lifecycle.html").text


def test_a_session_carries_reading_dashboards_and_writing_events_and_no_more(
    client: TestClient, settings: Settings
) -> None:
    proof = signed_in(client, issue(settings, "boss", "admin", person="Alice Example"))
    assert 'data-writes="yes"' in client.get("/dashboard/lifecycle.html").text
    me = client.get("/v1/people/me").json()  # who the session acts as: the token's name and person
    assert me["scopes"] == ["dashboards:read", "events:write"] and me["person"] == "Alice Example"
    assert client.get("/v1/audit/events").status_code == 403  # the audit trail needs the header
    own = {**OWN_PAGE, "X-CSRF-Token": proof}
    criteria = {"type": "criteria_defined", "criteria": [{"name": "fit", "description": "Fits our aims"}]}
    assert client.post("/v1/organisation/events", json=criteria, headers=own).status_code == 201  # events:write
    refused(client.post("/v1/audit/erasures", json={}, headers=own), "insufficient_scope")  # admin's, not the session's


def test_bearer_writes_ignore_the_cookie(client: TestClient, settings: Settings) -> None:
    signed_in(client, issue(settings, "viewer", "dashboards:read"))
    writer = issue(settings, "integration", "events:write")
    answer = client.post("/v1/partnerships", json=opening(), headers={"Authorization": f"Bearer {writer}"})
    assert answer.status_code == 201, answer.text
    # ...and a client with neither still hears that a bearer token is what it needs.
    client.cookies.clear()
    assert client.post("/v1/partnerships", json=opening()).status_code == 401


def test_the_dashboards_open_on_attention(client: TestClient, settings: Settings) -> None:
    assert client.get("/dashboard").headers["location"] == "/dashboard/attention.html"
    assert client.get("/dashboard/attention.html").headers["location"].startswith("/dashboard/sign-in")
    signed_in(client, issue(settings, "viewer", "dashboards:read"))
    page = client.get("/dashboard/attention.html")
    assert page.status_code == 200 and 'data-page="attention"' in page.text
    assert "<script>" not in page.text and "style=" not in page.text  # all script is in files (CSP)


def test_the_forms_are_built_from_the_contract(client: TestClient) -> None:
    forms = client.get("/dashboard/forms.json").json()
    expected = {s.event.type: s.model.model_json_schema() for s in SPECS if s.aggregate is Partnership}
    assert forms["commands"] == expected
    assert forms["correctable"] == {kind: sorted(fields) for kind, fields in CORRECTABLE.items()}
    assert forms["outcome_factors"] == list(OUTCOME_FACTOR_VALUES)
    contact = forms["commands"]["contact_logged"]
    assert contact["$defs"]["Channel"]["enum"] == ["meeting", "call", "email", "message", "visit", "event"]


def test_the_criteria_catalogue_reads_with_dashboards_read(client: TestClient, settings: Settings) -> None:
    viewer = {"Authorization": f"Bearer {issue(settings, 'viewer', 'dashboards:read')}"}
    historian = {"Authorization": f"Bearer {issue(settings, 'historian', 'history:read')}"}
    writer = {"Authorization": f"Bearer {issue(settings, 'writer', 'events:write')}"}
    assert client.get("/v1/projections/organisation/criteria", headers=viewer).json()["catalogue"] is None
    assert client.get("/v1/organisation/criteria", headers=viewer).status_code == 403
    criteria = [{"name": "fit", "description": "Fits our aims"}, {"name": "reach", "description": "Opens doors"}]
    define = {"type": "criteria_defined", "criteria": criteria}
    assert client.post("/v1/organisation/events", json=define, headers=writer).status_code == 201
    mine = client.get("/v1/projections/organisation/criteria", headers=viewer).json()
    theirs = client.get("/v1/organisation/criteria", headers=historian).json()
    assert mine["catalogue"] == theirs["catalogue"] and mine["catalogue"]["criteria"] == criteria
