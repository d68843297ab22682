"""Lag the standard way, beside Verkosto's own per-partition figures.

The ingest stores its offsets in PostgreSQL with its effects (the source of truth) and
then also commits them to its group on the broker, so `kafka-consumer-groups --describe`
and any lag exporter see its progress: end offsets minus committed offsets. The relay
records the last offset it wrote per partition (relay_partitions), which must be the
broker's end offsets. Both are compared here with what /metrics says.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.api.app import create_app
from services.application import Verkosto
from services.settings import Settings
from tests.kafka_helpers import RunningIngest, command, contact, opened, produce, publish_all


def group_offsets(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, Any]:
    """The group's committed offsets (KafkaAdminClient.list_consumer_group_offsets, named
    list_group_offsets since kafka-python 3)."""
    if hasattr(admin, "list_consumer_group_offsets"):
        return dict(admin.list_consumer_group_offsets(group))
    return dict(admin.list_group_offsets(group).get(group, {}))


def committed_on_kafka(settings: Settings, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        offsets = group_offsets(admin, group)
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def broker_side_lag(settings: Settings, group: str, topic: str) -> dict[int, int]:
    committed = committed_on_kafka(settings, group, topic)
    return {p: end - committed.get(p, 0) for p, end in end_offsets(settings, topic).items()}


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_the_ingest_commits_to_kafka_what_it_stored_and_broker_side_lag_matches_metrics(
    app: Verkosto, settings: Settings
) -> None:
    pids = [uuid.uuid4() for _ in range(6)]
    messages = [command(opened(pid)) for pid in pids] + [command(contact(pid)) for pid in pids for _ in range(3)]
    messages.append((b"junk", b"{not json"))  # dead-lettered: consumed and counted too
    produce(settings, messages)
    ingest = RunningIngest(app, settings)
    try:
        ingest.until(lambda: ingest.ingest.recorded + ingest.ingest.dead_lettered >= len(messages))
        stored = {p: offset for p, (offset, _) in ingest.ingest.stored_positions().items()}
    finally:
        ingest.close()

    # What PostgreSQL holds (with the effects) is what the group committed on the broker.
    committed = committed_on_kafka(settings, settings.ingest_group, settings.commands_topic)
    assert committed == stored and sum(stored.values()) == len(messages)
    # Caught up: the broker's end offsets are the committed ones, partition by partition.
    assert broker_side_lag(settings, settings.ingest_group, settings.commands_topic) == {0: 0, 1: 0, 2: 0}

    with TestClient(create_app(settings)) as client:
        figures = samples(client.get("/metrics").text)
    # /metrics counts each consumed command once, in the transaction that moved the offsets.
    from_kafka = sum(v for k, v in figures.items() if k.startswith("verkosto_commands") and 'source="kafka"' in k)
    assert from_kafka == sum(committed.values()) == len(messages)
    assert figures["verkosto_dlq_messages"] == 1

    # While the ingest is away, the broker-side lag counts what waits for it.
    produce(settings, [command(contact(pids[0])), command(contact(pids[1]))])
    lag = broker_side_lag(settings, settings.ingest_group, settings.commands_topic)
    assert sum(lag.values()) == 2

    # The relay: its recorded last offsets per partition are the broker's end offsets of
    # the events topic, and /metrics says nothing is left to publish.
    publish_all(app, settings)
    ends = end_offsets(settings, settings.events_topic)
    with TestClient(create_app(settings)) as client:
        figures = samples(client.get("/metrics").text)
    from services.db import connect

    with connect(settings.require_database_url()) as conn:
        rows = conn.execute(f'SELECT partition, last_offset FROM "{settings.db_schema}".relay_partitions').fetchall()
    assert {r["partition"]: r["last_offset"] + 1 for r in rows} == {p: e for p, e in ends.items() if e}
    assert sum(ends.values()) == figures["verkosto_events_appended"] == len(pids) * 4
    assert figures["verkosto_relay_lag_events"] == 0


def test_a_kafka_commit_lost_in_a_crash_is_made_good_on_assignment(app: Verkosto, settings: Settings) -> None:
    """The ingest died after PostgreSQL's commit but before Kafka's: the broker's copy is
    behind. Nothing new arrives, yet the next ingest brings the broker's copy up to date."""
    pids = [uuid.uuid4() for _ in range(4)]
    produce(settings, [command(opened(pid)) for pid in pids])
    ingest = RunningIngest(app, settings)
    try:
        ingest.until(lambda: ingest.ingest.recorded >= len(pids))
    finally:
        ingest.close()
    stored = committed_on_kafka(settings, settings.ingest_group, settings.commands_topic)
    # The crash, as the broker saw it: the group's offsets back at the start.
    rewind = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=settings.ingest_group, enable_auto_commit=False
    )
    try:
        rewind.commit({TopicPartition(settings.commands_topic, p): OffsetAndMetadata(0, "", -1) for p in stored})
    finally:
        rewind.close()
    assert sum(broker_side_lag(settings, settings.ingest_group, settings.commands_topic).values()) == len(pids)

    again = RunningIngest(app, settings)
    try:
        again.until(lambda: not any(broker_side_lag(settings, settings.ingest_group, settings.commands_topic).values()))
        assert again.ingest.recorded == 0  # nothing consumed twice: PostgreSQL's positions held
    finally:
        again.close()
