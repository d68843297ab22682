"""Calendar capture end to end: partnerships opened over HTTP, relayed through Kafka into
the directory (which learns the partners' domains), then ICS posted to
`POST /v1/imports/calendar` (and run as `verkosto import calendar` does) against real
PostgreSQL. The same invitation twice records once, a moved meeting is corrected and a
cancelled one retracted in the partnership's history, an unmatched one records nothing,
and nothing of an invitation but who of ours took part and when is stored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from projections.queries.calendar_match import partners_for_meeting
from projections.registry import active_schema
from services.api.app import create_app
from services.application import Verkosto
from services.auth import issue_token
from services.calendar_capture import Ours
from services.cli_calendar import run_capture
from services.db import connect
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.directory_world import at, event, post, project

NOW = datetime.now(UTC)
SECRETS = ("Pricing of the secret project", "Dial-in 555 123", "Room Kallio", "anna.virtanen", "Bob Builder", "@")
PATH = "/v1/imports/calendar"
OURS = {"our_domain": ["vtt.fi"]}


@dataclass
class World:
    settings: Settings
    app: Verkosto
    client: TestClient
    ids: dict[str, str]
    reader: dict[str, str]


def ics(uid: str, days_ago: float, *attendees: str, extra: Sequence[str] = ()) -> bytes:
    start = (NOW - timedelta(days=days_ago)).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", f"UID:{uid}",
             f"DTSTART:{start}", "SUMMARY:Pricing of the secret project", "DESCRIPTION:Dial-in 555 123",
             "LOCATION:Room Kallio", 'ORGANIZER;CN="Anna Virtanen":mailto:anna.virtanen@vtt.fi',
             "ATTENDEE;CN=Anna Virtanen;PARTSTAT=ACCEPTED:mailto:anna.virtanen@vtt.fi",
             *(attendees or ("ATTENDEE;CN=Bob Builder:mailto:bob@mail.acme.fi",)), *extra,
             "END:VEVENT", "END:VCALENDAR", ""]  # fmt: skip
    return "\r\n".join(lines).encode()


@pytest.fixture(scope="module")
def world(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("calendar"))) as settings:
        with connect(settings.require_database_url(), autocommit=True) as conn:
            writer = issue_token(conn, settings.db_schema, "Oona", ["events:write", "history:read"])
            reader = issue_token(conn, settings.db_schema, "viewer", ["history:read"])
        headers = {"Authorization": f"Bearer {writer}"}
        with opened_application(settings) as app, TestClient(create_app(settings), headers=headers) as client:
            ids = {}
            for name, kind, domains in (
                ("Acme Oy", "organisation", ["acme.fi"]),
                ("Globex Corporation", "organisation", []),
                ("Ville Mäkitalo", "person", ["gmail.com"]),
                ("Initech Oy", "organisation", ["initech.fi"]),
            ):
                partner = {"name": name, "kind": kind, "roles": ["customer"], "domains": domains}
                body = {"partner": partner, "owner_unit": "sales", "steward": "Oona", "occurred_at": at(0)}
                ids[name] = str(post(client, "/v1/partnerships", body)["id"])
            for days, stage in ((10, "prioritise"), (20, "wind_down"), (30, "ended")):
                event(client, ids["Initech Oy"], "stage_changed", days, stage=stage, reason="fit")
            project(app, settings)
            yield World(settings, app, client, ids, {"Authorization": f"Bearer {reader}"})


def send(world: World, data: bytes, **params: Any) -> dict[str, Any]:
    response = world.client.post(
        PATH, content=data, params={**OURS, **params}, headers={"Content-Type": "text/calendar"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def stored_events(world: World) -> int:
    with psycopg.connect(world.settings.require_database_url()) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.verkosto_events").format(sql.Identifier(world.settings.db_schema))
        ).fetchone()
    assert row is not None
    return int(row[0])


def history(world: World, name: str) -> list[dict[str, Any]]:
    response = world.client.get(f"/v1/partnerships/{world.ids[name]}/history", params={"limit": 500})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_the_directory_knows_partner_domains_and_matches_exactly(world: World) -> None:
    url, schema = world.settings.require_database_url(), world.settings.db_schema
    with psycopg.connect(url) as conn:
        rm = active_schema(conn, schema, "directory")
        domains = conn.execute(
            sql.SQL("SELECT domains FROM {}.partnerships WHERE partnership_id = %s").format(rm), (world.ids["Acme Oy"],)
        ).fetchone()
        assert domains == (["acme.fi"],)
        acme, globex = world.ids["Acme Oy"], world.ids["Globex Corporation"]
        assert [str(p) for p in partners_for_meeting(conn, schema, ["mail.acme.fi"], [])] == [acme]
        assert [str(p) for p in partners_for_meeting(conn, schema, [], ["globex  CORPORATION"])] == [globex]
        assert partners_for_meeting(conn, schema, ["fi", "cme.fi", "gmail.com", "initech.fi"], ["Globex"]) == []


def test_an_invitation_imported_twice_records_once(world: World) -> None:
    data = ics("twice-1@acme.fi", 5)
    dry = send(world, data, dry_run="true")
    before = stored_events(world)
    assert (dry["dry_run"], dry["recorded"], stored_events(world)) == (True, 1, before)
    first = send(world, data)
    assert (first["meetings"], first["recorded"], first["skipped"], first["refused"]) == (1, 1, [], [])
    after = stored_events(world)
    assert after == before + 1
    again = send(world, data)
    assert (again["recorded"], again["unchanged"]) == (0, 1)
    cli = run_capture(world.settings, data, Ours.of(["vtt.fi"]), "calendar:test", dry_run=False)
    assert (cli.recorded, cli.unchanged) == (0, 1)
    assert stored_events(world) == after
    (contact,) = [e for e in history(world, "Acme Oy") if e["type"] == "contact_logged"]
    assert contact["data"]["channel"] == "meeting" and contact["data"]["direction"] == "outbound"
    assert contact["data"]["participants"] == ["Anna Virtanen"] and contact["actor"] == "Oona"
    assert datetime.fromisoformat(contact["occurred_at"]) == (NOW - timedelta(days=5)).replace(microsecond=0)


def test_a_moved_meeting_is_corrected_in_the_partnerships_history(world: World) -> None:
    send(world, ics("moved-1", 4, "ATTENDEE;CN=Globex Corporation:mailto:x@globex.example"))
    moved = send(
        world, ics("moved-1", 3, "ATTENDEE;CN=Globex Corporation:mailto:x@globex.example", extra=["SEQUENCE:1"])
    )
    assert (moved["moved"], moved["recorded"]) == (1, 0)
    events = history(world, "Globex Corporation")
    contact, correction = events[-2:]
    assert contact["type"] == "contact_logged" and correction["type"] == "event_corrected"
    assert correction["data"]["event_id"] == contact["event_id"]
    new = datetime.fromisoformat(correction["data"]["changes"]["occurred_at"])
    assert new == (NOW - timedelta(days=3)).replace(microsecond=0)
    assert correction["data"]["reason"] == "calendar: meeting moved"
    again = send(world, ics("moved-1", 3, "ATTENDEE;CN=Globex Corporation:mailto:x@globex.example"))
    assert (again["moved"], again["unchanged"]) == (0, 1) and len(history(world, "Globex Corporation")) == len(events)


def test_a_cancelled_meeting_is_retracted(world: World) -> None:
    send(world, ics("cancel-1", 2))
    cancelled = send(world, ics("cancel-1", 2, extra=["STATUS:CANCELLED", "SEQUENCE:1"]))
    assert cancelled["cancelled"] == 1
    retraction = history(world, "Acme Oy")[-1]
    assert retraction["type"] == "event_retracted" and retraction["data"]["reason"] == "calendar: meeting cancelled"
    assert send(world, ics("cancel-1", 2, extra=["STATUS:CANCELLED"]))["unchanged"] == 1
    never = send(world, ics("cancel-2", 2, extra=["STATUS:CANCELLED"]))
    assert never["cancelled"] == 0 and never["skipped"][0]["reason"] == "cancelled before it was recorded"


def test_unmatched_person_domain_ended_and_future_meetings_record_nothing(world: World) -> None:
    before = stored_events(world)
    for uid, attendee in (
        ("unmatched", "ATTENDEE;CN=Someone:mailto:someone@elsewhere.org"),
        ("person-domain", "ATTENDEE;CN=Someone:mailto:someone@gmail.com"),  # a person partner's domain
        ("ended", "ATTENDEE;CN=Someone:mailto:someone@initech.fi"),  # an ended partnership
        ("similar-name", "ATTENDEE;CN=Acme:mailto:x@elsewhere.org"),  # like a name is not a name
    ):
        answer = send(world, ics(uid, 1, attendee))
        assert (answer["recorded"], answer["unmatched"]) == (0, 1), uid
    future = send(world, ics("future", -1))
    assert future["skipped"] == [
        {"uid": "future", "start": future["skipped"][0]["start"], "reason": "not yet happened"}
    ]
    assert stored_events(world) == before


def test_nothing_of_an_invitation_but_who_and_when_is_stored(world: World) -> None:
    send(world, ics("stored-1@acme.fi", 6))
    with psycopg.connect(world.settings.require_database_url()) as conn:
        stored = " ".join(
            str(conn.execute(sql.SQL(query).format(s=sql.Identifier(world.settings.db_schema))).fetchone()[0])  # type: ignore[index]
            for query in (
                "SELECT string_agg(convert_from(state, 'UTF8'), ' ') FROM {s}.verkosto_events",
                "SELECT string_agg(command_id, ' ') FROM {s}.command_log",
                "SELECT string_agg(e::text, ' ') FROM {s}.event_meta e",
            )
        )
    revealed = str([history(world, name) for name in world.ids])
    assert "stored-1" not in stored and "ics:" in stored  # the UID as a digest only
    for secret in SECRETS:
        assert secret not in stored and secret not in revealed, secret
    assert "Anna Virtanen" in revealed  # who of ours took part: kept (sealed in the store)


def test_the_endpoint_refuses_what_it_cannot_read(world: World) -> None:
    client, before = world.client, stored_events(world)
    calendar = {"Content-Type": "text/calendar"}
    malformed = client.post(PATH, content=b"not a calendar", params=OURS, headers=calendar)
    assert malformed.status_code == 422 and malformed.headers["content-type"] == "application/problem+json"
    assert malformed.json()["errors"][0]["type"] == "malformed_ics"
    assert client.post(PATH, content=ics("x", 1), params=OURS, headers={"Content-Type": "text/csv"}).status_code == 415
    assert client.post(PATH, content=ics("x", 1), headers=calendar).status_code == 422  # no domain of ours
    bad_zone = client.post(PATH, content=ics("x", 1), params={**OURS, "timezone": "Mars/Olympus"}, headers=calendar)
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "query.timezone"
    forbidden = client.post(PATH, content=ics("x", 1), params=OURS, headers={**calendar, **world.reader})
    assert forbidden.status_code == 403
    too_big = client.post(PATH, content=ics("x", 1) + b"x" * (5 * 1024 * 1024), params=OURS, headers=calendar)
    assert too_big.status_code == 413
    assert stored_events(world) == before
