"""The projector: one faust app whose agent folds ``verkosto.events.v1`` into read models.

Messages are JSON bytes (never pickle). Events are taken in batches, and each batch is one
PostgreSQL transaction with its tracking (see ``projections.tracking``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import faust
import psycopg

from projections.catalog import all_projections
from projections.tracking import Delivered, Tracker
from services.settings import Settings

log = logging.getLogger(__name__)


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.projector_group,
        broker=broker_urls(settings.require_kafka_bootstrap()),
        value_serializer="raw",
        key_serializer="raw",
        # Group timeouts near 10 s: see Settings.kafka_session_timeout_ms.
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_ms / 1000,
        broker_max_poll_interval=settings.kafka_max_poll_interval_ms / 1000,
        broker_rebalance_timeout=settings.kafka_session_timeout_ms / 1000,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=str(settings.data_dir / "projector"),
    )
    events = app.topic(settings.events_topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
    tracker = Tracker(settings.db_schema)
    projections = all_projections()
    database_url = settings.require_database_url()
    state: dict[str, Any] = {"conn": None}

    async def connection() -> psycopg.AsyncConnection[Any]:
        conn = state["conn"]
        if conn is None or conn.closed:
            conn = state["conn"] = await psycopg.AsyncConnection.connect(database_url)
        return conn

    @app.agent(events)
    async def project_events(stream: faust.Stream) -> None:
        async for batch in stream.take_events(
            settings.projector_batch_size, within=settings.projector_batch_within_s
        ):
            delivered = []
            for event in batch:
                try:
                    body = json.loads(event.value)
                    delivered.append(Delivered(event.message.partition, event.message.offset, body))
                except (TypeError, ValueError) as error:
                    # Only the relay writes this topic; a foreign message is logged, not fatal.
                    log.error("skipping undecodable event at offset %s: %s", event.message.offset, error)
            if delivered:
                await tracker.apply(await connection(), projections, delivered)

    return app
