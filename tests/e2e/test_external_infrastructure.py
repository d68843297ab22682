"""The README's "Pointing at real PostgreSQL and Kafka", as written: PostgreSQL and Apache
Kafka run on their own (started here, outside Verkosto), VERKOSTO_DATABASE_URL and
VERKOSTO_KAFKA_BOOTSTRAP name them, `verkosto migrate` and `verkosto topics` prepare them,
and `verkosto up` starts only Verkosto's own components: no embedded server at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from kafka import KafkaProducer

from services.embedded import EmbeddedPostgres
from tests.e2e.system import System, unique_names

pytestmark = pytest.mark.e2e
PARTNER = {"name": "Tampere Works", "kind": "organisation", "roles": ["customer"]}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A PostgreSQL and an Apache Kafka of their own, as an operator would run them."""
    if shutil.which("java") is None:
        pytest.skip("needs Java for Apache Kafka (`make kafka`)")
    from services.kafka_broker import ApacheKafka

    root = tmp_path_factory.mktemp("external")
    postgres = EmbeddedPostgres(root / "pg")
    kafka = ApacheKafka(root / "kafka")  # from this (the main) thread, which outlives it
    try:
        database_url = postgres.start()
        bootstrap = kafka.start()
        yield {"VERKOSTO_DATABASE_URL": database_url, "VERKOSTO_KAFKA_BOOTSTRAP": bootstrap}
    finally:
        kafka.stop()
        postgres.stop()


def verkosto(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_verkosto_up_on_external_postgres_and_kafka_starts_nothing_embedded(
    servers: dict[str, str], tmp_path: Path
) -> None:
    names = {**unique_names(), **servers}  # the README's two variables, and our own schema and topics
    env = {**os.environ, **names}
    env.pop("VERKOSTO_EMBEDDED_BROKER", None)
    for step in (("migrate",), ("topics",)):
        done = verkosto(env, "--data-dir", str(tmp_path / "data"), *step)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "created" in done.stdout and names["VERKOSTO_COMMANDS_TOPIC"] in done.stdout

    system = System(tmp_path / "data", names)
    system.start()
    try:
        assert system.endpoints["embedded"] == {"postgres": False, "kafka": False}
        assert system.endpoints["broker"] == "external" and "warning" not in system.endpoints
        assert system.endpoints["kafka_bootstrap"] == servers["VERKOSTO_KAFKA_BOOTSTRAP"]
        assert system.endpoints["database_url"] == servers["VERKOSTO_DATABASE_URL"]
        assert not (system.data_dir / "pg").exists() and not (system.data_dir / "kafka").exists()
        # The supervisor's family is its four components and nothing else.
        family = system.family()
        commands = []
        for process in family:
            try:
                commands.append(process.cmdline())
            except psutil.Error:
                continue
        assert not [c for c in commands if any(s in " ".join(c) for s in ("java", "postgres", "tansu"))], commands
        components = sorted(c[-1] for c in commands if c[-2:-1] == ["run"])
        assert components == ["api", "ingest", "projector", "relay"], commands

        # One command over HTTP ...
        response = system.post("/v1/partnerships", {"partner": PARTNER, "owner_unit": "research", "steward": "alice"})
        assert response.status_code == 201, response.text
        pid = str(response.json()["id"])
        # ... and one over Kafka, to the external broker.
        command_id = f"external-{uuid.uuid4().hex[:8]}"
        body = {
            "type": "contact_logged",
            "partnership_id": pid,
            "channel": "email",
            "direction": "outbound",
            "participants": ["alice"],
            "command_id": command_id,
            "actor": "crm-sync",
        }
        producer = KafkaProducer(bootstrap_servers=servers["VERKOSTO_KAFKA_BOOTSTRAP"], acks="all")
        try:
            producer.send(names["VERKOSTO_COMMANDS_TOPIC"], key=pid.encode(), value=json.dumps(body).encode()).get(30)
        finally:
            producer.close(timeout=5)
        deadline = time.monotonic() + 90
        while True:
            events = system.get(f"/v1/partnerships/{pid}/history").json()["events"]
            if any(e.get("command_id") == command_id for e in events):
                break
            assert time.monotonic() < deadline, "the Kafka command was not recorded"
            time.sleep(0.5)
        assert [(e["type"], e["source"]) for e in events] == [
            ("partnership_opened", "api"),
            ("contact_logged", "kafka"),
        ]
    finally:
        assert system.interrupt() == 0
