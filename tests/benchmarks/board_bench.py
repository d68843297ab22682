"""The read side at organisation size: lifecycle board pages, filters, the portfolio and a
long trust trajectory, p50 / p99 through the API (TestClient, no network).

    .venv/bin/python -m tests.benchmarks.board_bench [--partners 5000] [--seed-partners 250]

The organisation: ``--seed-partners`` demo partnerships (services/demo.py) go through the
real command path once; their published events are then cloned under fresh ids and names
until there are ``--partners`` partnerships, plus 20 long ones (3,000 contacts and
interest signals each), and applied by the projector's own Tracker in batches of 1,000
(no Kafka: this measures the read side). Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from contract.commands import any_command
from contract.events import published_event
from projections.catalog import all_projections
from projections.tracking import Delivered, Tracker
from services.api.app import create_app
from services.application import Request
from services.auth import issue_token
from services.db import connect, migrate, open_application
from services.demo import commands
from services.embedded import EmbeddedPostgres
from services.settings import Settings

START = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def seed_events(settings: Settings, partners: int) -> list[dict[str, Any]]:
    app = open_application(settings.require_database_url(), settings.db_schema)
    try:
        for _, cmd in commands(START, NOW, partners, seed=11):
            if "partnership_id" in cmd:
                app.execute([Request(any_command.validate_python(cmd), "demo", "api")])
        notes = app.recorder.select_notifications(start=0, limit=10_000_000, inclusive_of_start=False)
        return [published_event(n.topic, n.state, n.id, app.reveal) for n in notes]
    finally:
        app.close()


def organisation(seed: list[dict[str, Any]], partners: int, long_ones: int, long_events: int) -> list[dict[str, Any]]:
    by_pid: dict[str, list[dict[str, Any]]] = {}
    for e in seed:
        by_pid.setdefault(e["aggregate_id"], []).append(e)
    templates = list(by_pid.values())
    out: list[dict[str, Any]] = []
    for n in range(partners):
        pid = str(uuid.uuid4())
        for e in templates[n % len(templates)]:
            data = e["data"]
            if e["type"] == "partnership_opened":
                data = {**data, "partner": {**data["partner"], "name": f"{data['partner']['name']} {n:05d}"}}
            out.append({**e, "aggregate_id": pid, "event_id": f"{pid}:{e['version']}", "data": data})
        if n < long_ones:
            last = out[-1]
            opened = datetime.fromisoformat(next(e for e in out if e["aggregate_id"] == pid)["occurred_at"])
            span = (datetime.fromisoformat(last["occurred_at"]) - opened) / (long_events + 1)
            version = last["version"]
            for k in range(long_events):
                version += 1
                kind, data = (
                    ("contact_logged", {"channel": "call", "direction": "inbound", "participants": ["Aino"]})
                    if k % 2
                    else ("interest_signalled", {"direction": "outbound", "strength": 2})
                )
                at = (opened + span * (k + 1)).isoformat()
                out.append(
                    {**last, "version": version, "event_id": f"{pid}:{version}", "type": kind, "occurred_at": at,
                     "data": data}
                )  # fmt: skip
    for position, e in enumerate(out, start=1):
        e["position"] = position
    return out


def project(settings: Settings, events: list[dict[str, Any]], batch: int = 1000) -> float:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            tracker = Tracker(settings.db_schema)
            for i in range(0, len(events), batch):
                chunk = [Delivered(0, i + k, e) for k, e in enumerate(events[i : i + batch])]
                await tracker.apply(conn, all_projections(), chunk)

    began = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - began


def measure(client: TestClient, headers: dict[str, str], path: str, params: dict[str, Any], n: int) -> str:
    times, size = [], 0
    for _ in range(n):
        began = time.perf_counter()
        answer = client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * len(times)) - 1)]
    return f"p50 {statistics.median(times):6.1f} ms  p99 {p99:6.1f} ms  {size / 1024:7.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partners", type=int, default=5000)
    parser.add_argument("--seed-partners", type=int, default=250)
    parser.add_argument("--long", type=int, default=20)
    parser.add_argument("--long-events", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verkosto-board-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            settings = Settings(database_url=url, kafka_bootstrap="localhost:1", data_dir=Path(tmp), db_schema="bench")
            migrate(url, settings.db_schema)
            began = time.perf_counter()
            seed = seed_events(settings, args.seed_partners)
            events = organisation(seed, args.partners, args.long, args.long_events)
            print(
                f"seeded {len(seed)} events in {time.perf_counter() - began:.0f} s; organisation: {len(events)} events"
            )
            took = project(settings, events)
            print(f"projected (all projections, batches of 1,000): {len(events) / took:,.0f} events/s")
            with connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
                token = issue_token(conn, settings.db_schema, "bench", ["dashboards:read"])
            headers = {"Authorization": f"Bearer {token}"}
            with TestClient(create_app(settings)) as client:
                board = client.get("/v1/projections/lifecycle", headers=headers).json()
                steward = board["partnerships"][0]["steward"]
                stage = board["partnerships"][0]["stage"]
                long_pid = events[1]["aggregate_id"] if args.long else board["partnerships"][0]["partnership_id"]
                then = (NOW - timedelta(days=700)).isoformat()
                cases = [
                    ("lifecycle first page", "/v1/projections/lifecycle", {}),
                    ("lifecycle second page", "/v1/projections/lifecycle", {"cursor": board["next_cursor"]}),
                    ("lifecycle ?steward=", "/v1/projections/lifecycle", {"steward": steward}),
                    ("lifecycle ?stage=", "/v1/projections/lifecycle", {"stage": stage}),
                    ("lifecycle ?flag=under_served", "/v1/projections/lifecycle", {"flag": "under_served"}),
                    ("lifecycle ?flag=rising", "/v1/projections/lifecycle", {"flag": "rising"}),
                    ("lifecycle ?flag=needs_handover", "/v1/projections/lifecycle", {"flag": "needs_handover"}),
                    ("lifecycle ?flag=wind_down…", "/v1/projections/lifecycle", {"flag": "wind_down_candidate"}),
                    ("lifecycle as_of 700 days ago", "/v1/projections/lifecycle", {"as_of": then}),
                    ("portfolio", "/v1/projections/portfolio", {}),
                    ("portfolio/members ++/++", "/v1/projections/portfolio/members", {"now": "++", "future": "++"}),
                    ("trust of a long partnership", f"/v1/projections/trust/{long_pid}", {}),
                ]  # fmt: skip
                for label, path, params in cases:
                    print(f"{label:38} {measure(client, headers, path, params, args.requests)}")
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
