"""Auditors search every recorded event by who, what, where from and both time axes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from contract import commands as c
from services.application import Request, Verkosto
from services.audit.search import EventQuery, search, search_all
from services.settings import Settings

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def story(app: Verkosto) -> uuid.UUID:
    pid = uuid.uuid4()
    app.execute(
        [
            Request(
                c.OpenPartnership(
                    partnership_id=pid,
                    partner=PARTNER,
                    owner_unit="u",
                    steward="s",  # type: ignore[arg-type]
                    occurred_at=datetime(2022, 1, 1, tzinfo=UTC),
                ),
                "crm",
                "kafka",
            )
        ]
    )
    for year, actor in ((2022, "calendar"), (2023, "calendar"), (2024, "mail")):
        app.execute(
            [
                Request(
                    c.LogContact(
                        type="contact_logged",
                        partnership_id=pid,
                        channel="call",
                        direction="inbound",
                        participants=("s",),
                        occurred_at=datetime(year, 6, 1, tzinfo=UTC),
                    ),
                    actor,
                    "api",
                )
            ]
        )
    app.execute(
        [
            Request(
                c.JoinNetwork(name="Forum", purposes=("influence",), role="member", activity="active"),  # type: ignore[arg-type]
                "calendar",
                "api",
            )
        ]
    )
    return pid


def find(settings: Settings, **filters: object) -> list[tuple[int, str, str]]:
    with psycopg.connect(settings.require_database_url()) as conn:
        events = search(conn, settings.db_schema, EventQuery(**filters))  # type: ignore[arg-type]
    return [(e["position"], e["type"], e["actor"]) for e in events]


def test_each_filter_narrows_the_search(app: Verkosto, settings: Settings) -> None:
    pid = story(app)
    assert [p for p, _, _ in find(settings)] == [1, 2, 3, 4, 5]
    assert find(settings, actor="calendar") == [
        (2, "contact_logged", "calendar"),
        (3, "contact_logged", "calendar"),
        (5, "network_joined", "calendar"),
    ]
    assert [p for p, _, _ in find(settings, type="contact_logged", actor="calendar")] == [2, 3]
    assert [p for p, _, _ in find(settings, source="kafka")] == [1]
    assert [p for p, _, _ in find(settings, aggregate_type="network")] == [5]
    assert [
        p
        for p, _, _ in find(
            settings, aggregate_id=pid, type="contact_logged", occurred_from=datetime(2023, 1, 1, tzinfo=UTC)
        )
    ] == [3, 4]
    assert [p for p, _, _ in find(settings, occurred_to=datetime(2022, 12, 31, tzinfo=UTC))] == [1, 2]
    assert find(settings, recorded_from=datetime(2100, 1, 1, tzinfo=UTC)) == []
    assert len(find(settings, recorded_to=datetime(2100, 1, 1, tzinfo=UTC))) == 5


def test_pages_follow_each_other_in_stable_global_order(app: Verkosto, settings: Settings) -> None:
    story(app)
    with psycopg.connect(settings.require_database_url()) as conn:
        first = search(conn, settings.db_schema, EventQuery(), after=0, limit=2)
        second = search(conn, settings.db_schema, EventQuery(), after=first[-1]["position"], limit=2)
        everything = list(search_all(conn, settings.db_schema, EventQuery(), page=2))
    assert [e["position"] for e in first + second] == [1, 2, 3, 4]
    assert [e["position"] for e in everything] == [1, 2, 3, 4, 5]


def test_export_writes_json_lines_or_csv_and_is_itself_recorded(
    app: Verkosto, settings: Settings, tmp_path: Path
) -> None:
    story(app)
    env = {
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"export.{fmt}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "--data-dir",
                str(tmp_path),
                "audit",
                "export",
                "--format",
                fmt,
                "--output",
                str(out),
                "--actor",
                "calendar",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        if fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        else:
            rows = list(csv.DictReader(out.open()))
        assert [int(r["position"]) for r in rows] == [2, 3, 5]
        assert {r["actor"] for r in rows} == {"calendar"}
    with psycopg.connect(settings.require_database_url()) as conn:
        reads = conn.execute(f'SELECT path, query FROM "{settings.db_schema}".audit_reads ORDER BY id').fetchall()
    assert [(path, query["actor"]) for path, query in reads] == [("verkosto audit export", "calendar")] * 2
