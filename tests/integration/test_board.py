"""The board, the portfolio and the trust trajectory answered from indexed rows, a page at
a time, equal the reference fold (every published event folded in Python into a document
per partnership, independently of the projector) for the same question, on a generated
organisation with back-dated events; pages concatenated equal the unpaged answer; a
rebuild lands on the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic_core import to_jsonable_python

from contract.commands import any_command
from contract.events import Published
from domain.lifecycle import THRESHOLDS
from domain.portfolio import drift, matrix
from domain.values import Importance
from projections.catalog import by_name
from projections.lifecycle import fold_all
from projections.queries import cells, insights
from projections.queries import cursor as cursors
from projections.queries.board import BoardQuery, board_page
from projections.rebuild import content_hash, rebuild_sync
from projections.registry import active_schema
from services.api.app import create_app
from services.application import Accepted, Request, Verkosto
from services.auth import issue_token
from services.db import connect
from services.demo import commands
from services.replay import StoreHistory
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published

START = datetime(2021, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 1, 1, tzinfo=UTC)
BACK_DATED_TO = START + timedelta(days=700)  # the back-dated facts below took effect then
FLAGS = (
    "under_served",
    "over_served",
    "mode_mismatch",
    "dormant_but_trusted",
    "needs_handover",
    "steward_overloaded",
    "rising",
    "wind_down_candidate",
    "no_such_flag",
)


def as_served(value: Any) -> Any:
    """JSON values as the API serves them (pydantic's encoder: a datetime and an ISO
    string of it are told apart)."""
    return to_jsonable_python(value)


def back_dated(pid: str, n: int) -> list[dict[str, Any]]:
    """Facts recorded after the rest that took effect in the past: every other one a
    handover because a steward left, to a steward who then holds six '++' partnerships."""
    at = (BACK_DATED_TO + timedelta(days=n)).isoformat()
    left = n % 2 == 0
    cmds: list[dict[str, Any]] = [
        # Recorded first, in force last: the back-dated handover below must not replace it.
        {"type": "ownership_transferred", "owner_unit": "operations", "steward": "Ronja", "reason": "reassignment",
         "occurred_at": (NOW - timedelta(days=30 + n)).isoformat()},
        {"type": "segmented", "now": "+", "future": "+", "occurred_at": (NOW - timedelta(days=20)).isoformat()},
        {"type": "segmented", "now": "++" if left else "-", "future": "++", "occurred_at": at},
        {"type": "ownership_transferred", "owner_unit": "research", "steward": "Oona",
         "reason": "steward_left" if left else "reassignment", "occurred_at": at},
        {"type": "joint_activity_recorded", "kind": "pilot", "title": "Late", "our_effort_hours": 90,
         "their_effort_hours": 5, "occurred_at": at},
    ]  # fmt: skip
    if not left:
        cmds.append({"type": "contact_logged", "channel": "call", "direction": "inbound", "participants": ["Oona"],
                     "occurred_at": at})  # fmt: skip
    return [{**cmd, "partnership_id": pid} for cmd in cmds]


def build(app: Verkosto) -> list[str]:
    generated = [(key, cmd) for key, cmd in commands(START, NOW, 70, seed=5) if "partnership_id" in cmd]
    for _, cmd in generated:
        app.execute([Request(any_command.validate_python(cmd), "demo", "api")])
    pids = list(dict.fromkeys(key for key, _ in generated))
    for n, pid in enumerate(pids[:12]):
        for cmd in back_dated(pid, n):
            app.execute([Request(any_command.validate_python(cmd), "demo", "api")])
    for n, pid in enumerate(pids[12:30]):
        for cmd in mistakes_put_right(app, pid, n):
            (outcome,) = app.execute([Request(any_command.validate_python(cmd), "demo", "api")])
            assert isinstance(outcome, Accepted), outcome
    return pids


def mistakes_put_right(app: Verkosto, pid: str, n: int) -> list[dict[str, Any]]:
    """Retractions and corrections of observations: the board must follow them."""
    recorded = {type(e).type: e for e in reversed(app.domain_events(uuid.UUID(pid)))}  # the first of each
    fixes: list[dict[str, Any]] = []
    if (contact := recorded.get("contact_logged")) is not None:
        event_id = f"{pid}:{contact.originator_version}"
        if n % 2:
            fixes.append({"type": "event_retracted", "event_id": event_id, "reason": "not them"})
        else:
            moved = (contact.meta.occurred_at + timedelta(days=200)).isoformat()
            fixes.append({"type": "event_corrected", "event_id": event_id, "changes": {"occurred_at": moved},
                          "reason": "moved"})  # fmt: skip
    if (activity := recorded.get("joint_activity_recorded")) is not None:
        fixes.append({"type": "event_corrected", "event_id": f"{pid}:{activity.originator_version}",
                      "changes": {"our_effort_hours": 500.0, "their_effort_hours": 1.0},
                      "reason": "hours"})  # fmt: skip
    if (evaluation := recorded.get("evaluated")) is not None:
        fixes.append({"type": "event_retracted" if n % 3 == 0 else "event_corrected",
                      "event_id": f"{pid}:{evaluation.originator_version}", "reason": "scored wrong",
                      **({} if n % 3 == 0 else {"changes": {"factors": {"fit": 0.1}}})})  # fmt: skip
    if (interest := recorded.get("interest_signalled")) is not None:
        fixes.append({"type": "event_retracted", "event_id": f"{pid}:{interest.originator_version}",
                      "reason": "another partner"})  # fmt: skip
    return [{**fix, "partnership_id": pid} for fix in fixes]


@pytest.fixture(scope="module")
def org(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("board"))) as settings:
        with opened_application(settings) as app:
            build(app)
            apply_all(settings, deliver_like_a_bus(published(app), seed=3))
        yield settings


@pytest.fixture(scope="module")
def docs(org: Settings) -> dict[str, dict[str, Any]]:
    """The reference documents, folded here from the published events: the projector's
    rows are what is tested, so the reference must not come from them."""
    with opened_application(org) as app:
        return fold_all(Published.of(event) for event in published(app))


def reference_board(
    conn: psycopg.Connection[Any], rm: dict[str, Any], docs: dict[str, dict[str, Any]], as_of: datetime
) -> list[dict[str, Any]]:
    return insights.lifecycle(docs, *insights.trust_inputs(conn, rm["trust"]), as_of, THRESHOLDS)


def schemas(conn: psycopg.Connection[Any], settings: Settings) -> dict[str, Any]:
    return {name: active_schema(conn, settings.db_schema, name) for name in ("lifecycle", "trust", "portfolio")}


MOMENTS = (
    START + timedelta(days=400),  # before every back-dated fact
    BACK_DATED_TO + timedelta(days=5),  # amid them
    START + timedelta(days=900),
    NOW,
    NOW + timedelta(days=400),  # everyone quiet, trust decayed
)


def paged(conn: psycopg.Connection[Any], rm: dict[str, Any], query: BoardQuery) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    for _ in range(1000):
        page, after = board_page(
            conn, rm["lifecycle"], rm["trust"], BoardQuery(**{**query.__dict__, "after": after}), THRESHOLDS
        )
        assert len(page) <= query.limit and (after is None or len(page) == query.limit)
        rows += page
        if after is None:
            return rows
    raise AssertionError("the cursor never reached the last page")


@pytest.mark.parametrize("as_of", MOMENTS, ids=lambda m: m.date().isoformat())
def test_the_board_from_rows_equals_the_reference_fold(
    org: Settings, docs: dict[str, dict[str, Any]], as_of: datetime
) -> None:
    with psycopg.connect(org.require_database_url()) as conn:
        rm = schemas(conn, org)
        reference = as_served(reference_board(conn, rm, docs, as_of))
        assert len(reference) > 10
        whole, after = board_page(conn, rm["lifecycle"], rm["trust"], BoardQuery(as_of, limit=1000), THRESHOLDS)
        assert after is None and as_served(whole) == reference
        assert as_served(paged(conn, rm, BoardQuery(as_of, limit=7))) == reference

        questions: list[tuple[dict[str, Any], Any]] = [({"flag": f}, f) for f in FLAGS]
        questions += [({"stage": s}, None) for s in {r["stage"] for r in reference} | {"nowhere"}]
        questions += [({"steward": s}, None) for s in sorted({r["steward"] for r in reference})[:4]]
        questions += [({"owner_unit": u}, None) for u in {r["owner_unit"] for r in reference}]
        questions.append(({"steward": "Oona", "flag": "needs_handover", "stage": "analyse"}, None))
        seen_flags = set()
        for filters, _ in questions:
            expected = [
                r
                for r in reference
                if all(
                    any(f["name"] == v for f in r["flags"]) if k == "flag" else r[k] == v for k, v in filters.items()
                )
            ]
            if "flag" in filters and expected:
                seen_flags.add(filters["flag"])
            got = paged(conn, rm, BoardQuery(as_of, limit=3, **filters))
            assert as_served(got) == expected, filters
    # The questions asked found something (the comparison would pass on empty answers too).
    if as_of == NOW:
        assert seen_flags >= {"under_served", "rising", "wind_down_candidate", "dormant_but_trusted", "mode_mismatch"}
    if as_of == MOMENTS[1]:
        assert "needs_handover" in seen_flags


def test_the_portfolio_from_rows_equals_the_reference_matrix_and_drift(org: Settings) -> None:
    with psycopg.connect(org.require_database_url()) as conn:
        rm = schemas(conn, org)["portfolio"]
        histories = insights.segment_histories(conn, rm)
        for as_of in MOMENTS:
            reference = matrix(histories, as_of)
            counted = cells.counts(conn, rm, as_of)
            firsts = cells.first_members(conn, rm, as_of, 2)
            assert {f"{n}/{f}": count for (n, f), count in counted.items()} == {
                cell: len(members) for cell, members in reference.items()
            }
            for (now, future), count in counted.items():
                members = reference[f"{now}/{future}"]
                assert firsts[(now, future)] == members[:2]
                pages, after = [], None
                while True:
                    page, after = cells.cell_page(conn, rm, as_of, (now, future), 3, after)
                    pages += page
                    if after is None:
                        break
                assert pages == members and len(pages) == count
            rising = [
                {**m, "cell": cell}
                for cell, ms in reference.items()
                for m in ms
                if Importance(cell.split("/")[1]).rank > Importance(cell.split("/")[0]).rank
            ]
            assert cells.rising(conn, rm, as_of, 1000) == rising and cells.rising(conn, rm, as_of, 4) == rising[:4]
            since = as_of - timedelta(days=365)
            assert cells.moves(conn, rm, since, as_of) == drift(histories, since, as_of)
        assert sum(cells.counts(conn, rm, NOW).values()) > 20


def test_trust_points_page_to_the_whole_trajectory(org: Settings) -> None:
    with psycopg.connect(org.require_database_url()) as conn:
        rm = schemas(conn, org)["trust"]
        (pid,) = conn.execute(
            f"SELECT partnership_id FROM {rm.as_string(conn)}.trust_points "
            "GROUP BY partnership_id ORDER BY count(*) DESC, partnership_id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        for as_of in (START + timedelta(days=900), NOW):
            whole = insights.trust_trajectory(conn, rm, pid, as_of, 5000)
            assert whole is not None and whole["next_cursor"] is None and len(whole["points"]) > 10
            assert all(p["at"] <= as_of for p in whole["points"])
            pages, after = [], None
            while True:
                page = insights.trust_trajectory(conn, rm, pid, as_of, 4, after)
                assert page is not None and page["current"] == whole["current"]
                pages += page["points"]
                after = page["next_cursor"]
                if after is None:
                    break
            assert pages == whole["points"]
            start, end = whole["points"][2]["at"], whole["points"][-3]["at"]
            window = insights.trust_trajectory(conn, rm, pid, as_of, 5000, start=start, end=end)
            inside = [p for p in whole["points"] if start <= p["at"] <= end]  # points may share a moment
            assert window is not None and window["points"] == inside and len(inside) >= len(whole["points"]) - 4
        assert insights.trust_trajectory(conn, rm, uuid.uuid4(), NOW, 10) is None


def test_a_rebuild_lands_on_the_live_rows(org: Settings) -> None:
    url = org.require_database_url()
    for name in ("lifecycle", "portfolio"):
        projection = by_name(name)
        with psycopg.connect(url) as conn:
            live = content_hash(conn, active_schema(conn, org.db_schema, name).as_string(conn).strip('"'), projection)
        with StoreHistory(url, org.db_schema) as history:
            _, schema = rebuild_sync(url, org.db_schema, projection, lambda *_: None, source=history)
        with psycopg.connect(url) as conn:
            assert content_hash(conn, schema, projection) == live, name


def follow(client: TestClient, path: str, headers: dict[str, str], key: str, **params: Any) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    while True:
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers).json()
        assert body["count"] == len(body[key])
        rows += body[key]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def test_the_api_pages_with_an_opaque_cursor(org: Settings, docs: dict[str, dict[str, Any]]) -> None:
    with connect(org.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, org.db_schema, "viewer", ["dashboards:read"])
    headers = {"Authorization": f"Bearer {token}"}
    as_of = NOW.isoformat()
    with TestClient(create_app(org)) as client:
        whole = client.get("/v1/projections/lifecycle", params={"as_of": as_of, "limit": 1000}, headers=headers).json()
        assert whole["next_cursor"] is None and whole["count"] == len(whole["partnerships"]) > 10
        with psycopg.connect(org.require_database_url()) as conn:  # served exactly as before paging
            rm = schemas(conn, org)
            reference = reference_board(conn, rm, docs, NOW)
        assert whole["partnerships"] == as_served(reference)
        first = client.get("/v1/projections/lifecycle", params={"as_of": as_of}, headers=headers).json()
        assert first["count"] == min(100, len(whole["partnerships"]))  # the default page
        assert (
            follow(client, "/v1/projections/lifecycle", headers, "partnerships", as_of=as_of, limit=9)
            == whole["partnerships"]
        )
        quiet = follow(
            client, "/v1/projections/lifecycle", headers, "partnerships", as_of=as_of, limit=2, flag="under_served"
        )
        assert quiet and quiet == [
            r for r in whole["partnerships"] if "under_served" in {f["name"] for f in r["flags"]}
        ]
        # Not base64 JSON; []; ["a", "b"]; a uuid no partnership has.
        unknown = cursors.encode([str(uuid.uuid4())])
        for bad in ("nonsense", "W10=", "WyJhIiwiYiJd", unknown):
            answer = client.get("/v1/projections/lifecycle", params={"cursor": bad}, headers=headers)
            assert answer.status_code == 422 and answer.json()["code"] == "invalid_cursor", bad
        # A cursor names the last row by id alone: no partner's name travels in a URL.
        second = client.get("/v1/projections/lifecycle", params={"as_of": as_of, "limit": 3}, headers=headers).json()
        assert cursors.decode(second["next_cursor"], (str,)) == [second["partnerships"][-1]["partnership_id"]]
        assert client.get("/v1/projections/lifecycle", params={"limit": 1001}, headers=headers).status_code == 422
        for unknown_filter in ({"flag": "no_such_flag"}, {"stage": "nowhere"}):
            answer = client.get("/v1/projections/lifecycle", params=unknown_filter, headers=headers)
            assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"

        portfolio = client.get("/v1/projections/portfolio", params={"as_of": as_of, "members": 1}, headers=headers)
        full = client.get("/v1/projections/portfolio", params={"as_of": as_of, "members": 200}, headers=headers)
        assert full.json()["rising_count"] == len(full.json()["rising"]) > 0
        # Drift is capped like rising: the first moves in quarter order, and how many in all.
        assert full.json()["drift_count"] == len(full.json()["drift"]) > 1
        assert portfolio.json()["drift"] == full.json()["drift"][-1:]  # the latest move
        assert portfolio.json()["drift_count"] == full.json()["drift_count"]
        for cell, whole_cell in zip(portfolio.json()["cells"], full.json()["cells"], strict=True):
            assert cell["count"] == whole_cell["count"] == len(whole_cell["members"]) and whole_cell["more"] is None
            rest = []
            if cell["more"]:
                link = cell["more"]
                rest = follow(client, link.split("?")[0], headers, "members", **dict(_query(link)), limit=2)
            assert cell["members"] + rest == whole_cell["members"], cell["cell"]
        # Coverage counts every open partnership on the board and lists its first ones.
        coverage, whole_coverage = portfolio.json()["evaluation_coverage"], full.json()["evaluation_coverage"]
        assert whole_coverage["partnerships"] == len([r for r in whole["partnerships"] if r["stage"] != "ended"])
        never = whole_coverage["never_evaluated"]
        assert never["count"] == len(never["members"]) > 0
        assert coverage["never_evaluated"] == {"count": never["count"], "members": never["members"][:1]}

        pid = whole["partnerships"][0]["partnership_id"]
        points = client.get(f"/v1/projections/trust/{pid}", params={"as_of": as_of}, headers=headers).json()
        assert points["next_cursor"] is None
        assert (
            follow(client, f"/v1/projections/trust/{pid}", headers, "points", as_of=as_of, limit=2) == points["points"]
        )


def _query(link: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(link.split("?", 1)[1])
