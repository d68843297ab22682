"""Retractions, corrections and merges at both doors, against real PostgreSQL and a real
broker: recorded over HTTP and Kafka, refused with stable codes (problem+json; the
dead-letter topic with the reason), published as events of their own."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from services.application import Verkosto
from services.settings import Settings
from tests.integration.test_organisation import problem
from tests.kafka_helpers import RunningIngest, command, consume, header, opened, produce, publish_all


def contact(pid: uuid.UUID) -> dict[str, Any]:
    return {"type": "contact_logged", "partnership_id": str(pid), "channel": "call", "direction": "inbound",
            "participants": ["Aino"]}  # fmt: skip


def test_over_http_with_problems_for_what_cannot_be_done(client: TestClient) -> None:
    pid, survivor = uuid.uuid4(), uuid.uuid4()
    for body in (opened(pid), opened(survivor)):
        assert client.post("/v1/partnerships", json=body).status_code == 201
    assert client.post(f"/v1/partnerships/{pid}/events", json=contact(pid)).status_code == 201
    events = f"/v1/partnerships/{pid}/events"
    corrected = client.post(events, json={"type": "event_corrected", "event_id": f"{pid}:2",
                                          "changes": {"channel": "meeting"}, "reason": "it was a meeting"})  # fmt: skip
    assert corrected.status_code == 201, corrected.text
    problem(client.post(events, json={"type": "event_retracted", "event_id": f"{pid}:9", "reason": "x"}),
            404, "unknown_event")  # fmt: skip
    problem(client.post(events, json={"type": "event_retracted", "event_id": f"{pid}:1", "reason": "x"}),
            409, "not_correctable")  # fmt: skip
    problem(client.post(events, json={"type": "event_corrected", "event_id": f"{pid}:2", "reason": "x",
                                      "changes": {"strength": 3}}), 409, "not_correctable")  # fmt: skip
    bad = client.post(events, json={"type": "event_retracted", "event_id": "yesterday", "reason": "x"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")

    merged = client.post(events, json={"type": "partnership_merged", "survivor_id": str(survivor),
                                       "reason": "the same partner"})  # fmt: skip
    assert merged.status_code == 201, merged.text
    problem(client.post(events, json=contact(pid)), 409, "aggregate_ended")
    survivor_history = client.get(f"/v1/partnerships/{survivor}/history").json()["events"]
    assert survivor_history[-1]["type"] == "partnership_absorbed"
    absorbed = client.get(f"/v1/partnerships/{pid}/history").json()["events"]
    assert absorbed[2]["actor"] == "integrator" and absorbed[2]["data"]["reason"] == "it was a meeting"
    assert [e["type"] for e in absorbed] == ["partnership_opened", "contact_logged", "event_corrected",
                                          "partnership_merged"]  # fmt: skip


def test_over_kafka_refusals_are_dead_lettered_and_the_rest_published(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    pid = uuid.uuid4()
    produce(
        settings,
        [
            command(opened(pid)),
            command(contact(pid)),
            command(
                {
                    "type": "event_retracted",
                    "partnership_id": str(pid),
                    "event_id": f"{pid}:2",
                    "reason": "wrong partner",
                }
            ),  # fmt: skip
            command(
                {"type": "event_retracted", "partnership_id": str(pid), "event_id": f"{pid}:2", "reason": "again"}
            ),  # fmt: skip
            command(
                {"type": "event_retracted", "partnership_id": str(pid), "event_id": f"{pid}:1", "reason": "never"}
            ),  # fmt: skip
        ],
    )
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= 5)
    assert (running.ingest.recorded, running.ingest.dead_lettered) == (3, 2)
    dead = consume(settings, settings.dlq_topic, 2)
    assert sorted(header(r, "reason") for r in dead) == ["already_retracted", "not_correctable"]
    count = publish_all(app, settings)
    published = [json.loads(r.value) for r in consume(settings, settings.events_topic, count)]
    (retraction,) = [e for e in published if e["type"] == "event_retracted"]
    assert retraction["data"]["event_id"] == f"{pid}:2" and retraction["data"]["retracted_type"] == "contact_logged"
    assert retraction["data"]["reason"] == "wrong partner"
