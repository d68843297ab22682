"""The organisation tests/integration/test_directory.py searches: partnerships and
networks recorded over HTTP, their events relayed through Apache Kafka into every
projection, and the helpers that ask the directory over HTTP again."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from projections.catalog import all_projections
from projections.tracking import Delivered, Tracker
from services.application import Verkosto
from services.auth import issue_token
from services.db import connect
from services.settings import Settings
from tests.kafka_helpers import consume, publish_all

NOW = datetime.now(UTC)  # commands may not take effect in the future; flags are judged now
START = NOW - timedelta(days=400)
ME = "Oona Steward"  # the token's name: `steward=me`
NAMED = [  # name, kind, roles, unit, steward
    ("ACME Oy", "organisation", ["customer"], "research", ME),
    ("Globex Corporation", "organisation", ["supplier"], "sales", "bob"),
    ("Nokia Oy", "organisation", ["customer", "funder"], "sales", "OONA  steward"),  # ME, typed otherwise
    ("Äänekoski Works", "organisation", ["researcher"], "research", "carol"),
    ("Ville Mäkitalo", "person", ["user"], "research", "bob"),
    ("Tampere University", "group", ["researcher"], "operations", ME),
]
WORDS = ["Kivi", "Lumi", "Tuuli", "Meri", "Kallio", "Metsä", "Joki", "Sade", "Routa", "Halla", "Usva", "Kaste"]
ROLES = ["customer", "funder", "user", "supplier"]
UNITS = ["research", "sales", "operations"]
STEWARDS = [ME, "bob", "carol"]


def at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat()


@dataclass
class World:
    settings: Settings
    app: Verkosto
    client: TestClient
    ids: dict[str, str]  # partner or network name: id


def post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def event(client: TestClient, pid: str, kind: str, days: float, **data: Any) -> None:
    post(client, f"/v1/partnerships/{pid}/events", {"type": kind, "occurred_at": at(days), **data})


def open_partnership(
    client: TestClient, name: str, kind: str, roles: list[str], unit: str, steward: str, day: float
) -> str:
    partner = {"name": name, "kind": kind, "roles": roles}
    body = {"partner": partner, "owner_unit": unit, "steward": steward, "occurred_at": at(day)}
    return str(post(client, "/v1/partnerships", body)["id"])


def build(client: TestClient) -> dict[str, str]:
    ids: dict[str, str] = {}
    for n, (name, kind, roles, unit, steward) in enumerate(NAMED):
        ids[name] = open_partnership(client, name, kind, roles, unit, steward, n / 24)
    acme, globex, nokia = ids["ACME Oy"], ids["Globex Corporation"], ids["Nokia Oy"]
    event(client, acme, "segmented", 50, now="+", future="++")
    event(client, acme, "segmented", 30, now="--", future="-")  # back-dated: the later one holds
    event(client, globex, "ownership_transferred", 200, owner_unit="sales", steward="carol", reason="reassignment")
    event(client, globex, "ownership_transferred", 100, owner_unit="sales", steward=ME, reason="reassignment")
    event(client, nokia, "roles_changed", 40, roles=["funder"])
    for i in range(24):
        name = f"{WORDS[i % 12]} {'Oy' if i < 12 else 'Ab'}"
        pid = ids[name] = open_partnership(
            client, name, "organisation", [ROLES[i % 4]], UNITS[i % 3], STEWARDS[(i // 2) % 3], 1 + i / 24
        )
        if i % 4 < 2:
            event(client, pid, "segmented", 20, now=["+", "-"][i % 4], future="++")
        if i % 5 in (0, 1):
            event(client, pid, "stage_changed", 60, stage="prioritise", reason="fit")
        if i % 5 == 1:
            event(client, pid, "stage_changed", 70, stage="maintain", reason="fit")
        ended = i % 7 == 3 and i % 5 > 1
        if ended:
            for days, stage in ((60, "prioritise"), (70, "wind_down"), (80, "ended")):
                event(client, pid, "stage_changed", days, stage=stage, reason="fit")
        if i % 3 == 0 and not ended:  # in touch lately: not under-served now
            event(client, pid, "contact_logged", 399, channel="call", direction="inbound", participants=["x"])
    networks = [
        ("Nordic Health Network", "leader", "active", ["shared_goal"]),
        ("Baltic Data Forum", "member", "passive", ["information_sharing"]),
        ("Old Forum", "observer", "passive", ["influence"]),
        *((f"{word} Verkosto", "member", "active", ["competence"]) for word in WORDS[:6]),
    ]
    for n, (name, role, activity, purposes) in enumerate(networks):
        body = {"name": name, "purposes": purposes, "role": role, "activity": activity, "occurred_at": at(n)}
        body |= {"owner_unit": "research", "steward": "Aino"}
        ids[name] = str(post(client, "/v1/networks", body)["id"])
    post(client, f"/v1/networks/{ids['Old Forum']}/events", {"type": "network_left", "reason": "other"})
    post(client, f"/v1/networks/{ids['Baltic Data Forum']}/events", {"type": "network_activated", "need": "data"})
    return ids


def project(app: Verkosto, settings: Settings) -> None:
    """Relays everything recorded to Kafka and applies the events topic, read from the
    start, to every projection (what applied before is skipped by the guard)."""
    publish_all(app, settings)
    expected = len(app.recorder.select_notifications(start=1, limit=100_000))
    records = consume(settings, settings.events_topic, expected, timeout_s=60)
    assert len(records) >= expected
    batch = [Delivered(r.partition, r.offset, json.loads(r.value)) for r in records]

    async def apply() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            await Tracker(settings.db_schema).apply(conn, all_projections(), batch)

    asyncio.run(apply())


def clients(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Headers of a writer and reader named ME, and of a reader only."""
    with connect(settings.require_database_url(), autocommit=True) as conn:
        both = issue_token(conn, settings.db_schema, ME, ["events:write", "dashboards:read"])
        reader = issue_token(conn, settings.db_schema, "viewer", ["dashboards:read"])
    return {"Authorization": f"Bearer {both}"}, {"Authorization": f"Bearer {reader}"}


def listing(client: TestClient, path: str = "/v1/partnerships", **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["count"] == len(body["items"]) and body["projection"] == "directory"
    return body


def names(client: TestClient, q: str, path: str = "/v1/partnerships") -> list[str]:
    key = "partner_name" if path == "/v1/partnerships" else "name"
    return [item[key] for item in listing(client, path, q=q, limit=200)["items"]]


def follow(client: TestClient, path: str = "/v1/partnerships", **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(500):
        body = listing(client, path, **params, **({"cursor": cursor} if cursor else {}))
        assert body["count"] == params["limit"] or body["next_cursor"] is None
        rows += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("the cursor never reached the last page")


def similar(client: TestClient, name: str, **headers: str) -> list[str]:
    """The ids ``GET /v1/partnerships/similar`` answers for ``name``."""
    response = client.get("/v1/partnerships/similar", params={"name": name}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]
