"""The embedded default broker (Apache Kafka, its log in the data directory) never loses an
acknowledged command: not when the broker is killed with SIGKILL under load (the
supervisor starts it again on its log), and not when the whole stack (the supervisor,
PostgreSQL, the broker and every component) is killed with SIGKILL at once under load and
`verkosto up` is started again on the same data directory.

A producer sends contact commands, each with its own command id, with acks=all and waits
for each acknowledgement; every acknowledged id must be recorded exactly once in the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psutil
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from tests.e2e.system import System, unique_names
from tests.integration.test_broker_side_lag import group_offsets

pytestmark = pytest.mark.e2e
PARTNER = {"name": "Karelia Labs", "kind": "organisation", "roles": ["researcher"]}


def broker_jvm(system: System) -> psutil.Process:
    for process in system.family():
        try:
            if "kafka.Kafka" in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except psutil.Error:
            continue
    raise AssertionError("no Apache Kafka JVM among the system's processes")


def wait_until(predicate: Any, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except (OSError, psutil.Error, AssertionError, KeyError):
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every_s)


class Producer:
    """Contact commands over Kafka, acks=all, each waited for: ``acked`` holds the ids the
    broker acknowledged (a promise was made), whatever happened to the broker meanwhile."""

    def __init__(self, bootstrap: str, topic: str, partnerships: list[str]) -> None:
        self.bootstrap, self.topic, self.partnerships = bootstrap, topic, partnerships
        self.acked: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def make(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=0,
            request_timeout_ms=5000,
            max_block_ms=5000,
            reconnect_backoff_max_ms=1000,
        )

    def run(self) -> None:
        producer: KafkaProducer | None = None
        n = 0
        while not self.stop.is_set():
            try:
                producer = producer or self.make()
            except Exception:  # noqa: BLE001 - the broker is down just now
                time.sleep(0.2)
                continue
            pid = self.partnerships[n % len(self.partnerships)]
            command_id = f"durable-{n}-{uuid.uuid4().hex[:6]}"
            n += 1
            body = {
                "type": "contact_logged",
                "partnership_id": pid,
                "channel": "call",
                "direction": "outbound",
                "participants": ["ella"],
                "command_id": command_id,
                "actor": "crm-sync",
            }
            try:
                producer.send(self.topic, key=pid.encode(), value=json.dumps(body).encode()).get(timeout=10)
                producer.flush(timeout=10)
            except Exception:  # noqa: BLE001 - not acknowledged: no promise made
                self.failed += 1
                try:
                    producer.close(timeout=0)
                except Exception:  # noqa: BLE001
                    pass
                producer = None
                continue
            self.acked.append(command_id)
            time.sleep(0.01)
        if producer is not None:
            try:
                producer.close(timeout=2)
            except Exception:  # noqa: BLE001
                pass

    def wait_for(self, count: int, timeout_s: float = 120.0) -> None:
        wait_until(
            lambda: len(self.acked) >= count,
            timeout_s,
            f"{count} acknowledged commands (have {len(self.acked)}, {self.failed} failed)",
        )

    def finish(self) -> list[str]:
        self.stop.set()
        self.thread.join(30)
        return list(self.acked)


def recorded_command_ids(system: System, partnerships: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for pid in partnerships:
        response = system.get(f"/v1/partnerships/{pid}/history")
        assert response.status_code == 200, response.text
        counts.update(e["command_id"] for e in response.json()["events"] if e.get("command_id"))
    return counts


def broker_side_lag(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """End offsets minus the group's committed offsets, per partition: what Kafka's own
    tools (kafka-consumer-groups --describe) report."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        committed = {tp.partition: meta.offset for tp, meta in group_offsets(admin, group).items() if tp.topic == topic}
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(partitions)
        return {tp.partition: ends[tp] - committed.get(tp.partition, 0) for tp in partitions}
    finally:
        consumer.close()
        admin.close()


def kill_everything(system: System) -> list[psutil.Process]:
    """SIGKILL to the supervisor and all of its family at once: nobody stops in order."""
    assert system.process is not None
    everyone = [psutil.Process(system.process.pid), *system.family()]
    for process in everyone:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    system.process.wait(10)
    system.output.close()
    system.http.close()
    psutil.wait_procs(everyone, timeout=15)
    return everyone


def test_no_acknowledged_command_is_lost_when_the_broker_or_the_whole_stack_is_killed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if os.environ.get("VERKOSTO_TEST_DATABASE_URL") or os.environ.get("VERKOSTO_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("kills the embedded servers; not run against shared ones")
    if os.environ.get("VERKOSTO_TEST_BROKER", "kafka") == "tansu" or shutil.which("java") is None:
        pytest.skip("about the durable default, Apache Kafka (needs Java: `make kafka`)")
    names = unique_names()
    system = System(tmp_path_factory.mktemp("durable") / "data", names)
    started = time.monotonic()
    system.start()
    first_start = time.monotonic() - started
    producer: Producer | None = None
    try:
        assert system.endpoints["embedded"] == {"postgres": True, "kafka": True}
        assert system.endpoints["broker"] == "kafka" and "warning" not in system.endpoints
        assert (system.data_dir / "kafka" / "log" / "meta.properties").is_file()  # its log is in the data dir
        bootstrap = system.endpoints["kafka_bootstrap"]
        partnerships = []
        for _ in range(4):
            response = system.post(
                "/v1/partnerships", {"partner": PARTNER, "owner_unit": "research", "steward": "ella"}
            )
            assert response.status_code == 201, response.text
            partnerships.append(str(response.json()["id"]))

        producer = Producer(bootstrap, names["VERKOSTO_COMMANDS_TOPIC"], partnerships)
        producer.wait_for(150)

        # 1. The broker alone, SIGKILL under load: the supervisor starts it again on its log.
        old = broker_jvm(system)
        old.kill()
        killed_at = len(producer.acked)
        new = wait_until(lambda: (b := broker_jvm(system)).pid != old.pid and b, 60, "the broker to be restarted")
        producer.wait_for(killed_at + 150)

        # 2. Everything at once, SIGKILL under load.
        before_kill = len(producer.acked)
        family = kill_everything(system)
        assert new in family
        time.sleep(1.0)  # the producer keeps trying against nothing
        acked = producer.finish()
        failed = producer.failed
        producer = None
        assert len(acked) >= before_kill

        # 3. `verkosto up` again on the same data directory: same broker address, same log.
        started = time.monotonic()
        system.start()
        restart_s = time.monotonic() - started
        assert system.endpoints["kafka_bootstrap"] == bootstrap, "the broker's port is kept in the data dir"
        missing: set[str] = set(acked)

        def all_recorded() -> bool:
            nonlocal missing
            counts = recorded_command_ids(system, partnerships)
            missing = set(acked) - set(counts)
            return not missing

        try:
            wait_until(all_recorded, 180, "every acknowledged command to be recorded", every_s=1.0)
        except AssertionError:
            raise AssertionError(
                f"{len(missing)} of {len(acked)} acknowledged commands lost: {sorted(missing)[:10]}"
            ) from None
        caught_up_s = time.monotonic() - started
        counts = recorded_command_ids(system, partnerships)
        twice = {command_id: n for command_id, n in counts.items() if n > 1}
        assert not twice, f"recorded more than once: {twice}"

        # The ingest also committed its progress to Kafka: the broker's own view of its lag.
        lag = wait_until(
            lambda: (
                (lags := broker_side_lag(bootstrap, names["VERKOSTO_INGEST_GROUP"], names["VERKOSTO_COMMANDS_TOPIC"]))
                and not any(lags.values())
                and lags
            ),
            60,
            "the ingest's committed offsets on Kafka",
        )
        assert set(lag) == {0, 1, 2}
        print(
            f"\ndurable broker: first start {first_start:.1f} s; {len(acked)} acknowledged, {failed} not; "
            f"up again after kill -9 of everything {restart_s:.1f} s; all recorded {caught_up_s:.1f} s "
            f"after the restart began"
        )
    finally:
        if producer is not None:
            producer.finish()
        system.stop()
