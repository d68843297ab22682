"""Keeps the scale benchmark from rotting: a small organisation built through the real
paths, every measurement taken. Only counts are asserted; times are `make bench-scale`'s."""

from __future__ import annotations

from tests.benchmarks.scale import Sizes, run


def test_a_small_scale_run_records_everything_and_answers_every_request(
    database_url: str, kafka_bootstrap: str
) -> None:
    sizes = Sizes(partners=50, long=2, long_events=100, years=6, samples=3, ingest_commands=50, freshness_rate=30)
    outcome = run(database_url, kafka_bootstrap, sizes)
    assert outcome.refused == 0 and outcome.rejected == 0
    # Every command recorded, once: the organisation's, then what the rows themselves wrote
    # (Kafka commands and POSTs); each of these commands records exactly one event, but the
    # first of the organisation's own (the demo's criteria catalogue) also founds it.
    assert outcome.accepted == outcome.sent
    assert outcome.events == outcome.accepted + 1
    for row in outcome.rows:
        assert all(200 <= s < 300 for s in row.statuses), (row.what, row.statuses)
        assert row.latencies_ms or row.rate, row.what
    names = [r.what for r in outcome.rows]
    assert any("lifecycle ?steward=" in n for n in names) and any("rebuild" in n for n in names)
