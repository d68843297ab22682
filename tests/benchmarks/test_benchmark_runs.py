"""Keeps the benchmark script honest: a small run must move every event end to end.

Rates are printed by `make bench`, never asserted here."""

from __future__ import annotations

from tests.benchmarks.run_benchmarks import run


def test_a_small_benchmark_run_moves_every_event(database_url: str, kafka_bootstrap: str) -> None:
    ingest, relay, projection, rebuild = run(database_url, kafka_bootstrap, commands=300, partnerships=30)
    assert ingest.events == 300
    assert relay.events == 330  # 30 openings and 300 contacts, all published
    assert projection.events == 330
    assert rebuild.events == 330
    assert all(r.seconds > 0 and r.baseline_seconds > 0 for r in (ingest, relay, projection, rebuild))
    # The frameworks alone consumed the same messages (each floor waits for all of them).
    assert ingest.floor_seconds is not None and ingest.floor_seconds > 0
    assert projection.floor_seconds is not None and projection.floor_seconds > 0
