"""Kafka plumbing shared by the ingest and the relay (kafka-python)."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from services.settings import Settings

log = logging.getLogger(__name__)


def consumer_config(settings: Settings, group_id: str | None) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.require_kafka_bootstrap(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "reconnect_backoff_max_ms": settings.kafka_reconnect_backoff_max_ms,
        # A group assigned while the broker knew no partitions of the topic yet (a new
        # topic, a broker restarting) holds nothing until the next metadata refresh shows
        # them and the coordinator rejoins; kafka-python's default waits 5 minutes.
        "metadata_max_age_ms": 5_000,
    }


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.require_kafka_bootstrap(),
        # Idempotence keeps retried batches from duplicating or reordering a partition.
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "reconnect_backoff_max_ms": settings.kafka_reconnect_backoff_max_ms,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def consumer(settings: Settings, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    return KafkaConsumer(**{**consumer_config(settings, group_id), **overrides})


def admin(settings: Settings, wait_s: float = 30.0) -> KafkaAdminClient:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.require_kafka_bootstrap(),
                request_timeout_ms=settings.kafka_request_timeout_ms,
                reconnect_backoff_max_ms=settings.kafka_reconnect_backoff_max_ms,
            )
        except KafkaTimeoutError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def topic_configs(settings: Settings) -> dict[str, str]:
    """Per-topic configuration of the topics we create: replicated topics need two
    replicas in sync to acknowledge (acks=all), so a write survives one broker's loss."""
    replication = settings.topic_replication
    if replication <= 1:
        return {}
    insync = settings.topic_min_insync_replicas or min(2, replication)
    return {"min.insync.replicas": str(insync)}


def ensure_topics(settings: Settings) -> list[str]:
    """Creates the commands, events and dead-letter topics if they are missing (existing
    ones are left as they are); returns the names it created."""
    client = admin(settings)
    created: list[str] = []
    try:
        existing = set(client.list_topics())
        configs = topic_configs(settings)
        for name in (settings.commands_topic, settings.events_topic, settings.dlq_topic):
            if name in existing:
                continue
            try:
                client.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication, topic_configs=configs)]
                )
                created.append(name)
                log.info("created topic %s", name)
            except TopicAlreadyExistsError:
                pass
    finally:
        client.close()
    return created


def topic_id(settings: Settings, topic: str) -> str:
    """The topic's id: it changes when a topic is lost and created again under its name.

    Positions are only compared within one topic id, so an unknown id is an error, never
    a pass: better to restart than to trust offsets of a topic we cannot identify."""
    client = admin(settings)
    try:
        described = client.describe_topics([topic])
    finally:
        client.close()
    found = described[0].get("topic_id") if described else None
    if not found:
        raise KafkaError(f"cannot identify topic {topic!r}")
    return str(found)
