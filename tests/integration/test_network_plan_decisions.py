"""The organisation's network plan decisions through real PostgreSQL: candidates and
decisions recorded as events, applied to the real networks projection (delivered like a
bus), and read back by the plan: the decisions of the time as of a date, a decision
overriding the recommendation side by side, the ranking of networks to join, and what
leaving would cost. A rebuild of the projection gives the same plan."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from contract.commands import any_command
from domain.network_candidates import candidate_id_for
from domain.network_plan import network_plan
from projections.catalog import by_name
from projections.queries.insights import network_facts_all
from projections.queries.network_plan import sections_at
from projections.rebuild import rebuild_sync
from projections.registry import active_schema
from services.api.app import create_app
from services.application import Request
from services.auth import issue_token
from services.db import connect
from services.replay import StoreHistory
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ONLY, BOTH = str(uuid.uuid4()), str(uuid.uuid4())  # partnerships: in the slow council only / in both
LATE = str(uuid.uuid4())  # in the slow council only, until day 180
PARTNERS = ((ONLY, "Only Oy"), (BOTH, "Both Oy"), (LATE, "Late Oy"))
SLOW, FORUM = str(uuid.uuid4()), str(uuid.uuid4())
FUND, INFO = str(uuid.uuid4()), str(uuid.uuid4())  # candidates with ids of the sender's choosing
INFLUENCE = str(candidate_id_for("Influence club"))  # and one with the id derived from its name
MET = dict.fromkeys(("competence", "visibility", "reliability", "own_resources", "selective_loyalty"), "met")
BEFORE_DECISIONS, OVERRIDDEN, DECIDED = (T0 + timedelta(days=d) for d in (90, 150, 250))


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def world() -> list[dict[str, Any]]:
    partner = {"kind": "organisation", "roles": ["researcher"]}
    owned = {"owner_unit": "research", "steward": "Aino"}
    return [
        *({"type": "partnership_opened", "partnership_id": pid, "occurred_at": at(-20), **owned,
           "partner": {**partner, "name": name}} for pid, name in PARTNERS),
        # The slow council costs 120 h for a poor outcome: the rules say leave.
        {"type": "network_joined", "network_id": SLOW, "name": "Slow council", "purposes": ["influence"],
         "role": "member", "activity": "active", "occurred_at": at(-10), **owned},
        # The data forum is passive and kept warm.
        {"type": "network_joined", "network_id": FORUM, "name": "Data forum", "purposes": ["information_sharing"],
         "role": "member", "activity": "passive", "occurred_at": at(-10), **owned},
        {"type": "member_added", "network_id": SLOW, "partnership_id": ONLY, "occurred_at": at(-5)},
        {"type": "member_added", "network_id": SLOW, "partnership_id": BOTH, "occurred_at": at(-5)},
        {"type": "member_added", "network_id": FORUM, "partnership_id": BOTH, "occurred_at": at(-5)},
        {"type": "member_added", "network_id": SLOW, "partnership_id": LATE, "occurred_at": at(-5)},
        {"type": "member_removed", "network_id": SLOW, "partnership_id": LATE, "occurred_at": at(180)},
        {"type": "network_contribution_logged", "network_id": SLOW, "our_effort_hours": 120.0, "occurred_at": at(50)},
        {"type": "network_evaluated", "network_id": SLOW, "factors": {"value": 0.1}, "occurred_at": at(60)},
        {"type": "network_contribution_logged", "network_id": FORUM, "our_effort_hours": 4.0, "occurred_at": at(50)},
        # Candidates: funding (a gap; we lack own resources), information sharing and a shared
        # goal (one served, one a gap), influence (served by the council until we leave it).
        {"type": "network_considered", "candidate_id": FUND, "name": "Funding alliance", "purposes": ["funding"],
         "requirements": {**MET, "own_resources": "missing"}, "occurred_at": at(10)},
        {"type": "network_considered", "candidate_id": INFO, "name": "Info exchange",
         "purposes": ["information_sharing", "shared_goal"], "requirements": MET, "occurred_at": at(10)},
        {"type": "network_considered", "name": "Influence club", "purposes": ["influence"],
         "requirements": dict.fromkeys(MET, "partly_met"), "occurred_at": at(10), "note": "Ville knows them"},
        # Decided in a later batch, recorded out of order: the keep applies from day 100,
        # the leave from day 200, whatever order they were recorded in.
        {"type": "plan_decided", "network_id": SLOW, "decision": "leave", "rationale": "the chair went elsewhere",
         "decider": "Ville Virtanen", "occurred_at": at(200)},
        {"type": "plan_decided", "network_id": SLOW, "decision": "keep", "rationale": "we chair it next year",
         "decider": "Aino Aalto", "occurred_at": at(100)},
        {"type": "plan_decided", "network_id": FUND, "decision": "join", "rationale": "a funding call in spring",
         "decider": "Aino Aalto", "occurred_at": at(120)},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def plan_world(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("plan"))) as settings:
        with opened_application(settings) as app:
            requests = [Request(any_command.validate_python(c), "planner", "api") for c in world()]
            outcomes = [app.execute([r])[0] for r in requests]  # one by one: members need their partners
            assert all(hasattr(o, "position") for o in outcomes), outcomes
            apply_all(settings, deliver_like_a_bus(published(app), seed=7))
        yield settings


@pytest.fixture
def reader(plan_world: Settings) -> Iterator[TestClient]:
    with connect(plan_world.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, plan_world.db_schema, "planner", ["dashboards:read", "history:read"])
    with TestClient(create_app(plan_world), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def plan(client: TestClient, moment: datetime) -> dict[str, Any]:
    response = client.get("/v1/network-plan", params={"as_of": moment.isoformat()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def network(body: dict[str, Any], nid: str) -> dict[str, Any]:
    (found,) = [n for n in body["networks"] if n["network_id"] == nid]
    return found


def test_as_of_answers_the_decisions_of_the_time(reader: TestClient) -> None:
    before, overridden, decided = (plan(reader, m) for m in (BEFORE_DECISIONS, OVERRIDDEN, DECIDED))
    slow = [network(b, SLOW) for b in (before, overridden, decided)]
    assert [s["recommendation"] for s in slow] == ["leave", "leave", "leave"]
    assert slow[0]["decision"] is None and slow[0]["course"] == "leave" and not slow[0]["overrides"]
    assert (slow[1]["decision"]["decision"], slow[1]["decision"]["decider"]) == ("keep", "Aino Aalto")
    assert slow[1]["decision"]["rationale"] == "we chair it next year" and slow[1]["overrides"] is True
    assert slow[1]["decision"]["actor"] == "planner" and slow[1]["decision"]["decided_at"].startswith("2025-04-11")
    assert (slow[2]["decision"]["decision"], slow[2]["overrides"]) == ("leave", False)
    assert network(decided, FORUM)["decision"] is None and network(decided, FORUM)["recommendation"] == "keep"


def test_the_markdown_shows_recommendation_and_decision_side_by_side(reader: TestClient) -> None:
    response = reader.get(
        "/v1/network-plan", params={"as_of": OVERRIDDEN.isoformat()}, headers={"Accept": "text/markdown"}
    )
    text = response.text
    assert response.status_code == 200 and "## Recommendation and decision" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| Slow council | leave")]
    assert row.endswith("| keep (overrides) | Aino Aalto | we chair it next year | 2025-04-11 |")
    assert "| Data forum | keep | – | – | – | – |" in text
    assert "- **Slow council** (recommended): frees 120 h of our effort a year" in text
    assert "| 1 | Info exchange | information_sharing, shared_goal | 1 | 1 | 1 | – | – | – |" in text


def test_to_join_is_ranked_by_purpose_fit_and_readiness_and_follows_decisions(reader: TestClient) -> None:
    assert plan(reader, T0 + timedelta(days=5))["to_join"] == []  # nothing considered yet
    overridden, decided = plan(reader, OVERRIDDEN)["to_join"], plan(reader, DECIDED)["to_join"]
    ranking = [(c["candidate_id"], c["purpose_fit"], c["readiness"], c["priority"]) for c in overridden]
    # While we keep the council, influence is served: the club adds nothing yet.
    assert ranking == [(INFO, 1.0, 1.0, 1.0), (FUND, 1.0, 0.8, 0.8), (INFLUENCE, 0.0, 0.5, 0.0)]
    # Once we decided to leave it, influence is a gap again and the club rises.
    assert [(c["candidate_id"], c["priority"]) for c in decided] == [(INFO, 1.0), (FUND, 0.8), (INFLUENCE, 0.5)]
    fund, club = overridden[1], overridden[2]
    assert (fund["missing"], fund["decision"]["decision"], fund["decision"]["decider"]) == (
        ["own_resources"],
        "join",
        "Aino Aalto",
    )
    assert club["partly_met"] == list(MET) and club["note"] == "Ville knows them" and club["decision"] is None


def test_impact_of_leaving_names_the_partnerships_it_alone_connects_and_the_effort_it_frees(
    reader: TestClient,
) -> None:
    (overridden,) = plan(reader, OVERRIDDEN)["leaving_impact"]
    (decided,) = plan(reader, DECIDED)["leaving_impact"]
    assert (overridden["network_id"], overridden["basis"]) == (SLOW, "recommended")  # kept, but recommended
    assert decided["basis"] == "recommended and decided"
    assert (decided["effort_hours"], decided["window_days"]) == (120.0, 365)
    # Both Oy also shares the data forum with us; Only Oy would be cut off, and so would
    # Late Oy while it was a member (until day 180): membership is read as of the plan's date.
    assert [m["partner_name"] for m in overridden["sole_members"]] == ["Late Oy", "Only Oy"]
    assert decided["sole_members"] == [{"partnership_id": ONLY, "partner_name": "Only Oy"}]


def test_the_candidates_endpoint_answers_as_of_from_the_organisation(reader: TestClient) -> None:
    now = reader.get("/v1/organisation/candidates").json()["candidates"]
    assert [(c["name"], c["readiness"]) for c in now] == [
        ("Info exchange", 1.0),
        ("Funding alliance", 0.8),
        ("Influence club", 0.5),
    ]
    assert now[1]["decision"]["decision"] == "join" and now[2]["candidate_id"] == INFLUENCE
    early = reader.get("/v1/organisation/candidates", params={"as_of": at(5)}).json()
    assert early["candidates"] == []


def test_a_rebuilt_networks_projection_gives_the_same_plan(plan_world: Settings) -> None:
    url = plan_world.require_database_url()

    def answers(rm: sql.Identifier) -> list[dict[str, Any]]:
        with psycopg.connect(url) as conn:
            healths = [network_plan(network_facts_all(conn, rm), m) for m in (OVERRIDDEN, DECIDED)]
            return [sections_at(conn, rm, h, m).to_dict() for h, m in zip(healths, (OVERRIDDEN, DECIDED), strict=True)]

    with psycopg.connect(url) as conn:
        live = active_schema(conn, plan_world.db_schema, "networks")
    before = answers(live)
    with StoreHistory(url, plan_world.db_schema) as history:
        _, rebuilt = rebuild_sync(url, plan_world.db_schema, by_name("networks"), lambda *_: None, source=history)
    assert sql.Identifier(rebuilt) != live  # a new version, folded from the event store
    assert answers(sql.Identifier(rebuilt)) == before and before[1]["to_join"] and before[1]["leaving_impact"]
