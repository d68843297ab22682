"""Apache Kafka itself (KRaft, from Maven Central, on the machine's Java) in the loop.

These start real JVM brokers with services/kafka_broker.py: Verkosto's ingest and relay
against one, a single node's log surviving SIGKILL, and a three-node cluster losing the
leader of a partition under acks=all. They are skipped (with the reason) only where Java
or Maven is missing; `make kafka` installs both and fetches the jars.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from domain.partnership import Partnership
from services.application import Verkosto
from services.kafka_broker import ApacheKafka, KafkaUnavailable, kafka_libs
from services.kafka_cluster import ApacheKafkaCluster
from services.relay import Relay
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application, unique
from tests.kafka_helpers import RunningIngest, command, consume, contact, opened, produce

TIMINGS: dict[str, float] = {}


def _gone(pid: int | None) -> bool:
    import psutil

    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module", autouse=True)
def _report_timings() -> Iterator[None]:
    """Prints what the module measured (seen with ``-s``); nothing is asserted on it."""
    yield
    if TIMINGS:
        print("\nApache Kafka timings (s, MiB, counts):", {k: round(v, 1) for k, v in TIMINGS.items()}, file=sys.stderr)


@pytest.fixture(scope="module")
def libs() -> Path:
    if shutil.which("java") is None:
        pytest.skip("Apache Kafka unavailable here: no `java` on PATH (run `make kafka`)")
    started = time.monotonic()
    try:
        found = kafka_libs()
    except KafkaUnavailable as error:
        pytest.skip(f"Apache Kafka unavailable here: {error}")
    TIMINGS["jars (cached or fetched)"] = time.monotonic() - started
    return found


@pytest.fixture(scope="module")
def apache_kafka(libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    kafka = ApacheKafka(tmp_path_factory.mktemp("apache-kafka"), libs=libs)
    started = time.monotonic()
    kafka.start()
    TIMINGS["single broker first start (format + JVM)"] = time.monotonic() - started
    TIMINGS["single broker RSS MiB"] = (kafka.memory_rss_bytes() or 0) / 2**20
    try:
        yield kafka
    finally:
        pid = kafka.pid
        started = time.monotonic()
        kafka.stop()
        TIMINGS["single broker stop (SIGTERM)"] = time.monotonic() - started
        assert _gone(pid), "the broker's JVM outlived stop()"


@pytest.fixture
def kafka_settings(database_url: str, apache_kafka: ApacheKafka, tmp_path: Path) -> Iterator[Settings]:
    """As conftest's ``settings``, but on this module's own Apache Kafka (replication 1)."""
    with fresh_settings(database_url, apache_kafka.bootstrap, tmp_path, "ak", topic_replication=1) as s:
        yield s


@pytest.fixture
def kafka_app(kafka_settings: Settings) -> Iterator[Verkosto]:
    with opened_application(kafka_settings) as application:
        yield application


def test_ingest_and_relay_run_against_apache_kafka(kafka_app: Verkosto, kafka_settings: Settings) -> None:
    from services.bus import ensure_topics

    ensure_topics(kafka_settings)  # again: existing topics are left alone
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap)
    try:
        described = {
            t["name"]: t
            for t in admin.describe_topics(
                [kafka_settings.commands_topic, kafka_settings.events_topic, kafka_settings.dlq_topic]
            )
        }
    finally:
        admin.close()
    assert {name: len(t["partitions"]) for name, t in described.items()} == {
        kafka_settings.commands_topic: 3,
        kafka_settings.events_topic: 3,
        kafka_settings.dlq_topic: 3,
    }

    first, second = uuid.uuid4(), uuid.uuid4()
    produce(
        kafka_settings,
        [
            command(opened(first)),
            command(contact(first)),
            command(contact(first)),
            command(opened(second)),
            command(contact(second)),
            (b"junk", b"{not json"),
        ],
    )
    started = time.monotonic()
    ingest = RunningIngest(kafka_app, kafka_settings)
    try:
        ingest.until(lambda: ingest.ingest.recorded + ingest.ingest.dead_lettered >= 6, timeout_s=60)
    finally:
        ingest.close()
    TIMINGS["ingest of 6 commands (group join included)"] = time.monotonic() - started
    assert ingest.ingest.recorded == 5 and ingest.ingest.dead_lettered == 1
    assert kafka_app.get(first, Partnership).contacts == 2
    assert kafka_app.get(second, Partnership).contacts == 1
    assert [r.key for r in consume(kafka_settings, kafka_settings.dlq_topic, 1)] == [b"junk"]

    relay = Relay(kafka_app, kafka_settings)
    try:
        relay.resume()
        assert relay.topic_id  # Apache Kafka reports topic ids
        assert relay.publish_batch() == 5
        assert relay.publish_batch() == 0
    finally:
        relay.close()
    records = consume(kafka_settings, kafka_settings.events_topic, 5)
    events = [json.loads(r.value) for r in records]
    assert sorted(e["position"] for e in events) == [1, 2, 3, 4, 5]
    for pid, count in ((first, 3), (second, 2)):
        mine = [json.loads(r.value) for r in records if r.key == str(pid).encode()]
        assert [e["version"] for e in mine] == list(range(1, count + 1))  # one partition, in order
        assert mine[0]["type"] == "partnership_opened"


def _create(bootstrap: str, topic: str, partitions: int, replicas: int, **configs: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, replicas, topic_configs=configs)])
    finally:
        admin.close()


def _read_all(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Any]:
    """Every record of ``topic``, from the beginning up to the end offsets seen first."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            assert time.monotonic() < deadline, f"no metadata for {topic}"
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(assigned)
        records: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _produce_acknowledged(bootstrap: str, topic: str, values: list[bytes]) -> set[bytes]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        futures = [(v, producer.send(topic, key=v[-1:], value=v)) for v in values]
        producer.flush()
        return {v for v, f in futures if f.succeeded()}
    finally:
        producer.close()


def test_a_killed_broker_restarts_with_every_acknowledged_message(apache_kafka: ApacheKafka) -> None:
    topic = unique("durable")
    _create(apache_kafka.bootstrap, topic, 3, 1)
    acknowledged = _produce_acknowledged(apache_kafka.bootstrap, topic, [f"m-{i}".encode() for i in range(500)])
    assert len(acknowledged) == 500

    pid = apache_kafka.pid
    apache_kafka.kill()  # SIGKILL: no controlled shutdown, nothing flushed by the broker
    assert _gone(pid)
    started = time.monotonic()
    assert apache_kafka.start() == apache_kafka.bootstrap  # same data dir, same address
    TIMINGS["single broker restart after SIGKILL (log recovery)"] = time.monotonic() - started
    values = Counter(r.value for r in _read_all(apache_kafka.bootstrap, topic))
    assert set(values) == acknowledged and max(values.values()) == 1

    more = _produce_acknowledged(apache_kafka.bootstrap, topic, [f"n-{i}".encode() for i in range(100)])
    started = time.monotonic()
    apache_kafka.restart()  # an orderly stop (SIGTERM) and start
    TIMINGS["single broker orderly restart"] = time.monotonic() - started
    values = Counter(r.value for r in _read_all(apache_kafka.bootstrap, topic))
    assert set(values) == acknowledged | more and max(values.values()) == 1


class _SteadyProducer:
    """Sends numbered messages (acks=all, idempotent) in a thread until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=10_000,
            delivery_timeout_ms=90_000,
            max_block_ms=60_000,
        )
        self.topic = topic
        self.sent: list[tuple[bytes, Any]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            value = f"v-{i:06d}".encode()
            self.sent.append((value, self.producer.send(self.topic, key=value[-2:], value=value)))
            i += 1
            time.sleep(0.002)

    def wait_for(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.sent) < count:
            assert time.monotonic() < deadline, "the producer stalled"
            time.sleep(0.05)

    def finish(self) -> tuple[set[bytes], int]:
        self.stopping.set()
        self.thread.join(30)
        self.producer.flush(timeout=120)
        acknowledged = {v for v, f in self.sent if f.is_done and f.succeeded()}
        failed = sum(1 for _, f in self.sent if not (f.is_done and f.succeeded()))
        self.producer.close(timeout=10)
        return acknowledged, failed


def test_a_three_node_cluster_loses_no_acknowledged_message_when_a_leader_dies(libs: Path, tmp_path: Path) -> None:
    cluster = ApacheKafkaCluster(tmp_path / "cluster", 3, libs=libs)
    started = time.monotonic()
    cluster.start()
    TIMINGS["3-node cluster start"] = time.monotonic() - started
    TIMINGS["3-node cluster RSS MiB (sum)"] = sum((n.memory_rss_bytes() or 0) for n in cluster.nodes.values()) / 2**20
    pids = [n.pid for n in cluster.nodes.values()]
    try:
        topic = "replicated"
        _create(cluster.bootstrap, topic, 3, 3, **{"min.insync.replicas": "2"})
        leader = cluster.wait_for_leader(topic, 0)
        deadline = time.monotonic() + 30
        while cluster.isr_of(topic, 0) != [1, 2, 3]:
            assert time.monotonic() < deadline
            time.sleep(0.2)

        producing = _SteadyProducer(cluster.bootstrap, topic)
        producing.wait_for(300)
        started = time.monotonic()
        cluster.kill(leader)  # kill -9 the leader of partition 0, mid-stream
        successor = cluster.wait_for_leader(topic, 0, not_on=leader)
        TIMINGS["leader failover after SIGKILL"] = time.monotonic() - started
        assert successor != leader
        at_kill = len(producing.sent)
        producing.wait_for(at_kill + 300)  # still producing: 2 of 3 in sync satisfy acks=all

        started = time.monotonic()
        cluster.restart(leader)
        deadline = time.monotonic() + 60
        while cluster.isr_of(topic, 0) != [1, 2, 3]:
            assert time.monotonic() < deadline, "the restarted node did not rejoin the ISR"
            time.sleep(0.2)
        TIMINGS["killed node back in ISR"] = time.monotonic() - started
        producing.wait_for(len(producing.sent) + 300)
        acknowledged, failed = producing.finish()

        records = _read_all(cluster.bootstrap, topic)
        values = Counter(r.value for r in records)
        duplicates = {v: n for v, n in values.items() if n > 1}
        assert not duplicates, f"read more than once: {sorted(duplicates)[:10]}"
        lost = acknowledged - set(values)
        assert not lost, f"{len(lost)} acknowledged messages lost: {sorted(lost)[:10]}"
        assert len(acknowledged) >= 900
        TIMINGS["cluster messages acknowledged"] = len(acknowledged)
        TIMINGS["cluster messages not acknowledged"] = failed
    finally:
        started = time.monotonic()
        cluster.stop()
        TIMINGS["3-node cluster stop"] = time.monotonic() - started
    assert all(_gone(pid) for pid in pids), "a node's JVM outlived stop()"


def test_two_sessions_fetch_the_jars_once(libs: Path, tmp_path: Path) -> None:
    """Two processes asking for an empty cache at once: one runs Maven, the other waits
    on the lock and finds the jars (Maven reads them from ~/.m2, so this is quick)."""
    target = tmp_path / "libs"
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s');"
        "from pathlib import Path; from services.kafka_broker import kafka_libs;"
        f"print('LIBS', kafka_libs(Path({str(target)!r})))"
    )
    root = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum(out.count("fetching Apache Kafka") for out in outputs) == 1, outputs
    assert all(f"LIBS {target}" in out for out in outputs)
    assert sorted(p.name for p in target.glob("*.jar")) == sorted(p.name for p in libs.glob("*.jar"))
