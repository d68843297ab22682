"""network_considered and plan_decided at both doors, against real PostgreSQL and a real
broker: recorded (201) or refused with a stable code (409/422 problem+json over HTTP; the
dead-letter topic's reason header on Kafka), and published like every other event."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from domain.network_candidates import candidate_id_for
from domain.organisation import ORGANISATION_ID, Organisation
from services.application import Verkosto
from services.settings import Settings
from tests.integration.test_organisation import problem
from tests.kafka_helpers import RunningIngest, command, consume, header, produce, publish_all

READY = {"competence": "met", "visibility": "partly_met", "reliability": "met", "own_resources": "missing",
         "selective_loyalty": "met"}  # fmt: skip
CONSIDER = {"type": "network_considered", "name": "Nordic AI forum", "purposes": ["funding", "competence"],
            "requirements": READY, "occurred_at": "2025-01-10T00:00:00Z"}  # fmt: skip
CANDIDATE = str(candidate_id_for("Nordic AI forum"))


def decide(network_id: str, decision: str, **extra: Any) -> dict[str, Any]:
    return {"type": "plan_decided", "network_id": network_id, "decision": decision, "rationale": "a funding call",
            "decider": "Aino Aalto", "occurred_at": "2025-02-01T00:00:00Z", **extra}  # fmt: skip


def joined(nid: str) -> dict[str, Any]:
    return {"type": "network_joined", "network_id": nid, "name": "Forum", "purposes": ["influence"],
            "role": "member", "activity": "active", "owner_unit": "research", "steward": "Aino",
            "occurred_at": "2025-01-01T00:00:00Z"}  # fmt: skip


def test_candidates_and_decisions_over_http(client: TestClient) -> None:
    considered = client.post("/v1/organisation/events", json=CONSIDER)
    assert considered.status_code == 201, considered.text
    assert (considered.json()["id"], considered.json()["version"]) == (str(ORGANISATION_ID), 2)  # 1: the founding
    problem(client.post("/v1/organisation/events", json=CONSIDER), 409, "nothing_changed")
    problem(client.post("/v1/organisation/events", json={**CONSIDER, "purposes": []}), 422, "validation_failed")
    bad_level = {**CONSIDER, "requirements": {**READY, "visibility": "somewhat"}}
    problem(client.post("/v1/organisation/events", json=bad_level), 422, "validation_failed")

    nid = str(uuid.uuid4())
    assert client.post("/v1/networks", json=joined(nid)).status_code == 201
    refused = problem(client.post("/v1/organisation/events", json=decide(CANDIDATE, "keep")), 409, "not_our_network")
    assert "decide join" in refused["detail"] and refused["network_id"] == CANDIDATE
    problem(client.post("/v1/organisation/events", json=decide(nid, "join")), 409, "not_a_candidate")
    problem(client.post("/v1/organisation/events", json=decide(str(uuid.uuid4()), "park")), 409, "not_our_network")
    early = decide(nid, "keep", occurred_at="2024-12-01T00:00:00Z")  # before we joined it
    problem(client.post("/v1/organisation/events", json=early), 409, "occurred_before_start")
    problem(client.post("/v1/organisation/events", json=decide(nid, "keep", rationale=" ")), 422, "validation_failed")
    problem(client.post("/v1/organisation/events", json=decide(nid, "left")), 422, "validation_failed")

    assert client.post("/v1/organisation/events", json=decide(CANDIDATE, "join")).status_code == 201
    assert client.post("/v1/organisation/events", json=decide(nid, "leave")).status_code == 201
    problem(client.post("/v1/organisation/events", json=decide(nid, "leave")), 409, "nothing_changed")

    (candidate,) = client.get("/v1/organisation/candidates").json()["candidates"]
    assert (candidate["candidate_id"], candidate["readiness"], candidate["missing"]) == (
        CANDIDATE,
        0.7,
        ["own_resources"],
    )
    assert candidate["purposes"] == ["competence", "funding"] and candidate["partly_met"] == ["visibility"]
    assert (candidate["decision"]["decision"], candidate["decision"]["actor"]) == ("join", "integrator")
    before = client.get("/v1/organisation/candidates", params={"as_of": "2025-01-09T23:59:59Z"}).json()
    assert before["candidates"] == []
    undecided = client.get("/v1/organisation/candidates", params={"as_of": "2025-01-31T00:00:00Z"}).json()
    assert undecided["candidates"][0]["decision"] is None


def test_candidates_and_decisions_over_kafka_refusals_dead_lettered_with_their_code(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    nid = str(uuid.uuid4())
    produce(settings, [command(joined(nid)), command(CONSIDER)])
    running.until(lambda: running.ingest.recorded >= 2)
    # Sent once both are recorded: messages on different keys may land on different partitions.
    produce(
        settings,
        [
            command(decide(CANDIDATE, "join")),
            command(decide(nid, "park")),
            command(decide(CANDIDATE, "activate")),  # a candidate is not a network we are in
            command(decide(nid, "join")),  # we are in it: nothing to join
            command(decide(nid, "keep", rationale="")),
        ],
    )
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= 7)
    assert (running.ingest.recorded, running.ingest.dead_lettered) == (4, 3)
    dead = consume(settings, settings.dlq_topic, 3)
    assert sorted(header(r, "reason") for r in dead) == ["invalid_command", "not_a_candidate", "not_our_network"]

    decided = [e for e in app.domain_events(ORGANISATION_ID) if isinstance(e, Organisation.PlanDecided)]
    assert sorted((str(e.network_id), e.decision.value, e.meta.actor) for e in decided) == sorted(
        [(CANDIDATE, "join", "crm-sync"), (nid, "park", "crm-sync")]
    )
    count = publish_all(app, settings)
    published = [json.loads(r.value) for r in consume(settings, settings.events_topic, count)]
    organisation = [e for e in published if e["aggregate_type"] == "organisation"]
    assert [e["type"] for e in organisation].count("plan_decided") == 2
    (considered,) = [e for e in organisation if e["type"] == "network_considered"]
    assert considered["data"]["candidate_id"] == CANDIDATE and considered["data"]["requirements"] == READY
