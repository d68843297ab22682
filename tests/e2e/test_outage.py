"""Losing the infrastructure under load: loud, short, and recovered without a hand on it.

One running system (`verkosto up` on embedded PostgreSQL and its embedded broker) for the module, in
file order: PostgreSQL killed with SIGKILL under HTTP and Kafka load; every component
stopped with SIGTERM while PostgreSQL hangs; the broker killed; a component started by
hand beside the supervisor's. To hold an outage open long enough to look at it, the test
freezes the supervisor (SIGSTOP) before killing a server and lets it go (SIGCONT)
afterwards; it then notices the dead server and starts it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest
from kafka import KafkaProducer

from tests.e2e.system import System, run_system

pytestmark = pytest.mark.e2e
PARTNER = {"name": "Savonia", "kind": "organisation", "roles": ["researcher"]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if os.environ.get("VERKOSTO_TEST_DATABASE_URL") or os.environ.get("VERKOSTO_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("kills the embedded servers; not run against shared ones")
    yield from run_system(tmp_path_factory, "outage")


# Helpers ---------------------------------------------------------------------------------


def postmaster_pid(system: System) -> int:
    return int((system.data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def postmaster(system: System) -> psutil.Process:
    process = psutil.Process(postmaster_pid(system))
    assert process.name() == "postgres"
    assert process in system.family(), "the postmaster is one of the supervisor's family"
    return process


def component(system: System, name: str) -> psutil.Process:
    for process in system.family():
        try:
            if process.cmdline()[-2:] == ["run", name] and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except psutil.Error:
            continue
    raise AssertionError(f"no running {name}")


def broker(system: System) -> psutil.Process:
    for process in system.family():
        try:
            command = process.cmdline()
            if "tansu" in process.name() or any("tansu" in part for part in command[:1]) or "kafka.Kafka" in command:
                return process
        except psutil.Error:
            continue
    raise AssertionError("no broker among the system's processes")


def wait_gone(process: psutil.Process, timeout_s: float) -> float:
    """Seconds until the process has exited (a zombie its frozen parent has not reaped
    yet counts as exited)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def supervisor_frozen(system: System) -> Iterator[None]:
    """The supervisor does nothing meanwhile, so an outage lasts until we let it go."""
    assert system.process is not None
    os.kill(system.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(system.process.pid, signal.SIGCONT)


def wait_until(predicate: Any, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError, psutil.Error, AssertionError):
            value = None  # not there yet
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every_s)


def open_partnership(system: System) -> str:
    response = system.post("/v1/partnerships", {"partner": PARTNER, "owner_unit": "research", "steward": "ella"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def contact(**extra: Any) -> dict[str, Any]:
    return {"type": "contact_logged", "channel": "call", "direction": "outbound", "participants": ["ella"], **extra}


def history_command_ids(system: System, pid: str) -> set[str]:
    response = system.get(f"/v1/partnerships/{pid}/history")
    assert response.status_code == 200, response.text
    return {e["command_id"] for e in response.json()["events"] if e.get("command_id")}


def unavailable(response: httpx.Response, dependency: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["code"] == "dependency_unavailable" and body["status"] == 503, body
    assert body["dependency"] == dependency, body
    return body


class Load:
    """HTTP writers (three threads) and a Kafka producer, each command with its own id;
    it remembers which were acknowledged: 2xx, or acked by the broker."""

    def __init__(self, system: System, partnerships: list[str]) -> None:
        self.system = system
        self.partnerships = partnerships
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.http_ok: dict[str, str] = {}  # command id -> partnership
        self.http_statuses: list[int] = []
        self.kafka_acked: dict[str, str] = {}
        self.errors: list[BaseException] = []
        self.topic = system.env["VERKOSTO_COMMANDS_TOPIC"]
        self.threads = [threading.Thread(target=self.http_writer, args=(i,)) for i in range(3)]
        self.threads.append(threading.Thread(target=self.kafka_writer))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def http_writer(self, index: int) -> None:
        client = httpx.Client(base_url=self.system.endpoints["api_url"], timeout=30.0, headers=self.system.auth())
        n = 0
        try:
            while not self.stop.is_set():
                pid = self.partnerships[(index + n) % len(self.partnerships)]
                command_id = f"http-{index}-{n}-{uuid.uuid4().hex[:6]}"
                n += 1
                try:
                    response = client.post(f"/v1/partnerships/{pid}/events", json=contact(command_id=command_id))
                except httpx.HTTPError:
                    continue
                with self.lock:
                    self.http_statuses.append(response.status_code)
                    if 200 <= response.status_code < 300:
                        self.http_ok[command_id] = pid
                    elif response.status_code != 503:
                        self.errors.append(AssertionError(f"{response.status_code}: {response.text}"))
                time.sleep(0.02)
        finally:
            client.close()

    def kafka_writer(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.system.endpoints["kafka_bootstrap"], acks="all")
        n = 0
        try:
            while not self.stop.is_set():
                pid = self.partnerships[n % len(self.partnerships)]
                command_id = f"kafka-{n}-{uuid.uuid4().hex[:6]}"
                n += 1
                body = {**contact(command_id=command_id), "partnership_id": pid, "actor": "crm-sync"}
                try:
                    producer.send(self.topic, key=pid.encode(), value=json.dumps(body).encode()).get(timeout=10)
                except Exception:  # noqa: BLE001  (not acknowledged: no promise made)
                    continue
                with self.lock:
                    self.kafka_acked[command_id] = pid
                time.sleep(0.05)
        finally:
            producer.close(timeout=5)


def check_recovered(system: System, timeout_s: float = 60.0) -> None:
    """A new write succeeds and the projections catch up with it, with no hand on it."""
    pid = wait_until(
        lambda: (
            system.post("/v1/partnerships", {"partner": PARTNER, "owner_unit": "research", "steward": "ella"})
            .json()
            .get("id")
        ),
        timeout_s,
        "a write",
    )
    position = system.post(f"/v1/partnerships/{pid}/events", contact()).json()["position"]
    owners = wait_until(
        lambda: (
            (b := system.get(f"/v1/partnerships/{pid}/owners", min_position=position, wait_ms=5000).json()).get(
                "caught_up"
            )
            and b
        ),
        timeout_s,
        "the projections to catch up",
    )
    assert owners["caught_up"]


# Tests -----------------------------------------------------------------------------------


def test_postgres_killed_under_load(system: System) -> None:
    partnerships = [open_partnership(system) for _ in range(4)]
    url_before = system.endpoints["database_url"]
    with Load(system, partnerships) as load:
        time.sleep(2.0)  # load flowing
        old = postmaster(system)
        with supervisor_frozen(system):
            old.kill()
            # While it is down, the API says so within about a second, as problem+json.
            wait_until(
                lambda: system.post(f"/v1/partnerships/{partnerships[0]}/events", contact()).status_code == 503,
                15,
                "a 503 while PostgreSQL is down",
            )
            for _ in range(3):
                started = time.monotonic()
                response = system.post(f"/v1/partnerships/{partnerships[0]}/events", contact())
                elapsed = time.monotonic() - started
                unavailable(response, "database")
                assert elapsed < 1.5, f"503 after {elapsed:.2f} s"
            started = time.monotonic()
            ready = system.http.get("/readyz")
            assert time.monotonic() - started < 2.5
            body = unavailable(ready, "database")
            assert body["checks"]["database"]["ok"] is False and body["checks"]["broker"]["ok"] is True
            metrics = system.http.get("/metrics")
            assert metrics.status_code in (200, 503) and metrics.status_code != 500
            time.sleep(2.0)  # the load keeps knocking meanwhile
        # Let go: the supervisor sees the postmaster gone and starts it again.
        wait_until(lambda: postmaster_pid(system) != old.pid, 60, "PostgreSQL to be restarted")
        assert postmaster(system).is_running()
        wait_until(lambda: system.http.get("/readyz").status_code == 200, 30, "ready again")
        time.sleep(3.0)  # load after the restart too
    assert not load.errors, load.errors[:3]
    assert 503 in load.http_statuses and load.http_ok and load.kafka_acked
    endpoints = json.loads((system.data_dir / "endpoints.json").read_text())
    assert endpoints["database_url"] == url_before  # the same socket: nobody needs telling

    # Every 2xx answer's event is in history; every acknowledged Kafka command recorded.
    def recorded() -> set[str]:
        found: set[str] = set()
        for pid in partnerships:
            found |= history_command_ids(system, pid)
        return found

    missing_http = set(load.http_ok) - recorded()
    assert not missing_http, f"acknowledged over HTTP but not recorded: {sorted(missing_http)[:5]}"
    wait_until(
        lambda: not set(load.kafka_acked) - recorded(),
        60,
        "every acknowledged Kafka command to be recorded",
        every_s=1.0,
    )
    # No half-written batch: the hash chain over every event verifies.
    verified = system.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    check_recovered(system)


@pytest.mark.parametrize("name", ["api", "ingest", "relay", "projector"])
def test_sigterm_stops_each_component_within_5_s_while_postgres_hangs(system: System, name: str) -> None:
    target = component(system, name)
    stopped = [postmaster(system)]
    stopped += [p for p in stopped[0].children() if p.status() != psutil.STATUS_ZOMBIE]
    with supervisor_frozen(system):
        for process in stopped:  # connections now hang rather than fail
            process.suspend()
        try:
            if name == "api":  # a request waiting on the database while the stop comes

                def waiting_request() -> None:
                    try:
                        httpx.post(
                            f"{system.endpoints['api_url']}/v1/partnerships/{uuid.uuid4()}/events",
                            json=contact(),
                            headers=system.auth(),
                            timeout=20,
                        )
                    except httpx.HTTPError:
                        pass  # the server went away under it: expected here

                threading.Thread(target=waiting_request, daemon=True).start()
            time.sleep(1.5)
            target.terminate()
            elapsed = wait_gone(target, 10)
            assert elapsed < 5.0, f"{name} took {elapsed:.1f} s to stop"
        finally:
            for process in stopped:
                try:
                    process.resume()
                except psutil.Error:
                    pass
    # The supervisor starts it again.
    wait_until(lambda: component(system, name).pid != target.pid, 30, f"{name} to be restarted")


def test_sigterm_stops_every_component_within_5_s_while_postgres_is_down(system: System) -> None:
    targets = {name: component(system, name) for name in ("api", "ingest", "relay", "projector")}
    old = postmaster(system)
    with supervisor_frozen(system):
        old.kill()
        time.sleep(2.0)  # each has met the lost database by now (and is backing off)
        started = time.monotonic()
        for process in targets.values():
            process.terminate()
        for name, process in targets.items():
            elapsed = wait_gone(process, 10) if process.is_running() else 0.0
            assert time.monotonic() - started < 5.0, f"{name} took {elapsed:.1f} s to stop"
    wait_until(lambda: postmaster_pid(system) != old.pid, 60, "PostgreSQL to be restarted")
    for name, process in targets.items():
        wait_until(lambda: component(system, name).pid != process.pid, 30, f"{name} to be restarted")


def test_the_system_recovers_from_the_stops_by_itself(system: System) -> None:
    check_recovered(system)


def test_broker_killed(system: System) -> None:
    pid = open_partnership(system)
    old = broker(system)
    logs = system.data_dir / "logs"

    def log_lines() -> dict[str, int]:
        return {
            name: len((logs / f"{name}.log").read_bytes().splitlines()) for name in ("ingest", "relay", "projector")
        }

    with supervisor_frozen(system):
        before = log_lines()
        old.kill()
        body = wait_until(lambda: (r := system.http.get("/readyz")).status_code == 503 and r, 5, "readyz 503")
        body = unavailable(body, "broker")
        assert body["checks"]["broker"]["ok"] is False and body["checks"]["database"]["ok"] is True
        assert "broker" in body["detail"]
        # Writes over HTTP do not need the broker: still accepted (the relay catches up later).
        assert system.post(f"/v1/partnerships/{pid}/events", contact()).status_code == 201
        time.sleep(10.0)
        # Clients retrying a lost broker say so about once per interval, not per attempt
        # (the projector once wrote thousands of identical lines in a few minutes).
        grown = {name: lines - before[name] for name, lines in log_lines().items()}
        assert all(n < 60 for n in grown.values()), grown
    new = wait_until(lambda: (b := broker(system)).pid != old.pid and b, 30, "the broker to be restarted")
    assert new.is_running()
    wait_until(lambda: system.http.get("/readyz").status_code == 200, 30, "ready again")
    # Commands over Kafka are recorded again (Apache Kafka kept its topics; Tansu's were created anew).
    command_id = f"after-broker-{uuid.uuid4().hex[:8]}"
    body = {**contact(command_id=command_id), "partnership_id": pid, "actor": "crm-sync"}
    producer = KafkaProducer(bootstrap_servers=system.endpoints["kafka_bootstrap"], acks="all")
    try:
        producer.send(system.env["VERKOSTO_COMMANDS_TOPIC"], key=pid.encode(), value=json.dumps(body).encode()).get(30)
    finally:
        producer.close(timeout=5)
    wait_until(lambda: command_id in history_command_ids(system, pid), 60, "the Kafka command to be recorded", 1.0)
    check_recovered(system)  # the relay carries on (or refills Tansu's new events topic); projections follow


@pytest.mark.parametrize("name", ["relay", "projector"])
def test_a_component_started_by_hand_keeps_running(system: System, name: str) -> None:
    env = component(system, name).environ()  # exactly what the supervisor gave its own
    assert "VERKOSTO_PARENT_PID" not in env
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(4.0)  # the old parent watch killed it within about a second
        assert process.poll() is None, f"a {name} started by hand stopped by itself"
    finally:
        started = time.monotonic()
        process.terminate()
        assert process.wait(10) is not None
        assert time.monotonic() - started < 5.0
