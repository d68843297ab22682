"""Retractions and corrections through the event store and the real read models: trust,
the lifecycle rows and the board follow the corrected history, history keeps both, the
hash chain is untouched, and a rebuild reproduces the live read models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from contract.commands import any_command
from projections.catalog import all_projections
from projections.rebuild import rebuild_sync
from projections.registry import active_schema
from services.application import Accepted, Rejected, Request, Verkosto
from services.audit.chain import verify
from services.replay import StoreHistory
from services.settings import Settings
from tests.integration.test_projections_fold import apply_all, content_hash, deliver_like_a_bus, published

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def story(pid: str, name: str, *, evaluation: bool, strength: int) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = [
        {"type": "partnership_opened", "partnership_id": pid, "occurred_at": at(0), "owner_unit": "research",
         "steward": "Aino", "partner": {"name": name, "kind": "organisation", "roles": ["user"]}},
        {"type": "contact_logged", "partnership_id": pid, "channel": "call", "direction": "outbound",
         "participants": ["Aino"], "occurred_at": at(10)},
        {"type": "interest_signalled", "partnership_id": pid, "direction": "inbound", "strength": strength,
         "occurred_at": at(20)},
    ]  # fmt: skip
    if evaluation:
        commands.append({"type": "evaluated", "partnership_id": pid, "factors": {"fit": 10}, "occurred_at": at(30)})
    commands.append(
        {"type": "contact_logged", "partnership_id": pid, "channel": "meeting", "direction": "inbound",
         "participants": ["Aino"], "occurred_at": at(40)}
    )  # fmt: skip
    return commands


def run(app: Verkosto, commands: list[dict[str, Any]], actor: str = "tester") -> list[Any]:
    return app.execute([Request(any_command.validate_python(c), actor, "api") for c in commands])


def trust_points(conn: psycopg.Connection[Any], rm: Any, pid: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT at, inbound_interest, outbound_interest, mutual_interest, trust, attention, phase "
        f"FROM {rm.as_string(conn)}.trust_points WHERE partnership_id = %s ORDER BY version",
        (pid,),
    ).fetchall()


@pytest.fixture
def corrected(app: Verkosto, settings: Settings) -> dict[str, str]:
    """Pairs: each corrected partnership and one recorded right the first time."""
    ids = {k: str(uuid.uuid4()) for k in ("retracted", "plain", "corrected", "strong", "twice", "moved")}
    for outcome in run(
        app,
        story(ids["retracted"], "Mistaken Oy", evaluation=True, strength=2)
        + story(ids["plain"], "Plain Oy", evaluation=False, strength=2)
        + story(ids["corrected"], "Weak Oy", evaluation=False, strength=1)
        + story(ids["strong"], "Strong Oy", evaluation=False, strength=3)
        + story(ids["twice"], "Twice Oy", evaluation=False, strength=2)
        + story(ids["moved"], "Moved Oy", evaluation=True, strength=2),
    ):
        assert isinstance(outcome, Accepted), outcome
    apply_all(settings, deliver_like_a_bus(published(app), seed=3))  # the read models before
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "trust")
        ids["trust_before"] = str(trust_points(conn, rm, ids["retracted"])[-1][4])  # with the evaluation
    outcomes = run(
        app,
        [
            {
                "type": "event_retracted",
                "partnership_id": ids["retracted"],
                "event_id": f"{ids['retracted']}:4",
                "reason": "scored the wrong partner",
                "occurred_at": at(50),
            },
            {
                "type": "event_corrected",
                "partnership_id": ids["corrected"],
                "event_id": f"{ids['corrected']}:3",
                "changes": {"strength": 3},
                "reason": "they were keen",
                "occurred_at": at(50),
            },
            # This one's meeting was on day 45, and its evaluation adequate, not excellent.
            {
                "type": "event_corrected",
                "partnership_id": ids["moved"],
                "event_id": f"{ids['moved']}:5",
                "changes": {"occurred_at": at(45)},
                "reason": "the meeting moved",
                "occurred_at": at(50),
            },
            {
                "type": "event_corrected",
                "partnership_id": ids["moved"],
                "event_id": f"{ids['moved']}:4",
                "changes": {"factors": {"fit": 1}},
                "reason": "adequate",
                "occurred_at": at(50),
            },
            # The last contact of this one never happened: its last contact goes back.
            {
                "type": "event_retracted",
                "partnership_id": ids["twice"],
                "event_id": f"{ids['twice']}:4",
                "reason": "logged twice",
                "occurred_at": at(50),
            },
        ],  # fmt: skip
        actor="maija",
    )
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    apply_all(settings, deliver_like_a_bus(published(app), seed=4))
    return ids


def test_a_retraction_folds_trust_as_if_never_recorded(settings: Settings, corrected: dict[str, str]) -> None:
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "trust")
        retracted, plain = (trust_points(conn, rm, corrected[k]) for k in ("retracted", "plain"))
    # The same story but for the evaluation: the contact after it is folded again too.
    assert retracted == plain and len(plain) == 4
    # The excellent evaluation had lifted trust; without it, trust is lower again.
    assert retracted[-1][4] < float(corrected["trust_before"])


def test_the_kept_peak_is_the_highest_point_after_corrections(settings: Settings, corrected: dict[str, str]) -> None:
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "trust")
        rows = conn.execute(
            sql.SQL(
                "SELECT s.partnership_id::text, s.peak, max(p.trust) FROM {rm}.trust_state s "
                "JOIN {rm}.trust_points p USING (partnership_id) GROUP BY s.partnership_id, s.peak"
            ).format(rm=rm)
        ).fetchall()
        retracted_peak = conn.execute(
            sql.SQL("SELECT peak FROM {}.trust_state WHERE partnership_id = %s").format(rm), (corrected["retracted"],)
        ).fetchone()
    assert len(rows) >= 6 and all(kept == highest for _, kept, highest in rows)
    # The retracted evaluation had lifted trust highest: the peak came down with it.
    assert retracted_peak is not None and retracted_peak[0] < float(corrected["trust_before"])


def test_a_correction_folds_as_if_recorded_right(settings: Settings, corrected: dict[str, str]) -> None:
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "trust")
        weak_then_corrected, strong = (trust_points(conn, rm, corrected[k]) for k in ("corrected", "strong"))
    assert weak_then_corrected == strong and len(strong) == 4


def test_the_lifecycle_rows_follow(settings: Settings, corrected: dict[str, str]) -> None:
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "lifecycle").as_string(conn)
        last = dict(conn.execute(f"SELECT partnership_id::text, last_contact_at FROM {rm}.partners").fetchall())
        evaluations = conn.execute(
            f"SELECT count(*) FROM {rm}.evaluations WHERE partnership_id = %s", (corrected["retracted"],)
        ).fetchone()
        outcome = conn.execute(
            f"SELECT outcome FROM {rm}.evaluations WHERE partnership_id = %s", (corrected["moved"],)
        ).fetchone()
    assert last[corrected["twice"]] == T0 + timedelta(days=10)  # its later contact was retracted
    assert last[corrected["retracted"]] == T0 + timedelta(days=40)
    assert evaluations == (0,)
    assert last[corrected["moved"]] == T0 + timedelta(days=45) and outcome == (1.0,)


def test_history_keeps_the_original_and_the_correction_with_who_and_why(
    app: Verkosto, settings: Settings, corrected: dict[str, str]
) -> None:
    history = app.domain_events(uuid.UUID(corrected["corrected"]))
    original, correction = history[2], history[-1]
    assert (type(original).type, original.strength) == ("interest_signalled", 1)  # type: ignore[attr-defined]
    assert type(correction).type == "event_corrected"
    assert correction.meta.actor == "maija" and correction.reason == "they were keen"  # type: ignore[attr-defined]
    assert correction.changes.strength == 3  # type: ignore[attr-defined]
    with psycopg.connect(settings.require_database_url()) as conn:
        assert verify(conn, settings.db_schema).ok  # nothing rewritten: the chain holds


def test_what_cannot_be_retracted_is_refused_with_its_code(app: Verkosto, corrected: dict[str, str]) -> None:
    pid = corrected["twice"]
    outcomes = run(
        app,
        [
            {"type": "event_retracted", "partnership_id": pid, "event_id": f"{pid}:1", "reason": "x"},
            {"type": "event_retracted", "partnership_id": pid, "event_id": f"{pid}:4", "reason": "again"},
            {"type": "event_retracted", "partnership_id": pid, "event_id": f"{pid}:99", "reason": "x"},
            {"type": "event_retracted", "partnership_id": pid, "event_id": f"{corrected['strong']}:2", "reason": "x"},
        ],
    )
    assert [o.code for o in outcomes if isinstance(o, Rejected)] == [
        "not_correctable",
        "already_retracted",
        "unknown_event",
        "unknown_event",
    ]


def test_a_rebuild_reproduces_the_corrected_read_models(settings: Settings, corrected: dict[str, str]) -> None:
    url = settings.require_database_url()
    for projection in all_projections():
        with psycopg.connect(url) as conn:
            live = active_schema(conn, settings.db_schema, projection.name).as_string(conn).strip('"')
            live_hash = content_hash(conn, live, projection)
        with StoreHistory(url, settings.db_schema) as history:
            _, rebuilt = rebuild_sync(url, settings.db_schema, projection, lambda *_: None, source=history)
        with psycopg.connect(url) as conn:
            assert content_hash(conn, rebuilt, projection) == live_hash, projection.name
