"""A newly defined operating model judges the board from its date on: older questions keep
the model of their time, and a rebuild re-scores history the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from contract.commands import any_command
from domain.lifecycle import THRESHOLDS
from domain.operating_model import DEFAULT_MODEL
from projections.catalog import by_name
from projections.queries.board import BoardQuery, board_page
from projections.queries.coverage import evaluation_coverage
from projections.rebuild import rebuild_sync
from projections.registry import active_schema
from services.application import Request
from services.replay import StoreHistory
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MODEL_FROM = T0 + timedelta(days=100)  # the stricter model applies from here
BEFORE, AFTER = T0 + timedelta(days=90), T0 + timedelta(days=150)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def stricter_cells() -> list[dict[str, Any]]:
    """The default model, but a '-'/'-' partner is to be heard from monthly."""
    cells = [c.model_dump(mode="json") for c in DEFAULT_MODEL.cells]
    for cell in cells:
        if (cell["now"], cell["future"]) == ("-", "-"):
            cell["cadence_days"] = 30
    return cells


QUIET = str(uuid.uuid4())  # never evaluated
OLD, NEW = str(uuid.uuid4()), str(uuid.uuid4())  # evaluated before the catalogue / under it
CATALOGUE_FROM = T0 + timedelta(days=50)


def opened(pid: str, name: str) -> dict[str, Any]:
    return {"type": "partnership_opened", "partnership_id": pid, "occurred_at": at(0), "owner_unit": "research",
            "steward": "Aino", "partner": {"name": name, "kind": "organisation", "roles": ["user"]}}  # fmt: skip


@pytest.fixture(scope="module")
def org(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    pid = QUIET
    commands: list[dict[str, Any]] = [
        {"type": "partnership_opened", "partnership_id": pid, "occurred_at": at(0), "owner_unit": "research",
         "steward": "Aino", "partner": {"name": "Quiet Oy", "kind": "organisation", "roles": ["user"]}},
        {"type": "segmented", "partnership_id": pid, "now": "-", "future": "-", "occurred_at": at(1)},
        {"type": "contact_logged", "partnership_id": pid, "channel": "call", "direction": "outbound",
         "participants": ["Aino"], "occurred_at": at(10)},
        {"type": "operating_model_defined", "cells": stricter_cells(), "occurred_at": MODEL_FROM.isoformat()},
        opened(OLD, "Early Oy"),
        opened(NEW, "Later Oy"),
        {"type": "evaluated", "partnership_id": OLD, "factors": {"anything": 10}, "occurred_at": at(20)},
        {"type": "criteria_defined", "occurred_at": CATALOGUE_FROM.isoformat(),
         "criteria": [{"name": "fit", "description": "How well their aims match ours"}]},
        {"type": "evaluated", "partnership_id": NEW, "factors": {"fit": 10}, "occurred_at": at(60)},
    ]  # fmt: skip
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("model"))) as settings:
        with opened_application(settings) as app:
            outcomes = app.execute([Request(any_command.validate_python(c), "tester", "api") for c in commands])
            assert all(hasattr(o, "position") for o in outcomes), outcomes
            apply_all(settings, deliver_like_a_bus(published(app), seed=2))
        yield settings


def quiet_flags(
    conn: psycopg.Connection[Any], schema: psycopg.sql.Identifier, trust: Any, as_of: datetime
) -> list[Any]:
    rows, _ = board_page(conn, schema, trust, BoardQuery(as_of), THRESHOLDS)
    (row,) = [r for r in rows if r["partner_name"] == "Quiet Oy"]
    return [f for f in row["flags"] if f["name"] == "under_served"]


def test_the_model_in_force_at_as_of_judges_the_board_and_a_rebuild_agrees(org: Settings) -> None:
    url = org.require_database_url()
    with psycopg.connect(url) as conn:
        lifecycle, trust = (active_schema(conn, org.db_schema, n) for n in ("lifecycle", "trust"))
        # 80 days quiet under the default (cadence 180): served. 140 days under the
        # stricter model (30): under-served, and the reason names the model's cadence;
        # the default alone would not flag it (140 < 180).
        assert quiet_flags(conn, lifecycle, trust, BEFORE) == []
        (late,) = quiet_flags(conn, lifecycle, trust, AFTER)
        assert "every 30 days" in late["reasons"][0]
    with StoreHistory(url, org.db_schema) as history:
        _, rebuilt = rebuild_sync(url, org.db_schema, by_name("lifecycle"), lambda *_: None, source=history)
    with psycopg.connect(url) as conn:
        again = sql.Identifier(rebuilt)
        assert quiet_flags(conn, again, trust, BEFORE) == []
        assert quiet_flags(conn, again, trust, AFTER) == [late]


def test_evaluation_coverage_follows_the_catalogue_in_force(org: Settings) -> None:
    with psycopg.connect(org.require_database_url()) as conn:
        lifecycle = active_schema(conn, org.db_schema, "lifecycle")
        before = evaluation_coverage(conn, lifecycle, T0 + timedelta(days=40), 10)
        after = evaluation_coverage(conn, lifecycle, AFTER, 1)
    # No catalogue yet: an evaluation of any factors covers its partner.
    assert (before["catalogue_version"], before["partnerships"]) == (None, 3)
    assert [m["partner_name"] for m in before["never_evaluated"]["members"]] == ["Later Oy", "Quiet Oy"]
    assert before["not_under_current"] == {"count": 0, "members": []}
    # Under the catalogue: the early evaluation no longer compares; members are capped.
    assert after["catalogue_version"] is not None and after["partnerships"] == 3
    assert after["never_evaluated"] == {"count": 1, "members": [{"partnership_id": QUIET, "partner_name": "Quiet Oy"}]}
    assert after["not_under_current"] == {"count": 1, "members": [{"partnership_id": OLD, "partner_name": "Early Oy"}]}
