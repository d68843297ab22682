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
from services.privacy import KeyStore, person, subject_hash, unseal_event
from services.settings import Settings
from tests.benchmarks.audit_search import explain, load

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
                c.JoinNetwork(
                    name="Forum",
                    purposes=("influence",),  # type: ignore[arg-type]
                    role="member",  # type: ignore[arg-type]
                    activity="active",  # type: ignore[arg-type]
                    owner_unit="research",
                    steward="alice",
                ),
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


def test_a_page_about_many_people_looks_their_keys_up_together(app: Verkosto, settings: Settings) -> None:
    pid = story(app)
    stewards = [f"Steward {n}" for n in range(6)]
    for steward in stewards:
        app.execute(
            [
                Request(
                    c.TransferOwnership(
                        type="ownership_transferred",
                        partnership_id=pid,
                        owner_unit="u",
                        steward=steward,
                        reason="reassignment",
                    ),
                    "crm",
                    "api",
                )
            ]  # type: ignore[arg-type]
        )
    assert app.keys is not None
    keys = KeyStore(settings.require_database_url(), settings.db_schema)  # a cold cache, as in a fresh API
    try:
        with psycopg.connect(settings.require_database_url()) as conn:
            query = EventQuery(type="ownership_transferred")
            # Nothing revealed: only the prefetch can have asked for the stewards' keys.
            search(conn, settings.db_schema, query, keys=keys)
            assert {subject_hash(person(steward)) for steward in stewards} <= set(keys.cache)
            revealed = search(conn, settings.db_schema, query, reveal=app.reveal)
            cold = search(conn, settings.db_schema, query, reveal=lambda t, s: unseal_event(t, s, keys), keys=keys)
        assert [e["data"]["steward"] for e in cold] == stewards
        assert cold == revealed
    finally:
        keys.close()


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


# At size: every documented filter is answered from an index ---------------------------

FILTERS: dict[str, EventQuery] = {
    "actor": EventQuery(actor="rare-auditor"),
    "source": EventQuery(source="kafka"),
    "type": EventQuery(type="partnership_opened"),
    "aggregate type": EventQuery(aggregate_type="network"),
    "occurred range": EventQuery(
        occurred_from=datetime(2020, 1, 2, tzinfo=UTC), occurred_to=datetime(2020, 1, 2, 1, tzinfo=UTC)
    ),
}
# What the index condition must mention for each filter: the index answers the filter
# itself, not merely the position order (the primary key with a Filter would be a scan).
INDEXED = {
    "actor": "actor =",
    "source": "source =",
    "type": "topic =",
    "aggregate type": "topic =",
    "aggregate": "originator_id =",
    "occurred range": "occurred_at",
    "recorded range": "recorded_at",
}


def reference(everything: list[dict[str, object]], name: str, query: EventQuery) -> list[int]:
    """The positions a filter must find, decided in Python over every event."""

    def at(value: object) -> datetime:
        return datetime.fromisoformat(str(value))

    keep = {
        "actor": lambda e: e["actor"] == query.actor,
        "source": lambda e: e["source"] == query.source,
        "type": lambda e: e["type"] == query.type,
        "aggregate type": lambda e: e["aggregate_type"] == query.aggregate_type,
        "aggregate": lambda e: e["aggregate_id"] == str(query.aggregate_id),
        "occurred range": lambda e: query.occurred_from <= at(e["occurred_at"]) < query.occurred_to,  # type: ignore[operator]
        "recorded range": lambda e: query.recorded_from <= at(e["recorded_at"]) < query.recorded_to,  # type: ignore[operator]
    }[name]
    return [int(str(e["position"])) for e in everything if keep(e)]


def index_conditions(plan: object) -> list[str]:
    """Every node's Index Cond in an EXPLAIN (FORMAT JSON) plan, and whether any node
    scans the events or their meta sequentially (as the string "Seq Scan")."""
    found: list[str] = []
    if isinstance(plan, dict):
        if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in ("verkosto_events", "event_meta"):
            found.append("Seq Scan")
        if "Index Cond" in plan:
            found.append(str(plan["Index Cond"]))
        for value in plan.values():
            found.extend(index_conditions(value))
    elif isinstance(plan, list):
        for item in plan:
            found.extend(index_conditions(item))
    return found


def test_every_filter_finds_the_same_events_through_an_index(app: Verkosto, settings: Settings) -> None:
    story(app)  # one network among them
    load(app, 4_000, per_partnership=100, batch=100, rare_every=400)
    url, schema = settings.require_database_url(), settings.db_schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{schema}".verkosto_events')
        everything = list(search_all(conn, schema, EventQuery()))
        # One batch is recorded at one moment: ask for the last but one batch.
        recorded = sorted({datetime.fromisoformat(e["recorded_at"]) for e in everything})
        filters = {
            **FILTERS,
            "aggregate": EventQuery(aggregate_id=uuid.UUID(everything[0]["aggregate_id"])),
            "recorded range": EventQuery(recorded_from=recorded[-2], recorded_to=recorded[-1]),
        }
        for name, query in filters.items():
            expected = reference(everything, name, query)
            assert 0 < len(expected) < len(everything) // 10, name  # selective, as an auditor's question is
            assert [e["position"] for e in search_all(conn, schema, query, page=7)] == expected, name
            [row] = explain(conn, schema, query, options="(FORMAT JSON)")
            conditions = index_conditions(row["QUERY PLAN"])
            assert "Seq Scan" not in conditions, (name, conditions)
            assert any(INDEXED[name] in c for c in conditions), (name, conditions)
