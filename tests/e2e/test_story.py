"""A multi-year story told through HTTP and Kafka, and what the projections make of it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.e2e.system import System, run_system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from run_system(tmp_path_factory, "story")


class Story:
    def __init__(self, system: System) -> None:
        self.system = system
        self.last: dict[str, int] = {}  # aggregate id -> position of its latest event
        self.kafka = KafkaProducer(bootstrap_servers=system.endpoints["kafka_bootstrap"], acks="all")

    def http(self, path: str, body: dict[str, Any]) -> str:
        response = self.system.post(path, body)
        assert response.status_code == 201, response.text
        self.last[response.json()["id"]] = response.json()["position"]
        return response.json()["id"]

    def over_kafka(self, body: dict[str, Any], aggregate_id: str) -> None:
        self.kafka.send(
            self.system.env["VERKOSTO_COMMANDS_TOPIC"],
            key=aggregate_id.encode(),
            value=json.dumps({**body, "actor": "calendar-sync"}).encode(),
        )
        self.kafka.flush()
        events = f"/v1/partnerships/{aggregate_id}/history"
        expected = len(self.system.get(events).json()["events"]) + 1
        deadline = time.monotonic() + 45
        while (answer := self.system.get(events).json()["events"]) and len(answer) < expected:
            assert time.monotonic() < deadline, "the Kafka command was not recorded"
            time.sleep(0.2)
        self.last[aggregate_id] = answer[-1]["position"]

    def settle(self) -> None:
        """Waits until the projections have applied every aggregate's latest event: the
        events topic has several partitions, so one position does not imply the others."""
        for position in self.last.values():
            body = self.system.get("/v1/projections/networks", min_position=position, wait_ms=10_000).json()
            assert body["caught_up"], body


@pytest.fixture(scope="module")
def story(system: System) -> dict[str, str]:
    s = Story(system)
    lab = s.http(
        "/v1/partnerships",
        {
            "partner": {"name": "Kuopio Lab", "kind": "organisation", "roles": ["researcher"]},
            "owner_unit": "research",
            "steward": "alice",
            "occurred_at": "2023-01-10T09:00:00Z",
        },
    )
    on = f"/v1/partnerships/{lab}/events"
    s.http(
        on,
        {
            "type": "contact_logged",
            "channel": "meeting",
            "direction": "outbound",
            "participants": ["alice"],
            "occurred_at": "2023-01-20T10:00:00Z",
        },
    )
    s.http(
        on,
        {"type": "interest_signalled", "direction": "outbound", "strength": 2, "occurred_at": "2023-02-01T10:00:00Z"},
    )
    s.over_kafka(
        {
            "type": "interest_signalled",
            "partnership_id": lab,
            "direction": "inbound",
            "strength": 3,
            "occurred_at": "2023-02-15T10:00:00Z",
        },
        lab,
    )
    s.http(
        on,
        {
            "type": "stage_changed",
            "stage": "prioritise",
            "reason": "shortlisted",
            "occurred_at": "2023-02-20T10:00:00Z",
        },
    )
    for day, kind, ours, theirs in (
        ("2023-03-01", "workshop", 16, 12),
        ("2023-05-01", "pilot", 60, 50),
        ("2023-09-01", "project", 120, 100),
    ):
        s.http(
            on,
            {
                "type": "joint_activity_recorded",
                "kind": kind,
                "title": kind.title(),
                "our_effort_hours": ours,
                "their_effort_hours": theirs,
                "occurred_at": f"{day}T10:00:00Z",
            },
        )
    s.http(on, {"type": "evaluated", "factors": {"fit": 10, "delivery": 10}, "occurred_at": "2023-06-01T10:00:00Z"})
    s.http(
        on,
        {
            "type": "stage_changed",
            "stage": "maintain",
            "reason": "pilot_succeeded",
            "occurred_at": "2023-06-02T10:00:00Z",
        },
    )
    s.http(on, {"type": "segmented", "now": "-", "future": "+", "occurred_at": "2023-06-15T10:00:00Z"})
    s.http(on, {"type": "evaluated", "factors": {"fit": 10, "delivery": 1}, "occurred_at": "2023-10-01T10:00:00Z"})
    s.http(
        on, {"type": "stage_changed", "stage": "manage", "reason": "strategic", "occurred_at": "2023-10-02T10:00:00Z"}
    )
    s.http(on, {"type": "segmented", "now": "+", "future": "++", "occurred_at": "2024-02-10T10:00:00Z"})
    s.over_kafka(
        {
            "type": "ownership_transferred",
            "partnership_id": lab,
            "owner_unit": "research",
            "steward": "bob",
            "reason": "steward_left",
            "occurred_at": "2024-03-01T00:00:00Z",
        },
        lab,
    )

    costly = s.http(
        "/v1/partnerships",
        {
            "partner": {"name": "Costly Oy", "kind": "organisation", "roles": ["supplier"]},
            "owner_unit": "operations",
            "steward": "dan",
            "occurred_at": "2024-06-01T09:00:00Z",
        },
    )
    on = f"/v1/partnerships/{costly}/events"
    for day, ours, theirs, factors in (
        ("2025-01-10", 200, 20, {"quality": 0.1}),
        ("2025-06-01", 150, 10, {"quality": 0.1, "speed": 1}),
    ):
        s.http(
            on,
            {
                "type": "joint_activity_recorded",
                "kind": "project",
                "title": "Integration",
                "our_effort_hours": ours,
                "their_effort_hours": theirs,
                "occurred_at": f"{day}T10:00:00Z",
            },
        )
        s.http(on, {"type": "evaluated", "factors": factors, "occurred_at": f"{day}T12:00:00Z"})

    forum = s.http(
        "/v1/networks",
        {
            "name": "Nordic AI forum",
            "purposes": ["influence", "information_sharing"],
            "role": "member",
            "activity": "active",
            "best_before": "2024-06-30",
            "owner_unit": "research",
            "steward": "alice",
            "occurred_at": "2022-05-01T09:00:00Z",
        },
    )
    s.http(
        f"/v1/networks/{forum}/events",
        {"type": "network_contribution_logged", "our_effort_hours": 20, "occurred_at": "2022-09-01T09:00:00Z"},
    )
    funding = s.http(
        "/v1/networks",
        {
            "name": "Regional funding network",
            "purposes": ["funding"],
            "role": "member",
            "activity": "passive",
            "owner_unit": "innovation",
            "steward": "bob",
            "occurred_at": "2022-01-01T09:00:00Z",
        },
    )
    s.http(
        f"/v1/networks/{funding}/events",
        {"type": "network_evaluated", "factors": {"money": 10}, "occurred_at": "2023-04-01T09:00:00Z"},
    )
    s.kafka.close()
    s.settle()
    return {"lab": lab, "costly": costly, "forum": forum, "funding": funding, "lab_position": str(s.last[lab])}


def fresh(story: dict[str, str]) -> dict[str, Any]:
    return {"min_position": story["lab_position"], "wait_ms": 10_000}


def test_the_trust_trajectory_follows_what_was_done_together(system: System, story: dict[str, str]) -> None:
    body = system.get(f"/v1/projections/trust/{story['lab']}", **fresh(story)).json()
    assert body["caught_up"] and body["model_version"]
    points = body["points"]
    trust = {p["at"][:10]: p["trust"] for p in points}
    assert trust["2023-02-15"] <= 0.15  # interest both ways, nothing done together yet
    assert points[3]["mutual_interest"] > 0  # after the inbound signal, interest is mutual
    assert trust["2023-10-01"] > trust["2023-03-01"] > trust["2023-02-15"]
    assert trust["2024-03-01"] < trust["2023-10-01"]  # the steward left: the personal part restarts
    assert trust["2024-03-01"] > 0.1  # ...but the organisation's part stays
    assert "trust" in {p["phase"] for p in points}
    assert len(points) == 10  # every event that moved it, and only those
    assert body["current"]["trust"] <= trust["2024-03-01"]  # quiet years since


def test_lifecycle_flags_name_their_reasons(system: System, story: dict[str, str]) -> None:
    board = system.get("/v1/projections/lifecycle", **fresh(story)).json()
    lab = next(p for p in board["partnerships"] if p["partnership_id"] == story["lab"])
    assert (lab["stage"], lab["steward"]) == ("manage", "bob")
    assert [t["to"] for t in lab["transitions"]] == ["prioritise", "maintain", "manage"]
    flags = {f["name"]: f["reasons"] for f in lab["flags"]}
    assert any("steward left" in r for r in flags["needs_handover"])
    # Segmented up in 2024, but nothing else grew since: one kind of evidence is no rise.
    assert "rising" not in flags
    assert any("every 45 days" in r for r in flags["under_served"])  # a '+/++' partner, quiet for years
    as_of = system.get("/v1/projections/lifecycle", as_of="2025-08-01T00:00:00Z", flag="wind_down_candidate").json()
    assert [p["partner_name"] for p in as_of["partnerships"]] == ["Costly Oy"]
    costly = {f["name"]: f for f in as_of["partnerships"][0]["flags"]}
    reasons = costly["wind_down_candidate"]["reasons"]
    assert "over_served" in costly  # 350 h in a year for a partner not yet segmented (40 h)
    assert costly["wind_down_candidate"]["evidence"]  # the activities and evaluations behind it
    assert any(r.startswith("low_efficiency") for r in reasons) and any(r.startswith("unfair") for r in reasons)
    then = system.get("/v1/projections/lifecycle", as_of="2023-07-01T00:00:00Z").json()["partnerships"]
    lab_then = next(p for p in then if p["partnership_id"] == story["lab"])
    assert (lab_then["stage"], lab_then["steward"], lab_then["segment"]) == (
        "maintain",
        "alice",
        {"now": "-", "future": "+"},
    )
    assert [t["to"] for t in lab_then["transitions"]] == ["prioritise", "maintain"]
    assert "needs_handover" not in {f["name"] for f in lab_then["flags"]}
    assert [p["partner_name"] for p in then] == ["Kuopio Lab"]  # Costly Oy was not a partner yet
    by_steward = system.get("/v1/projections/lifecycle", steward="dan").json()
    assert [p["partner_name"] for p in by_steward["partnerships"]] == ["Costly Oy"]


def test_the_portfolio_shows_the_matrix_and_the_drift(system: System, story: dict[str, str]) -> None:
    body = system.get("/v1/projections/portfolio", since="2023-01-01T00:00:00Z", **fresh(story)).json()
    cells = {c["cell"]: c for c in body["cells"]}
    assert len(cells) == 16
    assert [m["partner_name"] for m in cells["+/++"]["members"]] == ["Kuopio Lab"]
    assert [m["partner_name"] for m in body["rising"]] == ["Kuopio Lab"]
    moves = [(m["quarter"], m["from"], m["to"]) for m in body["drift"] if m["partnership_id"] == story["lab"]]
    assert moves == [("2023-Q2", None, "-/+"), ("2024-Q1", "-/+", "+/++")]


def test_the_network_plan_recommends_what_to_do(system: System, story: dict[str, str]) -> None:
    body = system.get("/v1/network-plan", **fresh(story)).json()
    plan = {n["name"]: n for n in body["networks"]}
    assert (plan["Nordic AI forum"]["recommendation"], plan["Nordic AI forum"]["reason"]) == (
        "leave",
        "best_before_passed",
    )
    assert plan["Nordic AI forum"]["best_before_status"] == "passed"
    assert plan["Regional funding network"]["recommendation"] == "activate"
    assert plan["Regional funding network"]["activity"] == "dormant"
    markdown = system.http.get("/v1/network-plan", headers={**system.auth(), "Accept": "text/markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "Nordic AI forum" in markdown.text and "best_before_passed" in markdown.text
    printed = system.cli("network-plan")
    assert printed.returncode == 0, printed.stderr
    assert "Regional funding network" in printed.stdout


def test_a_rebuild_re_scores_history_without_changing_the_answers(system: System, story: dict[str, str]) -> None:
    before = system.get(f"/v1/projections/trust/{story['lab']}", **fresh(story)).json()["points"]
    rebuilt = system.cli("projections", "rebuild", "trust")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "version 2 is active" in rebuilt.stdout
    after = system.get(f"/v1/projections/trust/{story['lab']}").json()
    assert after["points"] == before
    assert uuid.UUID(story["lab"])


def test_auditors_see_what_each_steward_held_and_what_followed_a_departure(
    system: System, story: dict[str, str]
) -> None:
    def held(steward: str, at: str) -> list[str]:
        body = system.get(f"/v1/audit/stewards/{steward}", at=at).json()
        return [p["partner_name"] for p in body["partnerships"]]

    assert held("alice", "2023-06-01T00:00:00Z") == ["Kuopio Lab"]
    assert held("alice", "2024-06-01T00:00:00Z") == []
    assert held("bob", "2024-06-01T00:00:00Z") == ["Kuopio Lab"]
    assert held("dan", "2025-01-01T00:00:00Z") == ["Costly Oy"]
    (handover,) = system.get("/v1/audit/handovers").json()["handovers"]
    assert (handover["partner_name"], handover["steward_who_left"], handover["successor"]) == (
        "Kuopio Lab",
        "alice",
        "bob",
    )
    assert handover["handed_over_at"].startswith("2024-03-01")
    assert (handover["contacts_since"], handover["first_contact_since"]) == (0, None)


def test_a_network_as_it_was(system: System, story: dict[str, str]) -> None:
    early = system.get(f"/v1/networks/{story['forum']}", as_of="2022-06-01T00:00:00Z").json()
    later = system.get(f"/v1/networks/{story['forum']}", as_of="2023-01-01T00:00:00Z").json()
    assert (early["effort_hours"], later["effort_hours"]) == (0, 20)
    assert early["name"] == "Nordic AI forum" and early["events_known"] == 1
