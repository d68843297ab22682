"""End to end: the whole system from `verkosto up`, driven through HTTP and Kafka.

Tests in this module share one running system and run in file order; the last one
presses Ctrl-C and starts it again on the same data.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.e2e.system import System, run_system

PARTNER = {"name": "Kuopio University Hospital", "kind": "organisation", "roles": ["customer", "researcher"]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from run_system(tmp_path_factory, "verkosto")


def open_partnership(system: System, **extra: Any) -> dict[str, Any]:
    response = system.post(
        "/v1/partnerships", {"partner": PARTNER, "owner_unit": "research", "steward": "alice", **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["title"]
    return body


def test_health_readiness_and_openapi(system: System) -> None:
    assert system.http.get("/healthz").json() == {"status": "ok"}
    ready = system.http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["database"]["ok"] and ready["checks"]["broker"]["ok"]
    paths = system.http.get("/openapi.json").json()["paths"]
    assert {"/v1/partnerships", "/v1/partnerships/{partnership_id}/owners", "/v1/networks"} <= set(paths)


def test_tokens_are_required_and_scoped(system: System) -> None:
    problem(system.http.get(f"/v1/partnerships/{uuid.uuid4()}"), 401, "unauthenticated")
    problem(system.get(f"/v1/partnerships/{uuid.uuid4()}", token="vk_not-a-token"), 401, "invalid_token")
    issued = system.cli("token", "issue", "--name", "auditor-anna", "--scope", "history:read")
    assert issued.returncode == 0, issued.stderr
    reader = issued.stdout.strip()
    forbidden = system.post("/v1/partnerships", {"partner": PARTNER, "owner_unit": "u", "steward": "s"}, token=reader)
    assert problem(forbidden, 403, "insufficient_scope")["scope"] == "events:write"
    created = open_partnership(system)
    assert system.get(f"/v1/partnerships/{created['id']}", token=reader).status_code == 200


def test_a_partnership_over_http(system: System) -> None:
    created = open_partnership(system)
    pid = created["id"]
    for body in (
        {
            "type": "contact_logged",
            "channel": "meeting",
            "direction": "outbound",
            "participants": ["alice"],
            "effort_minutes": 60,
        },
        {"type": "interest_signalled", "direction": "inbound", "strength": 3, "on_behalf_of": "bea"},
        {"type": "segmented", "now": "+", "future": "++"},
        {"type": "stage_changed", "stage": "prioritise", "reason": "annual_review"},
    ):
        response = system.post(f"/v1/partnerships/{pid}/events", body)
        assert response.status_code == 201, response.text
    state = system.get(f"/v1/partnerships/{pid}").json()
    assert (state["version"], state["stage"], state["segment"], state["contacts"]) == (
        5,
        "prioritise",
        {"now": "+", "future": "++"},
        1,
    )
    history = system.get(f"/v1/partnerships/{pid}/history").json()["events"]
    assert [e["type"] for e in history] == [
        "partnership_opened",
        "contact_logged",
        "interest_signalled",
        "segmented",
        "stage_changed",
    ]
    assert {e["actor"] for e in history} == {"developer"} and history[2]["on_behalf_of"] == "bea"
    assert all(e["source"] == "api" for e in history)


def test_a_duplicate_command_id_records_once(system: System) -> None:
    first = open_partnership(system, command_id="crm-import-77")
    again = system.post(
        "/v1/partnerships",
        {"partner": PARTNER, "owner_unit": "research", "steward": "alice", "command_id": "crm-import-77"},
    )
    assert again.status_code == 200
    assert {k: again.json()[k] for k in ("id", "version", "position")} == {
        k: first[k] for k in ("id", "version", "position")
    }
    assert again.json()["duplicate"] is True
    assert len(system.get(f"/v1/partnerships/{first['id']}/history").json()["events"]) == 1


def test_errors_are_problem_details(system: System) -> None:
    pid = open_partnership(system)["id"]
    contact = {"type": "contact_logged", "channel": "call", "direction": "inbound", "participants": ["alice"]}
    assert system.post(f"/v1/partnerships/{pid}/events", {**contact, "expected_version": 1}).status_code == 201
    conflict = problem(
        system.post(f"/v1/partnerships/{pid}/events", {**contact, "expected_version": 1}), 409, "version_conflict"
    )
    assert conflict["actual_version"] == 2
    skip = problem(
        system.post(f"/v1/partnerships/{pid}/events", {"type": "stage_changed", "stage": "manage", "reason": "eager"}),
        409,
        "illegal_stage_transition",
    )
    assert "prioritise" in skip["detail"]
    factors = {"type": "evaluated", "factors": {"relevance": 5}}
    problem(system.post(f"/v1/partnerships/{pid}/events", factors), 409, "invalid_outcome_factor")
    invalid = problem(
        system.post(f"/v1/partnerships/{pid}/events", {**contact, "channel": "pigeon"}), 422, "validation_failed"
    )
    assert invalid["field"].endswith("channel")
    naive = problem(
        system.post(f"/v1/partnerships/{pid}/events", {**contact, "occurred_at": "2024-05-01T10:00:00"}),
        422,
        "validation_failed",
    )
    assert "occurred_at" in naive["field"]
    nan = problem(
        system.http.post(
            f"/v1/partnerships/{pid}/events",
            content=b'{"type": "evaluated", "factors": {"fit": NaN}}',
            headers={**system.auth(), "Content-Type": "application/json"},
        ),
        422,
        "validation_failed",
    )
    assert "factors" in nan["field"]
    far = problem(system.get(f"/v1/partnerships/{pid}/owners", at="0001-01-01T00:00:00Z"), 422, "validation_failed")
    assert far["field"].endswith("at")
    problem(system.get(f"/v1/partnerships/{uuid.uuid4()}"), 404, "not_found")
    problem(system.post(f"/v1/partnerships/{uuid.uuid4()}/events", contact), 404, "not_found")


def test_owners_at_answers_before_and_after_a_back_dated_transfer(system: System) -> None:
    pid = open_partnership(system, occurred_at="2022-01-10T09:00:00+02:00")["id"]

    def transfer(steward: str, effective: str) -> int:
        response = system.post(
            f"/v1/partnerships/{pid}/events",
            {
                "type": "ownership_transferred",
                "owner_unit": "innovation",
                "steward": steward,
                "reason": "steward_left",
                "occurred_at": effective,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()["position"]

    transfer("bob", "2023-06-01T00:00:00Z")
    position = transfer("carol", "2022-09-01T00:00:00Z")  # back-dated: recorded after bob's

    def owner(at: str) -> str | None:
        body = system.get(f"/v1/partnerships/{pid}/owners", at=at, min_position=position, wait_ms=10_000).json()
        assert body["caught_up"], body
        return body["owner"]["steward"] if body["owner"] else None

    assert owner("2021-12-31T00:00:00Z") is None
    assert owner("2022-05-01T00:00:00Z") == "alice"
    assert owner("2022-10-01T00:00:00Z") == "carol"
    assert owner("2023-07-01T00:00:00Z") == "bob"
    timeline = system.get(f"/v1/partnerships/{pid}/owners").json()["owners"]
    assert [t["steward"] for t in timeline] == ["alice", "carol", "bob"]

    # Both axes: before carol's transfer was recorded, nobody knew she had taken over.
    history = system.get(f"/v1/partnerships/{pid}/history").json()["events"]
    known_before = history[1]["recorded_at"]  # bob's transfer, recorded before carol's
    body = system.get(f"/v1/partnerships/{pid}/owners", at="2022-10-01T00:00:00Z", known_at=known_before).json()
    assert body["owner"]["steward"] == "alice"
    then = system.get(f"/v1/partnerships/{pid}", as_of="2022-10-01T00:00:00Z", known_at=known_before).json()
    now = system.get(f"/v1/partnerships/{pid}", as_of="2022-10-01T00:00:00Z").json()
    assert (then["steward"], now["steward"]) == ("alice", "carol")
    assert now["owner_unit"] == "innovation" and then["events_known"] == 1
    problem(system.get(f"/v1/partnerships/{pid}", as_of="2021-01-01T00:00:00Z"), 404, "not_found")
    assert timeline[1]["valid_until"].startswith("2023-06-01")


def test_networks_over_http(system: System) -> None:
    member = open_partnership(system)["id"]
    created = system.post(
        "/v1/networks",
        {
            "name": "Northern health data forum",
            "purposes": ["information_sharing", "influence"],
            "role": "member",
            "activity": "passive",
            "best_before": "2027-12-31",
            "owner_unit": "research",
            "steward": "alice",
        },
    )
    assert created.status_code == 201, created.text
    nid = created.json()["id"]
    for body in (
        {"type": "member_added", "partnership_id": member},
        {"type": "network_activated", "need": "joint funding bid"},
        {"type": "network_contribution_logged", "our_effort_hours": 16},
    ):
        assert system.post(f"/v1/networks/{nid}/events", body).status_code == 201
    state = system.get(f"/v1/networks/{nid}").json()
    assert (state["activity"], state["members"], state["effort_hours"]) == ("active", [member], 16.0)
    assert [e["type"] for e in system.get(f"/v1/networks/{nid}/history").json()["events"]] == [
        "network_joined",
        "member_added",
        "network_activated",
        "network_contribution_logged",
    ]


def kafka_send(system: System, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=system.endpoints["kafka_bootstrap"], acks="all")
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def read_topic(system: System, topic: str, predicate: Any, timeout_s: float = 30.0) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=system.endpoints["kafka_bootstrap"], auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic) or {0}
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while not found and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found += [r for r in batch if predicate(r)]
        return found
    finally:
        consumer.close()


def test_kafka_commands_are_recorded_and_malformed_ones_dead_lettered(system: System) -> None:
    names = {
        k.split("VERKOSTO_")[1].lower(): v
        for k, v in system.env.items()
        if k.startswith("VERKOSTO_") and k.endswith("TOPIC")
    }
    pid = str(uuid.uuid4())
    opened = {
        "type": "partnership_opened",
        "partnership_id": pid,
        "partner": PARTNER,
        "owner_unit": "research",
        "steward": "dan",
        "actor": "crm-sync",
        "command_id": f"crm-{pid}",
    }
    contact = {
        "type": "contact_logged",
        "partnership_id": pid,
        "channel": "email",
        "direction": "inbound",
        "participants": ["dan"],
        "actor": "mail-gateway",
    }
    marker = uuid.uuid4().hex
    kafka_send(
        system,
        names["commands_topic"],
        [
            (pid.encode(), json.dumps(opened).encode()),
            (pid.encode(), json.dumps(contact).encode()),
            (b"bad", f"not json {marker}".encode()),
        ],
    )
    deadline = time.monotonic() + 45
    while True:
        response = system.get(f"/v1/partnerships/{pid}/history")
        if response.status_code == 200 and len(response.json()["events"]) == 2:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    events = response.json()["events"]
    assert [(e["actor"], e["source"]) for e in events] == [("crm-sync", "kafka"), ("mail-gateway", "kafka")]
    dead = read_topic(system, names["dlq_topic"], lambda r: marker.encode() in r.value)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["reason"] == "malformed_json"
    assert headers["original_topic"] == names["commands_topic"]
    assert {"original_partition", "original_offset", "detail"} <= set(headers)


def test_events_reach_the_bus_with_their_metadata(system: System) -> None:
    created = open_partnership(system, command_id=f"bus-{uuid.uuid4()}")
    found = read_topic(system, system.env["VERKOSTO_EVENTS_TOPIC"], lambda r: r.key == created["id"].encode())
    assert len(found) == 1
    published = json.loads(found[0].value)
    assert (published["type"], published["position"], published["actor"], published["source"]) == (
        "partnership_opened",
        created["position"],
        "developer",
        "api",
    )


def test_auditors_search_events_and_their_reads_are_recorded(system: System) -> None:
    created = open_partnership(system, command_id=f"audit-{uuid.uuid4()}")
    issued = system.cli("token", "issue", "--name", "auditor-ari", "--scope", "history:read")
    auditor = issued.stdout.strip()
    page = system.get("/v1/audit/events", token=auditor, aggregate_id=created["id"], type="partnership_opened").json()
    assert [e["position"] for e in page["events"]] == [created["position"]]
    assert page["next_cursor"] is None
    paged = system.get("/v1/audit/events", token=auditor, limit=2).json()
    assert len(paged["events"]) == 2 and paged["next_cursor"] == paged["events"][-1]["position"]
    following = system.get("/v1/audit/events", token=auditor, limit=2, after=paged["next_cursor"]).json()
    assert following["events"][0]["position"] > paged["next_cursor"]
    problem(system.get("/v1/audit/reads", token=auditor), 403, "insufficient_scope")
    reads = system.get("/v1/audit/reads", limit=1000).json()["reads"]
    mine = [r for r in reads if r["actor"] == "auditor-ari"]
    assert len(mine) == 3 and mine[0]["query"]["aggregate_id"] == created["id"]


def test_an_admin_erases_a_person_over_http(system: System) -> None:
    created = open_partnership(system)
    moved = system.post(
        f"/v1/partnerships/{created['id']}/events",
        {
            "type": "ownership_transferred",
            "owner_unit": "research",
            "steward": "Eeva Erasable",
            "reason": "reassignment",
        },
    )
    assert moved.status_code == 201
    reader = system.cli("token", "issue", "--name", "reader-rae", "--scope", "history:read").stdout.strip()
    problem(
        system.http.post("/v1/audit/erasures", json={"subject": "person:Eeva Erasable"}, headers=system.auth(reader)),
        403,
        "insufficient_scope",
    )
    problem(system.post("/v1/audit/erasures", {"subject": "somebody"}), 422, "validation_failed")
    erased = system.post("/v1/audit/erasures", {"subject": "person:Eeva Erasable"})
    assert erased.status_code == 200 and "Eeva" not in erased.text
    history = system.get(f"/v1/partnerships/{created['id']}/history").json()["events"]
    assert history[-1]["data"]["steward"] == "[erased]"
    owners = system.get(f"/v1/partnerships/{created['id']}/owners", min_position=moved.json()["position"]).json()
    assert [o["steward"] for o in owners["owners"]] == ["alice", "[erased]"]
    # What is published from now on names them no more, even when a new event does.
    again = system.post(
        f"/v1/partnerships/{created['id']}/events",
        {
            "type": "contact_logged",
            "channel": "call",
            "direction": "inbound",
            "participants": ["Eeva Erasable", "alice"],
        },
    )
    version = again.json()["version"]
    (published,) = read_topic(
        system,
        system.env["VERKOSTO_EVENTS_TOPIC"],
        lambda r: r.key == created["id"].encode() and json.loads(r.value)["version"] == version,
    )
    assert b"Eeva" not in published.value
    assert json.loads(published.value)["data"]["participants"] == ["[erased]", "alice"]


def scrape(system: System) -> dict[str, float]:
    """Prometheus text format to {"name{labels}": value}."""
    samples = {}
    for line in system.http.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def lag(samples: dict[str, float]) -> float:
    return sum(
        v for k, v in samples.items() if k.startswith(("verkosto_relay_lag_events", "verkosto_projection_lag_events"))
    )


def test_metrics_show_lag_rise_under_load_and_return_to_zero(system: System) -> None:
    before = scrape(system)
    pid = str(uuid.uuid4())
    opened = {
        "type": "partnership_opened",
        "partnership_id": pid,
        "partner": PARTNER,
        "owner_unit": "research",
        "steward": "load",
        "actor": "load-test",
    }
    contact = {
        "type": "contact_logged",
        "partnership_id": pid,
        "channel": "email",
        "direction": "inbound",
        "participants": ["load"],
        "actor": "load-test",
    }
    messages = [(pid.encode(), json.dumps(opened).encode())] + [(pid.encode(), json.dumps(contact).encode())] * 4000
    messages.append((b"bad", b"not json"))
    kafka_send(system, system.env["VERKOSTO_COMMANDS_TOPIC"], messages)
    seen_lag, deadline = 0.0, time.monotonic() + 90
    while True:
        samples = scrape(system)
        seen_lag = max(seen_lag, lag(samples))
        accepted = samples.get('verkosto_commands_total{outcome="accepted",reason="",source="kafka"}', 0)
        if (
            accepted >= before.get('verkosto_commands_total{outcome="accepted",reason="",source="kafka"}', 0) + 4001
            and lag(samples) == 0
        ):
            break
        assert time.monotonic() < deadline, samples
        time.sleep(0.05)
    assert seen_lag > 0  # the scrape saw the system behind, then caught up
    assert samples["verkosto_dlq_messages"] >= before.get("verkosto_dlq_messages", 0) + 1
    assert samples["verkosto_events_appended"] >= before["verkosto_events_appended"] + 4001
    assert any(k.startswith("verkosto_http_request_seconds_bucket") and "/v1/partnerships" in k for k in samples)
    status = system.cli("status")
    assert status.returncode == 0 and "projection trust" in status.stdout


def test_ctrl_c_stops_everything_and_keeps_the_data(system: System) -> None:
    created = open_partnership(system, occurred_at="2020-02-02T00:00:00Z")
    pid = created["id"]
    family = system.family()
    assert len(family) >= 4  # api, ingest, relay, projector (and the embedded servers)
    assert system.interrupt() == 0
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (system.data_dir / "endpoints.json").exists()

    system.start()  # same data directory: the history is still there
    assert system.get(f"/v1/partnerships/{pid}").json()["steward"] == "alice"
    # Apache Kafka kept the bus (Tansu would have kept nothing: the relay would refill it).
    body = system.get(
        f"/v1/partnerships/{pid}/owners", at="2021-01-01T00:00:00Z", min_position=created["position"], wait_ms=10_000
    ).json()
    assert body["caught_up"] and body["owner"]["steward"] == "alice"
