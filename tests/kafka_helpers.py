"""Small, real Kafka helpers for tests (kafka-python against the test broker)."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from services.settings import Settings


def produce(settings: Settings, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for key, value in messages:
            producer.send(settings.commands_topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def command(body: dict[str, Any], actor: str = "crm-sync") -> tuple[bytes, bytes]:
    key = str(body.get("partnership_id") or body.get("network_id") or "").encode() or None
    return key, json.dumps({**body, "actor": actor}).encode()  # type: ignore[return-value]


def consume(settings: Settings, topic: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    """Reads a topic from the beginning (no group) until ``count`` records arrive."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        from kafka import TopicPartition

        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout_s
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        records: list[Any] = []
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def header(record: Any, name: str) -> str:
    return dict(record.headers)[name].decode()
