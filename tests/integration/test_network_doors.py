"""Networks' ownership, membership, members' contributions, activations and the needs they
met, and revised best-before dates, at both doors against real PostgreSQL and a real
broker: recorded over HTTP and Kafka, refused with stable codes (problem+json; the
dead-letter topic with the reason), published, and read back from the projections."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from services.application import Verkosto
from services.auth import issue_token
from services.db import connect
from services.settings import Settings
from tests.integration.test_organisation import problem
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published
from tests.kafka_helpers import RunningIngest, command, consume, header, opened, produce, publish_all

JOINED = "2024-01-01T09:00:00Z"


def join(nid: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        "type": "network_joined",
        "network_id": str(nid),
        "name": "Nordic data forum",
        "purposes": ["shared_goal"],
        "role": "member",
        "activity": "passive",
        "best_before": "2030-01-01",
        "owner_unit": "research",
        "steward": "Aino",
        "occurred_at": JOINED,
        **extra,
    }


def on(nid: uuid.UUID, kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "network_id": str(nid), **fields}


def test_over_http_with_problems_for_what_cannot_be_done(client: TestClient, app: Verkosto, settings: Settings) -> None:
    member, ended, nid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for pid in (member, ended):
        assert client.post("/v1/partnerships", json=opened(pid, occurred_at="2023-01-01T09:00:00Z")).status_code == 201
    for day, stage in (("2023-02-01", "prioritise"), ("2023-03-01", "wind_down"), ("2023-04-01", "ended")):
        moved = {"type": "stage_changed", "stage": stage, "reason": "fit", "occurred_at": f"{day}T09:00:00Z"}
        assert client.post(f"/v1/partnerships/{ended}/events", json=moved).status_code == 201
    nameless = {k: v for k, v in join(nid).items() if k not in ("owner_unit", "steward")}
    problem(client.post("/v1/networks", json=nameless), 422, "validation_failed")
    assert client.post("/v1/networks", json=join(nid)).status_code == 201
    events = f"/v1/networks/{nid}/events"

    def post(body: dict[str, Any]) -> Any:
        return client.post(events, json=body)

    problem(post({"type": "member_added", "partnership_id": str(uuid.uuid4())}), 404, "unknown_member")
    problem(post({"type": "member_added", "partnership_id": str(ended)}), 409, "member_ended")
    assert post({"type": "member_added", "partnership_id": str(member), "occurred_at": JOINED}).status_code == 201
    contribution = {"type": "member_contribution_logged", "effort_hours": 12, "outcome": "excellent"}
    assert post({**contribution, "partnership_id": str(member)}).status_code == 201
    problem(post({**contribution, "partnership_id": str(ended)}), 409, "not_a_member")
    problem(post({**contribution, "partnership_id": str(member), "outcome": 10}), 422, "validation_failed")
    problem(post({"type": "need_met", "outcome": "met"}), 409, "no_open_activation")
    problem(post({"type": "network_activated", "need": "a bid", "activated_by": "member"}), 422, "activation")
    activated = {
        "type": "network_activated",
        "need": "a bid",
        "activated_by": "member",
        "by_partnership_id": str(member),
    }
    assert post(activated).status_code == 201
    assert post({"type": "need_met", "outcome": "partly", "note": "half funded"}).status_code == 201
    revised = {"type": "best_before_revised", "best_before": "2031-06-30", "reason": "extended by the board"}
    assert post(revised).status_code == 201
    problem(post(revised), 409, "nothing_changed")
    transfer = {"type": "network_ownership_transferred", "owner_unit": "innovation", "steward": "Eino"}
    transfer |= {"reason": "reassignment", "occurred_at": "2024-06-01T09:00:00Z"}
    assert post(transfer).status_code == 201
    problem(post({**transfer, "occurred_at": "2024-07-01T09:00:00Z"}), 409, "nothing_changed")

    state = client.get(f"/v1/networks/{nid}").json()
    assert (state["owner_unit"], state["steward"], state["best_before"]) == ("innovation", "Eino", "2031-06-30")
    assert (state["activity"], state["activation_open"], state["members"]) == ("active", False, [str(member)])
    history = client.get(f"/v1/networks/{nid}/history").json()["events"]
    assert [e["type"] for e in history][-4:] == [
        "network_activated",
        "need_met",
        "best_before_revised",
        "network_ownership_transferred",
    ]
    assert history[-4]["data"]["activated_by"] == "member"

    apply_all(settings, deliver_like_a_bus(published(app), seed=5))
    owners = client.get(f"/v1/networks/{nid}/owners").json()
    assert [(o["owner_unit"], o["steward"], o["reason"]) for o in owners["owners"]] == [
        ("research", "Aino", "joined"),
        ("innovation", "Eino", "reassignment"),
    ]
    then = client.get(f"/v1/networks/{nid}/owners", params={"at": "2024-03-01T00:00:00Z"}).json()
    assert (then["network_id"], then["owner"]["steward"]) == (str(nid), "Aino")
    known = client.get(
        f"/v1/networks/{nid}/owners", params={"at": "2024-09-01T00:00:00Z", "known_at": "2024-01-02T00:00:00Z"}
    ).json()
    assert known["owner"] is None  # nothing had been recorded by then (recorded today)
    assert client.get(f"/v1/networks/{uuid.uuid4()}/owners").status_code == 404
    # The partnership's networks: now, and before it was added.
    mine = client.get(f"/v1/partnerships/{member}/networks").json()
    assert [(n["network_id"], n["name"], n["member_since"]) for n in mine["networks"]] == [
        (str(nid), "Nordic data forum", "2024-01-01T09:00:00+00:00")
    ]
    before = client.get(f"/v1/partnerships/{member}/networks", params={"as_of": "2023-06-01T00:00:00Z"}).json()
    assert before["networks"] == [] and before["as_of"].startswith("2023-06-01")
    assert client.get(f"/v1/partnerships/{ended}/networks").json()["networks"] == []
    assert client.get(f"/v1/partnerships/{uuid.uuid4()}/networks").status_code == 404
    assert client.get(f"/v1/partnerships/{member}").json()["id"] == str(member)  # no route taken from it
    # The plan sees the members' contribution and the need met.
    plan = client.get("/v1/projections/networks", headers={"Authorization": dashboard_token(settings)}).json()
    (health,) = plan["networks"]
    assert (health["members_effort_hours"], health["last_need_outcome"]) == (12.0, "partly")


def dashboard_token(settings: Settings) -> str:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return "Bearer " + issue_token(conn, settings.db_schema, "board", ["dashboards:read"])


def test_over_kafka_refusals_are_dead_lettered_and_the_rest_published(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    pid, nid = uuid.uuid4(), uuid.uuid4()
    # A member must be in before it is named: Kafka keeps order only within a partition.
    produce(settings, [command(opened(pid))])
    running.until(lambda: running.ingest.recorded >= 1)
    member = {"partnership_id": str(pid)}
    sent = [
        command(join(nid)),
        command(on(nid, "member_added", **member)),
        command(on(nid, "member_added", partnership_id=str(uuid.uuid4()))),  # unknown
        command(on(nid, "member_contribution_logged", **member, effort_hours=3, outcome="poor")),
        command(on(nid, "network_activated", need="a call", activated_by="member", by_partnership_id=str(pid))),
        command(on(nid, "need_met", outcome="met")),
        command(on(nid, "need_met", outcome="met")),  # none open any more
        command(on(nid, "best_before_revised", best_before=None, reason="a standing network now")),
        command(on(nid, "network_ownership_transferred", owner_unit="sales", steward="Eino", reason="other")),
        command({k: v for k, v in join(uuid.uuid4()).items() if k != "steward"}),  # no steward
    ]
    # Keyed by the network they are for (the helper would take the partnership's id).
    produce(settings, [(str(nid).encode(), value) for _, value in sent])
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= 1 + len(sent))
    assert (running.ingest.recorded, running.ingest.dead_lettered) == (8, 3)
    dead = consume(settings, settings.dlq_topic, 3)
    assert sorted(header(r, "reason") for r in dead) == ["invalid_command", "no_open_activation", "unknown_member"]
    count = publish_all(app, settings)
    events = [json.loads(r.value) for r in consume(settings, settings.events_topic, count)]
    by_type = {e["type"]: e["data"] for e in events if e["aggregate_id"] == str(nid)}
    assert by_type["network_joined"]["owner_unit"] == "research" and by_type["network_joined"]["steward"] == "Aino"
    assert by_type["member_contribution_logged"] == {"partnership_id": str(pid), "effort_hours": 3.0, "outcome": "poor"}
    assert by_type["network_activated"]["activated_by"] == "member"
    assert by_type["need_met"] == {"outcome": "met", "note": None}
    assert by_type["best_before_revised"] == {"best_before": None, "reason": "a standing network now"}
    assert by_type["network_ownership_transferred"]["steward"] == "Eino"
