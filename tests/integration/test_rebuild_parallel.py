"""A rebuild in one pass over the history, divided by aggregate between worker processes,
lands on exactly the read models the live projector built."""

from __future__ import annotations

import argparse

import psycopg
import pytest

from projections.catalog import all_projections
from projections.rebuild import content_hash, rebuild_many_sync
from projections.rebuild_workers import open_share
from projections.registry import active_schema
from services.application import Verkosto
from services.cli_projections import add_rebuild
from services.replay import StoreHistory
from services.settings import Settings
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published, story


def live_hashes(url: str, settings: Settings) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            p.name: content_hash(conn, active_schema(conn, settings.db_schema, p.name).as_string(conn).strip('"'), p)
            for p in all_projections()
        }


def test_shares_of_the_history_hold_every_event_once(app: Verkosto, settings: Settings) -> None:
    story(app, seed=2)
    url = settings.require_database_url()
    with StoreHistory(url, settings.db_schema) as history:
        whole = history.events_after(0, None, 10_000)
        shares = [open_share(opener) for opener in history.shares(3)]
    try:
        seen: list[dict[str, object]] = []
        for share in shares:
            after = 0
            while True:
                events, read_to = share.events_page(after, None, 7)  # small pages: some hold none of the share's
                if read_to == after:
                    break
                seen += events
                after = read_to
        aggregates = [{e["aggregate_id"] for e in share.events_after(0, None, 10_000)} for share in shares]
    finally:
        for share in shares:
            share.close()
    assert sorted(seen, key=lambda e: e["position"]) == whole  # type: ignore[arg-type, return-value]
    assert sum(len(a) for a in aggregates) == len(set().union(*aggregates))  # disjoint by aggregate


def test_a_parallel_rebuild_of_every_projection_equals_the_live_read_models(app: Verkosto, settings: Settings) -> None:
    story(app, seed=4)
    apply_all(settings, deliver_like_a_bus(published(app), seed=6))
    url = settings.require_database_url()
    live = live_hashes(url, settings)
    projections = all_projections()
    for workers in (2, 1):
        reached: list[tuple[int, int]] = []
        with StoreHistory(url, settings.db_schema) as history:
            last = history.last_position()
            built = rebuild_many_sync(
                url,
                settings.db_schema,
                projections,
                lambda r, t: reached.append((r, t)),
                source=history,
                workers=workers,
            )
        with psycopg.connect(url) as conn:
            for projection, (_, schema) in zip(projections, built, strict=True):
                assert content_hash(conn, schema, projection) == live[projection.name], (workers, projection.name)
                assert active_schema(conn, settings.db_schema, projection.name).as_string(conn).strip('"') == schema
        assert reached and reached[-1][0] == last, workers
        assert [r for r, _ in reached] == sorted(r for r, _ in reached)  # progress only moves forward


def test_the_rebuild_command_swaps_in_every_projection_and_reports_its_rate(
    app: Verkosto, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    story(app, seed=8)
    apply_all(settings, deliver_like_a_bus(published(app), seed=9))
    url = settings.require_database_url()
    live = live_hashes(url, settings)
    monkeypatch.setenv("VERKOSTO_DATABASE_URL", url)
    monkeypatch.setenv("VERKOSTO_DB_SCHEMA", settings.db_schema)
    parser = argparse.ArgumentParser()
    add_rebuild(parser.add_subparsers())
    args = parser.parse_args(["rebuild", "--workers", "2", "--data-dir", str(settings.data_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    with psycopg.connect(url) as conn:
        for projection in all_projections():
            schema = active_schema(conn, settings.db_schema, projection.name).as_string(conn).strip('"')
            assert schema.endswith("_v2"), schema
            assert content_hash(conn, schema, projection) == live[projection.name], projection.name
            assert f"{projection.name}: version 2 is active" in out
    assert "events/s" in out
