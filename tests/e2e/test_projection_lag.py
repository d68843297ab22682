"""End to end: one stalled projector shows as lag on its partitions, and `verkosto status`
fails until it resumes, even while another projector keeps the other partitions current."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from tests.e2e.system import System, run_system

PARTNER = {"name": "Tampere Works Oy", "kind": "organisation", "roles": ["customer"]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from run_system(tmp_path_factory, "lag")


def scrape(system: System) -> dict[str, float]:
    samples = {}
    for line in system.http.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def projection_lag(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("verkosto_projection_lag_events{"))


def open_partnerships(system: System, count: int) -> None:
    for _ in range(count):
        response = system.post("/v1/partnerships", {"partner": PARTNER, "owner_unit": "ops", "steward": "sam"})
        assert response.status_code == 201, response.text


def stable_members(system: System) -> int:
    """Members of the projector group once it is stable (0 while it rebalances). Tansu
    does not report the members' assignments, but faust spreads three partitions over
    two members, so each of two holds at least one."""
    admin = KafkaAdminClient(bootstrap_servers=system.endpoints["kafka_bootstrap"])
    admin._process_acl_operations = lambda described: described  # Tansu reports ACL codes kafka-python refuses
    try:
        group = admin.describe_groups([system.env["VERKOSTO_PROJECTOR_GROUP"]])[system.env["VERKOSTO_PROJECTOR_GROUP"]]
        return len(group["members"]) if group["group_state"] == "Stable" else 0
    finally:
        admin.close()


def start_projector(system: System, log: Path) -> subprocess.Popen[bytes]:
    """A second projector in the same group, as an operator would add one."""
    env = {
        **system.env,
        "VERKOSTO_DATABASE_URL": system.endpoints["database_url"],
        "VERKOSTO_KAFKA_BOOTSTRAP": system.endpoints["kafka_bootstrap"],
        "VERKOSTO_DATA_DIR": str(log.parent),  # its own faust data directory
    }
    env.pop("VERKOSTO_PARENT_PID", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "projector"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def partly_stalled(system: System) -> dict[str, float] | None:
    """A scrape in which the stalled member's partitions lag while the other member's are
    current: the furthest position applied may be the newest event's, yet lag shows."""
    samples = scrape(system)
    trust = [
        v
        for k, v in samples.items()
        if k.startswith("verkosto_projection_partition_lag_events{") and 'projection="trust"' in k
    ]
    return samples if trust and projection_lag(samples) > 0 and max(trust) > 0 and min(trust) == 0 else None


def test_a_stalled_projector_shows_as_lag_until_it_resumes(system: System, tmp_path: Path) -> None:
    second = start_projector(system, tmp_path / "projector-2.log")
    try:
        wait_until(lambda: stable_members(system) == 2, 40, "the second projector never joined the group")
        open_partnerships(system, 3)
        wait_until(lambda: system.cli("status").returncode == 0, 20, "never caught up with two projectors")

        os.kill(second.pid, signal.SIGSTOP)  # stalled, not gone: the group still counts it a member
        try:
            stopped = time.monotonic()
            open_partnerships(system, 24)  # keyed by 24 new ids: every partition gets some
            samples = wait_until(lambda: partly_stalled(system), 6, "no projection lag while a projector is stalled")
            assert samples['verkosto_health_up{check="projection:trust"}'] == 1
            status = system.cli("status")
            # Within the group's session timeout (10 s) its partitions are still its own.
            assert time.monotonic() - stopped < 10
            assert status.returncode == 3, status.stdout + status.stderr
            assert "partitions" in status.stdout, status.stdout  # which partitions are behind
        finally:
            os.kill(second.pid, signal.SIGCONT)

        wait_until(lambda: projection_lag(scrape(system)) == 0, 40, "lag did not return to 0")
        status = system.cli("status")
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        second.terminate()
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
    samples = scrape(system)
    assert all(v == 1 for k, v in samples.items() if k.startswith("verkosto_health_up"))
    assert all(v == 0 for k, v in samples.items() if k.startswith("verkosto_projection_parked_events"))
