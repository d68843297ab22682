"""Small, real Kafka helpers for tests (kafka-python against the test broker)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from services.application import Verkosto
from services.ingest import CommandIngest
from services.relay import Relay
from services.settings import Settings

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def opened(pid: uuid.UUID, **extra: object) -> dict[str, object]:
    return {
        "type": "partnership_opened",
        "partnership_id": str(pid),
        "partner": PARTNER,
        "owner_unit": "research",
        "steward": "alice",
        **extra,
    }


def contact(pid: uuid.UUID, **extra: object) -> dict[str, object]:
    return {
        "type": "contact_logged",
        "partnership_id": str(pid),
        "channel": "email",
        "direction": "outbound",
        "participants": ["alice"],
        **extra,
    }


class RunningIngest:
    """The command ingest in a thread, as it runs in production."""

    def __init__(self, app: Verkosto, settings: Settings) -> None:
        self.ingest = CommandIngest(app, settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.ingest.run, args=(self.stop,))
        self.thread.start()

    def until(self, condition: Any, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "the ingest did not get there in time"
            assert self.thread.is_alive(), "the ingest died"
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.ingest.close()


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
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
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


def publish_all(app: Verkosto, settings: Settings) -> int:
    """Runs the real relay until everything recorded is on the events topic; returns the
    last position published."""
    relay = Relay(app, settings)
    try:
        relay.resume()
        while relay.publish_batch():
            pass
        return relay.position
    finally:
        relay.close()
