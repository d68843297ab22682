"""Attention this week through the whole path: commands recorded by the application, sent
by the relay through real Kafka, applied by the projector's tracker to PostgreSQL, and
asked over HTTP. One steward typed four ways is one person, `me` is the token's person,
and the ranked list is the one these partnerships call for, exactly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from contract.commands import any_command
from domain.lifecycle import THRESHOLDS
from projections.app import decode
from projections.catalog import all_projections
from projections.queries.board import BoardQuery, board_page
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from services.api.app import create_app
from services.application import Request
from services.auth import issue_token
from services.db import connect
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.kafka_helpers import consume, publish_all

AS_OF = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
# The partnership ids, by what each is built to need.
PID = {name: str(uuid.uuid4()) for name in ("dormant", "overdue", "unplaced", "handover", "evaluate", "fine", "bob")}


def at(days_ago: float) -> str:
    return (AS_OF - timedelta(days=days_ago)).isoformat()


def day(days_from_as_of: int) -> str:
    return (AS_OF + timedelta(days=days_from_as_of)).date().isoformat()


def opened(name: str, steward: str, days_ago: int, unit: str = "research") -> dict[str, Any]:
    partner = {"name": name, "kind": "organisation", "roles": ["user"]}
    return {"type": "partnership_opened", "occurred_at": at(days_ago), "owner_unit": unit, "steward": steward,
            "partner": partner}  # fmt: skip


def segmented(now: str, future: str, days_ago: int) -> dict[str, Any]:
    return {"type": "segmented", "now": now, "future": future, "occurred_at": at(days_ago)}


def contact(days_ago: int, who: str = "Alice") -> dict[str, Any]:
    return {"type": "contact_logged", "channel": "call", "direction": "outbound", "participants": [who],
            "occurred_at": at(days_ago)}  # fmt: skip


def evaluated(days_ago: int, fit: float = 1.0) -> dict[str, Any]:
    return {"type": "evaluated", "factors": {"fit": fit}, "occurred_at": at(days_ago)}


def stories() -> dict[str, list[dict[str, Any]]]:
    """Each partnership's commands in time order (so version n is the n-th), and why."""
    # Trusted by sixteen months of monthly contact and joint work, then silent since day
    # -249: a '+'/'+' partner (contact every 90 days) overdue since day -159.
    dormant = [opened("Dormant Oy", "Alice", 700), segmented("-", "+", 695), segmented("+", "+", 500)]
    for k in range(23):
        dormant.append({"type": "joint_activity_recorded", "kind": "project", "title": "Joint work",
                        "our_effort_hours": 30, "their_effort_hours": 30, "occurred_at": at(690 - 20 * k)})  # fmt: skip
    dormant += [contact(699 - 30 * k) for k in range(16)]  # the last on day -249
    dormant += [evaluated(550, 10), evaluated(400, 10), evaluated(260, 10)]
    dormant.sort(key=lambda cmd: cmd["occurred_at"])
    return {
        "dormant": dormant,
        # '+'/'+', last heard from on day -120 (version 4): contact overdue since day -30.
        "overdue": [opened("Overdue Oy", "alice", 400), segmented("-", "-", 395), segmented("+", "+", 200),
                    contact(120), evaluated(100)],
        # Never segmented in its 60 days: due 30 days after opening.
        "unplaced": [opened("Unplaced Oy", "Alice", 60), evaluated(20), contact(5)],
        # Its steward left 20 days ago and Alice has not met the partner yet (version 6).
        "handover": [opened("Handover Oy", "Eero", 300, unit="sales"), segmented("-", "-", 295),
                     segmented("+", "+", 150), contact(100, "Eero"), evaluated(50),
                     {"type": "ownership_transferred", "owner_unit": "sales", "steward": "aLiCe",
                      "reason": "steward_left", "occurred_at": at(20)}],
        # Opened 85 days ago, never evaluated: the first evaluation is due in 5 days.
        "evaluate": [opened("Evaluate Oy", "ALICE", 85), segmented("-", "-", 80), segmented("+", "-", 40),
                     contact(10)],
        # Served as its cell asks: nothing to do.
        "fine": [opened("Fine Oy", "Alice", 300), segmented("-", "-", 290), segmented("+", "-", 100),
                 evaluated(30), contact(10)],
        # Someone else's: not on Alice's list.
        "bob": [opened("Other Oy", "Bob", 60)],
    }  # fmt: skip


def last_contact_version(commands: list[dict[str, Any]]) -> int:
    return max(n for n, cmd in enumerate(commands, start=1) if cmd["type"] == "contact_logged")


def through_kafka(settings: Settings, app: Any) -> int:
    """The relay publishes everything recorded; the projector's tracker applies what a
    consumer reads back from the events topic. Returns the last position published."""
    last = publish_all(app, settings)
    records = consume(settings, settings.events_topic, last)
    assert len(records) == last
    delivered = [Delivered(r.partition, r.offset, decode(r.value)) for r in records]

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            tracker = Tracker(settings.db_schema)
            for start in range(0, len(delivered), 40):
                await tracker.apply(conn, all_projections(), delivered[start : start + 40])

    asyncio.run(run())
    return last


@pytest.fixture(scope="module")
def org(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, dict[str, str], int]]:
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("attention"))) as settings:
        with opened_application(settings) as app:
            for key, commands in stories().items():
                requests = [
                    Request(any_command.validate_python({**cmd, "partnership_id": PID[key]}), "tester", "api")
                    for cmd in commands
                ]
                outcomes = app.execute(requests)
                assert all(hasattr(o, "position") for o in outcomes), outcomes
            last = through_kafka(settings, app)
        with connect(settings.require_database_url(), autocommit=True) as conn:
            tokens = {
                "alice": issue_token(conn, settings.db_schema, "alice-laptop", ["dashboards:read"], person="Alice"),
                "viewer": issue_token(conn, settings.db_schema, "viewer", ["dashboards:read"]),
                "carol": issue_token(conn, settings.db_schema, "carol-phone", ["dashboards:read"], person=" carol"),
            }
        yield settings, tokens, last


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


EXPECTED = [
    # Overdue first, by kind (dormant, contact, segmentation), then not yet overdue by kind.
    ("Dormant Oy", "dormant_worth_waking", day(-159), True),
    ("Overdue Oy", "contact_due", day(-30), True),
    ("Unplaced Oy", "segmentation_missing", day(-30), True),
    ("Handover Oy", "handover_pending", day(10), False),
    ("Evaluate Oy", "evaluation_due", day(5), False),
]


def test_the_precondition_the_dormant_partner_is_trusted_and_quiet(org: tuple[Settings, Any, int]) -> None:
    settings, _, _ = org
    with psycopg.connect(settings.require_database_url()) as conn:
        lifecycle, trust = (active_schema(conn, settings.db_schema, n) for n in ("lifecycle", "trust"))
        rows, _ = board_page(conn, lifecycle, trust, BoardQuery(AS_OF, flag="dormant_but_trusted"), THRESHOLDS)
    assert [r["partner_name"] for r in rows] == ["Dormant Oy"]


def test_me_gets_exactly_the_ranked_list_its_partnerships_call_for(org: tuple[Settings, Any, int]) -> None:
    settings, tokens, last = org
    params = {"steward": "me", "as_of": AS_OF.isoformat(), "min_position": last}
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/attention", params=params, headers=bearer(tokens["alice"]))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["steward"], body["total"], body["count"], body["caught_up"]) == ("alice", 5, 5, True)
        items = body["items"]
        assert [(i["partner_name"], i["kind"], i["due"], i["overdue"]) for i in items] == EXPECTED
        assert [i["priority"] for i in items] == [1, 2, 3, 4, 5]
        plan = stories()
        assert [i["evidence"] for i in items] == [
            [f"{PID['dormant']}:{last_contact_version(plan['dormant'])}"],
            [f"{PID['overdue']}:4"],
            [f"{PID['unplaced']}:1"],
            [f"{PID['handover']}:6"],
            [f"{PID['evaluate']}:1"],
        ]
        order = ("dormant", "overdue", "unplaced", "handover", "evaluate")
        assert [i["partnership_id"] for i in items] == [PID[k] for k in order]
        assert all(i["reason"].endswith(".") and len(i["reason"]) > 30 for i in items)
        assert "steward left" in items[3]["reason"] and "every 90 days" in items[1]["reason"]

        # The same person named in any case, by a token that belongs to no one.
        for name in ("ALICE", " alice ", "Alice"):
            named = client.get("/v1/attention", params={**params, "steward": name}, headers=bearer(tokens["viewer"]))
            assert named.json()["items"] == items, name
        # The first few; one unit's partnerships; another steward's.
        first = client.get("/v1/attention", params={**params, "limit": 2}, headers=bearer(tokens["alice"])).json()
        assert (first["items"], first["total"], first["count"]) == (items[:2], 5, 2)
        sales = client.get("/v1/attention", params={**params, "unit": "sales"}, headers=bearer(tokens["alice"])).json()
        assert [i["partner_name"] for i in sales["items"]] == ["Handover Oy"]
        bob = client.get("/v1/attention", params={**params, "steward": "bob"}, headers=bearer(tokens["alice"])).json()
        assert [(i["partner_name"], i["kind"]) for i in bob["items"]] == [("Other Oy", "segmentation_missing")]
        nobody = client.get("/v1/attention", params={**params, "steward": "Eero"}, headers=bearer(tokens["alice"]))
        assert nobody.json()["items"] == []  # no longer anyone's steward


def test_me_without_a_person_is_a_problem_that_says_how_to_fix_it(org: tuple[Settings, Any, int]) -> None:
    settings, tokens, _ = org
    with TestClient(create_app(settings)) as client:
        for path in ("/v1/attention", "/v1/projections/lifecycle"):
            answer = client.get(path, params={"steward": "me"}, headers=bearer(tokens["viewer"]))
            assert answer.status_code == 400, path
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert (problem["code"], problem["field"]) == ("no_person", "steward")
            assert "--person" in problem["detail"]
        # Without a steward, the attention list is the caller's own: the same problem.
        assert client.get("/v1/attention", headers=bearer(tokens["viewer"])).json()["code"] == "no_person"


def test_the_board_filters_stewards_as_people(org: tuple[Settings, Any, int]) -> None:
    settings, tokens, _ = org
    alices = ["Dormant Oy", "Evaluate Oy", "Fine Oy", "Handover Oy", "Overdue Oy", "Unplaced Oy"]
    with TestClient(create_app(settings)) as client:

        def board(steward: str, token: str) -> list[str]:
            params = {"steward": steward, "as_of": AS_OF.isoformat()}
            answer = client.get("/v1/projections/lifecycle", params=params, headers=bearer(tokens[token]))
            assert answer.status_code == 200, answer.text
            return [r["partner_name"] for r in answer.json()["partnerships"]]

        assert board("me", "alice") == board("ALICE", "viewer") == board("alice", "viewer") == alices
        assert board("bob", "viewer") == ["Other Oy"]
        assert board("me", "carol") == []


def test_people_are_the_stewards_and_token_holders_by_person(org: tuple[Settings, Any, int]) -> None:
    settings, tokens, _ = org
    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/people/me", headers=bearer(tokens["alice"])).json()
        assert me == {"token": "alice-laptop", "person": "Alice", "person_key": "alice", "scopes": ["dashboards:read"]}
        nobody = client.get("/v1/people/me", headers=bearer(tokens["viewer"])).json()
        assert (nobody["person"], nobody["person_key"]) == (None, None)
        people = client.get("/v1/people", params={"as_of": AS_OF.isoformat()}, headers=bearer(tokens["viewer"])).json()
    assert people["people"] == [
        # "Alice" is how most of her partnerships spell her (three of six).
        {"person_key": "alice", "name": "Alice", "names": ["ALICE", "Alice", "aLiCe", "alice"], "partnerships": 6,
         "tokens": 1},
        {"person_key": "bob", "name": "Bob", "names": ["Bob"], "partnerships": 1, "tokens": 0},
        {"person_key": "carol", "name": " carol", "names": [" carol"], "partnerships": 0, "tokens": 1},
    ]  # fmt: skip
    assert people["count"] == 3
