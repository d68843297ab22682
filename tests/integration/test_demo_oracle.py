"""The demo is a test oracle: it knows which flags it built into each partnership, and the
lifecycle board (from the projector's rows, through the real rules) must find them.

Per flag: precision (of the partnerships flagged, how many the demo built so) and recall
(of those it built so, how many are flagged), each at least 0.9; and no flag covers more
than a quarter of the portfolio unless the demo made it so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import psycopg
import pytest

from contract.commands import any_command
from domain.lifecycle import THRESHOLDS, FlagName
from projections.queries.board import BoardQuery, board_page
from projections.registry import active_schema
from services.application import Request
from services.demo import Demo, build
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published

NOW = datetime(2026, 1, 1, tzinfo=UTC)
START = NOW - timedelta(days=3 * 365)
PARTNERS = 120


@pytest.fixture(scope="module")
def demo() -> Demo:
    return build(START, NOW, PARTNERS, seed=7)


@pytest.fixture(scope="module")
def board(
    demo: Demo, database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, set[str]]]:
    """Each partnership's flags on the board at the demo's end."""
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("oracle"))) as settings:
        flags = _recorded_and_projected(settings, demo)
        yield flags


def _recorded_and_projected(settings: Settings, demo: Demo) -> dict[str, set[str]]:
    with opened_application(settings) as app:
        requests = [Request(any_command.validate_python(cmd), "demo", "api") for _, cmd in demo.commands]
        for i in range(0, len(requests), 500):
            refused = [o for o in app.execute(requests[i : i + 500]) if not hasattr(o, "position")]
            assert not refused, refused[:3]
        apply_all(settings, deliver_like_a_bus(published(app), seed=1))
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = {name: active_schema(conn, settings.db_schema, name) for name in ("lifecycle", "trust")}
        rows: list[dict[str, Any]] = []
        after = None
        while True:
            page, after = board_page(
                conn, rm["lifecycle"], rm["trust"], BoardQuery(NOW, limit=100, after=after), THRESHOLDS
            )
            rows += page
            if after is None:
                break
    return {r["partnership_id"]: {f["name"] for f in r["flags"]} for r in rows}


def test_every_partnership_of_the_demo_is_on_the_board(demo: Demo, board: dict[str, set[str]]) -> None:
    assert set(board) == set(demo.truth)


@pytest.mark.parametrize("flag", get_args(FlagName))
def test_each_flag_finds_what_the_demo_built(flag: str, demo: Demo, board: dict[str, set[str]]) -> None:
    built = demo.flagged(flag)
    found = {pid for pid, flags in board.items() if flag in flags}
    assert built, f"the demo builds no {flag} partnership: nothing to judge it against"
    precision = len(found & built) / len(found) if found else 0.0
    recall = len(found & built) / len(built)
    print(f"{flag}: built {len(built)}, flagged {len(found)}, precision {precision:.2f}, recall {recall:.2f}")
    wrong = {pid: (sorted(board[pid]), sorted(demo.truth[pid])) for pid in found ^ built}
    assert precision >= 0.9 and recall >= 0.9, wrong
    if len(built) <= len(board) / 4:
        assert len(found) <= len(board) / 4
