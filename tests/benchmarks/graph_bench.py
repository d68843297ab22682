"""The graph over time at organisation size: 5,000 partnerships and 200 networks.

    .venv/bin/python -m tests.benchmarks.graph_bench [--partners 5000] [--networks 200] [--exact]

Three years of history, made as published events and applied straight into the graph
read model by the projector's own Tracker (the projection's apply and its redelivery
guard; no HTTP, no Kafka): networks joined over the first two years, each with 10-150
members (few large, many small), every partnership in 0-4 networks; some members leave,
a few networks are left and some partnerships end. Then what the two GETs do, timed:
the graph as of now (full, and the networks-only view for a drawing), and the measures
for 8 quarters (the SQL, then networkx per quarter cold, then again from the cache).
``--exact`` also times exact betweenness on the last quarter's whole bipartite graph, and
how far networkx's estimate of it from 200 pivots is for the networks (why the API takes
betweenness on the networks' projection instead: services/api/graph.py). Reports; asserts only that nothing was parked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import psycopg
from networkx.algorithms import bipartite

from contract.events import SCHEMA
from projections.graph import graph_projection
from projections.queries import graph as queries
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from services.api import graph as api
from services.db import migrate
from services.embedded import EmbeddedPostgres

NOW = datetime(2025, 12, 15, tzinfo=UTC)
PIVOTS = 200
START = NOW - timedelta(days=3 * 365)
Event = dict[str, Any]


class History:
    """Published events per aggregate, each aggregate's in time order."""

    def __init__(self) -> None:
        self.by_aggregate: dict[str, list[Event]] = {}

    def add(self, kind: str, aggregate: str, event_type: str, at: datetime, data: dict[str, Any]) -> None:
        events = self.by_aggregate.setdefault(aggregate, [])
        version = len(events) + 1
        events.append(
            {"schema": SCHEMA, "position": 0, "event_id": f"{aggregate}:{version}", "aggregate_type": kind,
             "aggregate_id": aggregate, "version": version, "type": event_type, "occurred_at": at.isoformat(),
             "recorded_at": at.isoformat(), "actor": "graph-bench", "on_behalf_of": None, "source": "api",
             "command_id": None, "data": data}
        )  # fmt: skip

    def in_order(self) -> list[Event]:
        every = sorted((e for events in self.by_aggregate.values() for e in events), key=lambda e: e["occurred_at"])
        for position, event in enumerate(every, start=1):
            event["position"] = position
        return every


def organisation(partners: int, networks: int, seed: int = 5) -> History:
    rng = random.Random(seed)
    history = History()

    def moment(after: datetime, before: datetime = NOW) -> datetime:
        return after + (before - after) * rng.random()

    pids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(partners)]
    opened = {pid: moment(START - timedelta(days=365), START) for pid in pids}
    for n, pid in enumerate(pids):
        partner = {"name": f"Partner {n:05d} Oy", "kind": "organisation", "roles": ["customer"]}
        history.add("partnership", pid, "partnership_opened", opened[pid],
                    {"partner": partner, "owner_unit": "research", "steward": "Aino"})  # fmt: skip
    capacity = {pid: rng.choices(range(5), weights=(10, 25, 30, 20, 15))[0] for pid in pids}  # 0-4 networks
    ends: dict[str, datetime] = {}
    for pid in rng.sample(pids, partners // 20):  # some partnerships end in the last year
        ends[pid] = moment(NOW - timedelta(days=365))
    for n in range(networks):
        nid = str(uuid.UUID(int=rng.getrandbits(128)))
        joined = moment(START, START + timedelta(days=730))
        history.add("network", nid, "network_joined", joined,
                    {"name": f"Network {n:03d}", "purposes": ["influence"], "role": "member", "activity": "active",
                     "best_before": None, "owner_unit": "research", "steward": "Aino"})  # fmt: skip
        left = moment(joined) if rng.random() < 0.05 else None
        size = int(10 + 140 * rng.random() ** 2)  # 10-150, few large
        available = [pid for pid in pids if capacity[pid] > 0]
        changes: list[tuple[datetime, str, str]] = []
        for pid in rng.sample(available, min(size, len(available))):
            capacity[pid] -= 1
            added = moment(joined, left or NOW)
            if pid in ends and ends[pid] <= added:
                continue  # an ended partnership cannot join
            changes.append((added, "member_added", pid))
            if rng.random() < 0.15:
                changes.append((moment(added, left or NOW), "member_removed", pid))
        for at, kind, pid in sorted(changes):
            history.add("network", nid, kind, at, {"partnership_id": pid})
        if left:
            history.add("network", nid, "network_left", left, {"reason": "low_efficiency"})
    for pid, at in ends.items():
        history.add("partnership", pid, "stage_changed", at,
                    {"previous": "wind_down", "stage": "ended", "reason": "done", "note": None})  # fmt: skip
    return history


def project(url: str, schema: str, events: list[Event], batch: int = 1_000) -> float:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            tracker = Tracker(schema)
            for i in range(0, len(events), batch):
                chunk = [Delivered(0, i + k, e) for k, e in enumerate(events[i : i + batch])]
                await tracker.apply(conn, [graph_projection()], chunk)

    began = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - began


def timed(work: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The median seconds of ``repeat`` runs, and the last answer."""
    times, answer = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        answer = work()
        times.append(time.perf_counter() - began)
    return statistics.median(times), answer


def report(url: str, schema: str, exact: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        rm = active_schema(conn, schema, "graph")
        for detail in (True, False):
            took, graph = timed(lambda d=detail: queries.graph_at(conn, rm, NOW, partners=d), repeat=20)
            size = len(json.dumps(graph, default=str))
            label = "full" if detail else "networks only"
            print(f"GET /v1/graph as of now ({label}): {took * 1000:7.1f} ms  {size / 1024:8.1f} KiB  "
                  f"{len(graph['nodes'])} nodes, {len(graph['edges'])} edges, "
                  f"{len(graph['shared_members'])} network pairs sharing members")  # fmt: skip
        ends = api.quarter_ends(api.quarter_start(NOW, back=7), NOW)
        moments = [at for _, at in ends]
        took, (edges, networks) = timed(
            lambda: (queries.edges_at(conn, rm, moments), queries.networks_at(conn, rm, moments)), repeat=5
        )
    print(f"measures, 8 quarters: SQL for the edges and networks {took * 1000:.1f} ms")
    total = 0.0
    for (label, _), n, e in zip(ends, networks, edges, strict=True):
        took, m = timed(lambda n=n, e=e: api.measure(frozenset(n), frozenset(e)))
        total += took
        print(f"  {label}: {len(n)} networks, {m['partnerships']} partners, {m['memberships']} memberships, "
              f"{m['components']} components, {len(m['brokers'])} brokers: {took:6.2f} s")  # fmt: skip
    print(f"measures, 8 quarters, networkx cold: {total:.1f} s")
    api._cache.clear()
    for n, e in zip(networks, edges, strict=True):
        api.measured(n, e)
    warm, _ = timed(lambda: [api.measured(n, e) for n, e in zip(networks, edges, strict=True)], repeat=5)
    print(f"measures, 8 quarters, from the cache: {warm * 1000:.1f} ms")
    graph, tops, _ = api._graph(frozenset(networks[-1]), frozenset(edges[-1]))
    parts: dict[str, Callable[[], Any]] = {
        "bipartite degree": lambda: bipartite.degree_centrality(graph, tops),
        "projection and its betweenness": lambda: nx.betweenness_centrality(bipartite.projected_graph(graph, tops)),
        "eigenvector per component": lambda: api._eigenvector(graph),
        "brokers (biconnected)": lambda: api._brokers(graph),
    }
    print("last quarter, by measure: " + ", ".join(f"{k} {timed(f)[0]:.2f} s" for k, f in parts.items()))
    if exact:
        estimate = nx.betweenness_centrality(graph, k=PIVOTS, seed=13)
        took, full = timed(lambda: nx.betweenness_centrality(graph))
        errors = sorted(abs(estimate[t] - full[t]) / full[t] for t in tops if full[t] > 0)
        p90 = errors[int(0.9 * len(errors))]
        print(f"exact betweenness of the bipartite graph, last quarter: {took:.1f} s; "
              f"{PIVOTS} pivots' error on networks: median {statistics.median(errors):.1%}, 90th percentile {p90:.1%}, "
              f"max {errors[-1]:.1%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partners", type=int, default=5_000)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--exact", action="store_true", help="also time exact betweenness (minutes)")
    args = parser.parse_args()
    events = organisation(args.partners, args.networks).in_order()
    with tempfile.TemporaryDirectory(prefix="verkosto-graph-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            schema = "bench"
            migrate(url, schema)
            took = project(url, schema, events)
            print(f"{len(events):,} events applied to the graph read model in {took:.1f} s "
                  f"({len(events) / took:,.0f} events/s, batches of 1,000)")  # fmt: skip
            with psycopg.connect(url, autocommit=True) as conn:
                rm = active_schema(conn, schema, "graph").as_string(conn)
                (parked,) = conn.execute(f"SELECT count(*) FROM {rm}.parked").fetchone()  # type: ignore[misc]
                (rows,) = conn.execute(f"SELECT count(*) FROM {rm}.memberships").fetchone()  # type: ignore[misc]
            assert parked == 0, f"{parked} events parked"
            print(f"{rows:,} membership intervals")
            report(url, schema, args.exact)
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
