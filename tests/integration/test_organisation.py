"""The organisation's criteria catalogue and operating model over HTTP and over Kafka,
against real PostgreSQL and a real broker: defined as events, read back by valid time,
and evaluations scored against the catalogue (refusals with stable codes at both doors)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from domain.operating_model import DEFAULT_MODEL
from domain.organisation import ORGANISATION_ID, Organisation
from domain.partnership import Partnership
from services.application import Verkosto
from services.settings import Settings
from tests.kafka_helpers import RunningIngest, command, consume, header, opened, produce, publish_all

CRITERIA = [
    {"name": "strategic_fit", "description": "How well their aims match ours"},
    {"name": "reach", "description": "Whom they give us access to"},
    {"name": "reliability", "description": "Whether they deliver what they promise"},
]
DEFINE = {"type": "criteria_defined", "criteria": CRITERIA, "occurred_at": "2024-01-01T00:00:00Z"}
SCORED = {"strategic_fit": 10.0, "reach": 1.0}
SKIPPED = {"reliability": "no joint work yet"}
MODEL = [{**cell.model_dump(mode="json"), "cadence_days": 60} for cell in DEFAULT_MODEL.cells]


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_criteria_and_model_over_http_and_evaluations_scored_against_them(client: TestClient) -> None:
    assert client.get("/v1/organisation/criteria").json()["catalogue"] is None
    default = client.get("/v1/organisation/operating-model").json()
    assert (default["version"], default["effective_from"], len(default["cells"])) == (0, None, 16)

    defined = client.post("/v1/organisation/events", json=DEFINE)
    assert defined.status_code == 201, defined.text
    assert (defined.json()["id"], defined.json()["version"]) == (str(ORGANISATION_ID), 2)  # 1: the founding
    problem(client.post("/v1/organisation/events", json=DEFINE), 409, "nothing_changed")
    eight = [{"name": f"c{i}", "description": "d"} for i in range(8)]
    problem(client.post("/v1/organisation/events", json={**DEFINE, "criteria": eight}), 409, "too_many_criteria")
    problem(client.post("/v1/organisation/events", json={"type": "organisation_founded"}), 422, "validation_failed")

    catalogue = client.get("/v1/organisation/criteria").json()["catalogue"]
    assert (catalogue["version"], catalogue["criteria"]) == (2, CRITERIA)
    assert catalogue["effective_from"].startswith("2024-01-01T00:00:00")
    assert client.get("/v1/organisation/criteria", params={"as_of": "2023-12-31T23:59:59Z"}).json()["catalogue"] is None

    pid = uuid.uuid4()
    body = {**opened(pid), "occurred_at": "2024-02-01T00:00:00Z"}
    assert client.post("/v1/partnerships", json=body).status_code == 201
    events = f"/v1/partnerships/{pid}/events"
    unknown = client.post(events, json={"type": "evaluated", "factors": {**SCORED, "vibes": 10.0}, "skipped": SKIPPED})
    refused = problem(unknown, 409, "unknown_criterion")
    assert refused["unknown"] == ["vibes"] and refused["catalogue"] == [c["name"] for c in CRITERIA]
    problem(client.post(events, json={"type": "evaluated", "factors": SCORED}), 409, "criteria_not_scored")
    scored = client.post(events, json={"type": "evaluated", "factors": SCORED, "skipped": SKIPPED})
    assert scored.status_code == 201, scored.text

    history = client.get(f"/v1/partnerships/{pid}/history").json()["events"]
    (evaluated,) = [e for e in history if e["type"] == "evaluated"]
    assert evaluated["data"]["catalogue_version"] == 2
    assert evaluated["data"]["skipped"] == [{"criterion": "reliability", "reason": "no joint work yet"}]

    model = {"type": "operating_model_defined", "cells": MODEL, "occurred_at": "2025-01-01T00:00:00Z"}
    assert client.post("/v1/organisation/events", json=model).json()["version"] == 3
    problem(client.post("/v1/organisation/events", json={**model, "cells": MODEL[:15]}), 422, "validation_failed")
    now = client.get("/v1/organisation/operating-model").json()
    assert (now["version"], {c["cadence_days"] for c in now["cells"]}) == (3, {60})
    assert now["effective_from"].startswith("2025-01-01")
    before = client.get("/v1/organisation/operating-model", params={"as_of": "2024-06-01T00:00:00Z"}).json()
    assert before["version"] == 0 and before["cells"] == [c.model_dump(mode="json") for c in DEFAULT_MODEL.cells]


def evaluated(pid: uuid.UUID, factors: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"type": "evaluated", "partnership_id": str(pid), "factors": factors, **extra}


def test_criteria_over_kafka_and_refused_evaluations_are_dead_lettered_with_their_code(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    # An organisation command needs no id, and its message key may be anything (none here).
    key, value = command(DEFINE)
    assert key is None
    produce(settings, [(key, value), (b"anything", command({"type": "operating_model_defined", "cells": MODEL})[1])])
    running.until(lambda: running.ingest.recorded >= 2)
    # Sent once the catalogue is recorded: messages on different keys may land on different
    # partitions, and Kafka orders only within one.
    pid = uuid.uuid4()
    produce(
        settings,
        [
            command(opened(pid)),
            command(evaluated(pid, {**SCORED, "vibes": 10.0}, skipped=SKIPPED)),
            command(evaluated(pid, SCORED, skipped={"reliability": " "})),
            command(evaluated(pid, SCORED, skipped=SKIPPED)),
        ],
    )
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= 6)
    assert (running.ingest.recorded, running.ingest.dead_lettered) == (4, 2)

    dead = consume(settings, settings.dlq_topic, 2)
    assert sorted(header(r, "reason") for r in dead) == ["criteria_not_scored", "unknown_criterion"]
    (unknown,) = [r for r in dead if header(r, "reason") == "unknown_criterion"]
    assert "vibes" in header(unknown, "detail") and unknown.key == str(pid).encode()

    # The two organisation commands had different keys, so either may have come first.
    version = app.get(ORGANISATION_ID, Organisation).catalogue_version
    assert version in (2, 3)
    last = app.domain_events(pid)[-1]
    assert isinstance(last, Partnership.Evaluated) and last.catalogue_version == version
    count = publish_all(app, settings)
    published = [json.loads(r.value) for r in consume(settings, settings.events_topic, count)]
    assert len(published) == count == 5  # founded, criteria, model; opened, evaluated
    organisation = {e["type"]: e["version"] for e in published if e["aggregate_type"] == "organisation"}
    assert organisation["organisation_founded"] == 1 and organisation["criteria_defined"] == version
    assert set(organisation) == {"organisation_founded", "criteria_defined", "operating_model_defined"}
    (scored,) = [e for e in published if e["type"] == "evaluated"]
    assert scored["data"]["catalogue_version"] == version and scored["data"]["factors"] == SCORED
