"""`verkosto import partnerships` and `POST /v1/imports` against real PostgreSQL and a real
broker: rows become back-dated partnerships at their stage, the relay publishes them and
the projector's Tracker applies them (tests/integration/test_parking.py's path), the same
file twice records nothing more, a dry run records nothing, refused rows say why, and a
partner like one already in the directory is refused as a possible duplicate."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.rows import dict_row
from rich.console import Console

from contract import commands as c
from domain.partnership import Partnership
from projections.registry import active_schema
from services.api.app import create_app
from services.application import Request, Verkosto
from services.auth import issue_token
from services.cli import main
from services.cli_import import run_import
from services.db import connect
from services.importer import partnership_id
from services.settings import Settings
from tests.benchmarks import import_bench
from tests.integration.test_parking import project, published

HEADER = "partner,kind,roles,unit,steward,since,stage,segment_now,segment_future,last_contact,contact_channel,contact_direction,domains"  # noqa: E501
ROWS = [
    "Acme Oy,,customer;funder,research,Aino,2019-03-01,manage,+,++,2024-05-02,meeting,outbound,acme.fi",
    "Beta ry,group,user,operations,Ville,2020-01-01T09:00:00+02:00,,,,,,,",
    "Kallio Consulting,,supplier,operations,Ville,2018-06-15,wind_down,-,--,,,,",
    "Broken Ab,,wizard,research,Aino,2019-01-01,,,,,,,",  # refused: no such role
    "ACME oy,,user,sales,Oona,2019-01-01,,,,,,,",  # refused: Acme Oy again
]
FILE = "\n".join([HEADER, *ROWS]).encode()
ACME = partnership_id("Acme Oy", "research")


def quiet() -> Console:
    return Console(file=io.StringIO())


def events(app: Verkosto) -> int:
    return app.recorder.max_notification_id() or 0


def directory_rows(settings: Settings) -> dict[str, dict[str, Any]]:
    with psycopg.connect(settings.require_database_url(), row_factory=dict_row) as conn:
        rm = active_schema(conn, settings.db_schema, "directory")
        rows = conn.execute(sql.SQL("SELECT * FROM {}.partnerships").format(rm)).fetchall()
    return {r["partner_name"]: r for r in rows}


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VERKOSTO_DATABASE_URL", settings.require_database_url())
    monkeypatch.setenv("VERKOSTO_KAFKA_BOOTSTRAP", settings.require_kafka_bootstrap())
    monkeypatch.setenv("VERKOSTO_DB_SCHEMA", settings.db_schema)
    monkeypatch.setenv("VERKOSTO_DATA_DIR", str(settings.data_dir))
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "onboarder", ["events:write"])
    # A general body limit above the import's own, so the import's 413 is the one seen.
    with TestClient(create_app(settings.model_copy(update={"max_body_bytes": 8 * 1024 * 1024}))) as test_client:
        yield test_client, {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}


def test_the_cli_imports_back_dated_partnerships_the_bus_and_projections_see(
    app: Verkosto, cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "partnerships.csv"
    path.write_bytes(FILE)
    assert main(["import", "partnerships", str(path), "--actor", "onboarding"]) == 1  # rows were refused
    out = capsys.readouterr().out
    assert "refused (2)" in out and "repeated_in_file" in out
    assert events(app) == 4 + 1 + 3  # Acme: open, stage, segment, contact; Beta: open; Kallio: open, stage, segment

    history = app.history(ACME, Partnership)
    assert [e["type"] for e in history] == ["partnership_opened", "stage_changed", "segmented", "contact_logged"]
    since = datetime(2019, 3, 1, tzinfo=UTC)  # the opening back-dated, and the stage reached then
    assert [datetime.fromisoformat(e["occurred_at"]) for e in history[:3]] == [since, since, since]
    assert history[1]["data"]["reason"] == "imported" and history[1]["data"]["stage"] == "manage"
    assert {e["actor"] for e in history} == {"onboarding"} and {e["source"] for e in history} == {"api"}
    kallio = app.get(partnership_id("Kallio Consulting", "operations"), Partnership)
    assert kallio.stage.value == "wind_down" and kallio.started_at.year == 2018

    project(cli_env, published(app, cli_env))  # through the relay and the broker
    found = directory_rows(cli_env)
    assert set(found) == {"Acme Oy", "Beta ry", "Kallio Consulting"}
    assert (found["Acme Oy"]["stage"], found["Acme Oy"]["segment_future"]) == ("manage", "++")
    assert found["Acme Oy"]["opened_at"] == datetime(2019, 3, 1, tzinfo=UTC)

    before = events(app)
    assert main(["import", "partnerships", str(path)]) == 1  # the same refusals again, nothing else
    assert events(app) == before


def test_a_dry_run_records_nothing_and_says_what_it_would_do(app: Verkosto, settings: Settings) -> None:
    report = run_import(settings, FILE, "onboarding", True, False, quiet())
    assert events(app) == 0
    assert [p.values.partner for p in report.created] == ["Acme Oy", "Beta ry", "Kallio Consulting"]
    assert [(r.row, r.reason, r.column) for r in report.refused] == [
        (5, "invalid", "roles"),
        (6, "repeated_in_file", "partner"),
    ]
    run_import(settings, FILE, "onboarding", False, False, quiet())
    again = run_import(settings, FILE, "onboarding", True, False, quiet())
    assert again.created == [] and len(again.already_imported) == 3


def test_a_partner_like_one_in_the_directory_is_refused_unless_allowed(app: Verkosto, settings: Settings) -> None:
    partner = {"name": "Acme Oyj", "kind": "organisation", "roles": ["customer"]}
    opened = c.model("OpenPartnership").model_validate({"partner": partner, "owner_unit": "sales", "steward": "Oona"})
    (existing,) = app.execute([Request(opened, "tester", "api")])
    project(settings, published(app, settings))  # the directory now knows Acme Oyj
    report = run_import(settings, FILE, "onboarding", False, False, quiet())
    duplicate = next(r for r in report.refused if r.reason == "possible_duplicate")
    assert duplicate.row == 2 and [m[1] for m in duplicate.matches] == ["Acme Oyj"]
    assert duplicate.matches[0][0] == existing.aggregate_id  # type: ignore[union-attr]
    assert [p.values.partner for p in report.created] == ["Beta ry", "Kallio Consulting"]
    allowed = run_import(settings, FILE, "onboarding", False, True, quiet())
    assert [p.values.partner for p in allowed.created] == ["Acme Oy"]
    assert app.get(ACME, Partnership).stage.value == "manage"


def test_the_http_import_answers_as_the_cli_does(
    app: Verkosto, settings: Settings, client: tuple[TestClient, dict[str, str]]
) -> None:
    http, headers = client
    dry = http.post("/v1/imports", params={"dry_run": "true"}, content=FILE, headers=headers)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and events(app) == 0
    assert [r["partner"] for r in dry.json()["created"]] == ["Acme Oy", "Beta ry", "Kallio Consulting"]
    assert [(r["row"], r["column"], r["reason"]) for r in dry.json()["refused"]] == [
        (5, "roles", "invalid"),
        (6, "partner", "repeated_in_file"),
    ]

    done = http.post("/v1/imports", content=FILE, headers=headers).json()
    assert done["dry_run"] is False and done["events_recorded"] == 8 and events(app) == 8
    acme = next(r for r in done["created"] if r["partner"] == "Acme Oy")
    assert acme == {"row": 2, "partner": "Acme Oy", "partnership_id": str(ACME), "stage": "manage",
                    "segment": {"now": "+", "future": "++"}}  # fmt: skip
    assert app.domain_events(ACME)[0].meta.actor == "onboarder"

    again = http.post("/v1/imports", content=FILE, headers=headers).json()
    assert (again["created"], again["events_recorded"], len(again["already_imported"])) == ([], 0, 3)
    assert events(app) == 8


def test_the_http_import_refuses_what_it_cannot_read(
    settings: Settings, client: tuple[TestClient, dict[str, str]]
) -> None:
    http, headers = client
    malformed = http.post("/v1/imports", content=b"name,colour\nAcme,red\n", headers=headers)
    assert malformed.status_code == 422 and malformed.headers["content-type"] == "application/problem+json"
    assert (
        malformed.json()["code"] == "validation_failed"
        and "the file has unknown column(s): name, colour" in malformed.json()["detail"]
    )
    as_json = http.post("/v1/imports", json={"rows": []}, headers={"Authorization": headers["Authorization"]})
    assert as_json.status_code == 415 and as_json.json()["code"] == "unsupported_media_type"
    too_big = http.post("/v1/imports", content=FILE + b"x" * (5 * 1024 * 1024), headers=headers)
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
    with connect(settings.require_database_url(), autocommit=True) as conn:
        reader = issue_token(conn, settings.db_schema, "reader", ["history:read"])
    forbidden = http.post("/v1/imports", content=FILE, headers={**headers, "Authorization": f"Bearer {reader}"})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "insufficient_scope"


def test_a_small_benchmark_run_imports_every_row_once(database_url: str, kafka_bootstrap: str) -> None:
    """Keeps tests/benchmarks/import_bench.py from rotting: counts only, never times."""
    unchecked, dry, real, again, relay = import_bench.run(database_url, kafka_bootstrap, rows=40, existing=20)
    assert (unchecked.events, dry.events, dry.refused, dry.rows) == (0, 0, 0, 40)
    assert real.refused == 0 and real.events == 40 + 32 + 30 + 20  # opens, stage moves, segments, contacts
    assert (again.events, again.refused) == (0, 0)
    assert relay.events == real.events
