"""Audit search at size: p50/p99 of each documented filter, and the plan it used.

    python -m tests.benchmarks.audit_search [--events 200000] [--repeat 50]

Loads the events straight through the application (Verkosto.execute in batches; no
Kafka), a few of them by a rare actor and source, then times GET /v1/audit/events'
query (services.audit.search) for one filter at a time and prints p50/p99 in ms with
whether the plan scanned the whole table. Uses VERKOSTO_DATABASE_URL when set, else an
embedded PostgreSQL. Reports; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract import commands as c
from services.application import Request, Verkosto
from services.audit.search import EventQuery, search, search_kwargs
from services.db import connect, drop_everything, migrate, open_application
from services.embedded import EmbeddedPostgres
from services.store import EventStore
from services.store_search import SearchStore

PARTNER = {"name": "Audit Oy", "kind": "organisation", "roles": ["customer"]}
START = datetime(2020, 1, 1, tzinfo=UTC)
RARE_EVERY = 10_000  # one event in this many is by the rare actor (and, like the openings, from Kafka)


@contextmanager
def database() -> Iterator[str]:
    if os.environ.get("VERKOSTO_DATABASE_URL"):
        yield os.environ["VERKOSTO_DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="verkosto-audit-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            yield url
        finally:
            postgres.stop()


def load(
    app: Verkosto, events: int, per_partnership: int = 100, batch: int = 500, rare_every: int = RARE_EVERY
) -> float:
    """Loads about ``events`` events, returns the events per second it took."""
    ids = [uuid.uuid4() for _ in range(max(1, events // per_partnership))]
    requests: list[Request] = [
        Request(
            c.OpenPartnership(partnership_id=pid, partner=PARTNER, owner_unit="u", steward="s", occurred_at=START),
            "crm",
            "kafka",
        )
        for pid in ids
    ]
    n = len(requests)
    while n < events:
        pid = ids[n % len(ids)]
        rare = n % rare_every == rare_every // 2
        when = START + timedelta(minutes=n)  # six years over 3M events: a spread of occurrences
        requests.append(
            Request(
                c.LogContact(
                    type="contact_logged",
                    partnership_id=pid,
                    channel="call",
                    direction="inbound",
                    participants=("s",),
                    occurred_at=when,
                ),
                "rare-auditor" if rare else ("calendar" if n % 2 else "mail"),
                "kafka" if rare else "api",
            )
        )
        n += 1
    started = time.perf_counter()
    for i in range(0, len(requests), batch):
        app.execute(requests[i : i + batch])
    return len(requests) / (time.perf_counter() - started)


class Explaining(SearchStore):
    """SearchStore's own statements, EXPLAINed (with these options) instead of run."""

    def __init__(self, schema: str, options: str = "") -> None:
        super().__init__(schema)
        self.explain = f"EXPLAIN {options} " if options else "EXPLAIN "

    def _all(self, conn: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
        return super()._all(conn, self.explain + query, params)


def explain(
    conn: Any, schema: str, query: EventQuery, after: int = 0, limit: int = 100, options: str = ""
) -> list[dict[str, Any]]:
    """The rows of EXPLAIN (with these options) of the statement search() runs for this query."""
    return Explaining(schema, options).search(conn, after=after, limit=limit, **search_kwargs(query))


def plan(conn: Any, schema: str, query: EventQuery, after: int, limit: int) -> str:
    """The plan of the statement search() runs for this query, as text."""
    return "\n".join(str(r["QUERY PLAN"]) for r in explain(conn, schema, query, after, limit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--keep", metavar="SCHEMA", help="load into this schema once, keep it and reuse it after")
    args = parser.parse_args()
    schema = args.keep or f"audit_bench_{uuid.uuid4().hex[:8]}"
    with database() as url:
        with connect(url, autocommit=True) as conn:
            loaded = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        migrate(url, schema)  # idempotent: also what an upgrade of a kept schema runs
        try:
            rate = 0.0
            if not loaded:
                app = open_application(url, schema)
                try:
                    rate = load(app, args.events)
                finally:
                    app.close()
            report(url, schema, args.events, args.repeat, rate)
        finally:
            if not args.keep:
                drop_everything(url, schema)


def report(url: str, schema: str, events: int, repeat: int, rate: float) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{schema}".verkosto_events, "{schema}".event_meta')
        total = EventStore(schema).count(conn)
        first = EventStore(schema).events_after(conn, 0, 1)[0]
        aggregate = json.loads(bytes(first["state"]))["originator_id"]
        recorded: Any = conn.execute(
            f'SELECT recorded_at AS at FROM "{schema}".event_meta WHERE notification_id = %s',
            (total - total // 100,),
        ).fetchone()
        recorded = recorded["at"] if recorded else None
        middle = START + timedelta(minutes=total // 2)
        filters: dict[str, EventQuery] = {
            "rare actor": EventQuery(actor="rare-auditor"),
            "common actor": EventQuery(actor="calendar"),
            "source (1%)": EventQuery(source="kafka"),
            "source (99%)": EventQuery(source="api"),
            "type": EventQuery(type="contact_logged"),
            "rare type": EventQuery(type="partnership_opened"),
            "aggregate type": EventQuery(aggregate_type="network"),
            "aggregate": EventQuery(aggregate_id=uuid.UUID(aggregate)),
            "occurred (1 day)": EventQuery(occurred_from=middle, occurred_to=middle + timedelta(days=1)),
            "occurred (from)": EventQuery(occurred_from=middle),
            "recorded (last 1%)": EventQuery(recorded_from=recorded),
            "recorded (to)": EventQuery(recorded_to=recorded),
        }
        print(f"{total} events in {schema}; loaded at {rate:,.0f} events/s; load {os.getloadavg()}")
        print(f"{'filter':<22}{'hits':>6}{'p50 ms':>9}{'p99 ms':>9}  plan")
        results = {}
        for name, query in filters.items():
            times = []
            hits = 0
            for _ in range(repeat):
                started = time.perf_counter()
                hits = len(search(conn, schema, query, 0, 100))
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p50 = statistics.median(times)
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            text = plan(conn, schema, query, 0, 100)
            scan = "SEQ SCAN" if "Seq Scan on verkosto_events" in text or "Seq Scan on event_meta" in text else "index"
            results[name] = {"hits": hits, "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "plan": scan}
            print(f"{name:<22}{hits:>6}{p50:>9.2f}{p99:>9.2f}  {scan}")
        print(json.dumps({"events": total, "load_rate": round(rate), "filters": results}))


if __name__ == "__main__":
    main()
