"""The projector: one faust app whose agent folds ``verkosto.events.v1`` into read models.

Messages are JSON bytes (never pickle). Events are taken in batches, and each batch is one
PostgreSQL transaction with its tracking (see ``projections.tracking``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import faust
import psycopg

from contract.events import SCHEMA
from projections.catalog import all_projections
from projections.tracking import Delivered, Tracker

log = logging.getLogger(__name__)


_REQUIRED = {
    "schema": str,
    "position": int,
    "event_id": str,
    "aggregate_type": str,
    "aggregate_id": str,
    "version": int,
    "type": str,
    "occurred_at": str,
    "recorded_at": str,
    "actor": str,
    "data": dict,
}


def decode(value: bytes | None) -> dict[str, Any] | None:
    """A published event, or None for anything else on the topic."""
    try:
        body = json.loads(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        return None
    if not all(isinstance(body.get(key), kind) for key, kind in _REQUIRED.items()):
        return None
    # What tracking parses and stores as uuid and bigint must parse and fit: a message
    # that does not is not one of ours, and must not stop the projector.
    if not all(type(body[key]) is int and 0 < body[key] < 2**63 for key in ("position", "version")):
        return None
    try:
        UUID(body["aggregate_id"])
    except ValueError:
        return None
    return body


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


@dataclass(frozen=True)
class ProjectorConfig:
    """What the projector needs to know, given by the composition root (services/)."""

    group: str
    bootstrap: str
    events_topic: str
    database_url: str
    db_schema: str
    data_dir: Path
    batch_size: int
    batch_within_s: float
    # Consumer-group timeouts in seconds; None leaves the client's own default.
    session_timeout_s: float | None = None
    heartbeat_interval_s: float | None = None
    max_poll_interval_s: float | None = None
    # A projector holding no partition of the events topic this long starts afresh (below).
    unassigned_restart_s: float = 20.0


class TopicNotAssigned(RuntimeError):
    """This projector holds no partition of the events topic: the broker's doing, so the
    runner starts the projector again rather than exit as for a bug."""

    dependency = "broker"  # read by services/resilience.dependency_of


def framework(config: ProjectorConfig) -> tuple[faust.App, faust.TopicT]:
    """The faust app and its events topic as the projector configures them, before any
    agent: the benchmark's floor (tests/benchmarks/faust_floor.py) runs on the same."""
    timeouts = {
        "broker_session_timeout": config.session_timeout_s,
        "broker_heartbeat_interval": config.heartbeat_interval_s,
        "broker_max_poll_interval": config.max_poll_interval_s,
        "broker_rebalance_timeout": config.session_timeout_s,
    }
    app = faust.App(
        config.group,
        broker=broker_urls(config.bootstrap),
        value_serializer="raw",
        key_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=str(config.data_dir / "projector"),
        **{name: value for name, value in timeouts.items() if value is not None},
    )
    events = app.topic(config.events_topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
    return app, events


def create_app(config: ProjectorConfig) -> faust.App:
    app, events = framework(config)
    tracker = Tracker(config.db_schema)
    projections = all_projections()
    database_url = config.database_url
    state: dict[str, Any] = {"conn": None}

    async def connection() -> psycopg.AsyncConnection[Any]:
        conn = state["conn"]
        if conn is None or conn.closed:
            conn = state["conn"] = await psycopg.AsyncConnection.connect(database_url)
        return conn

    async def apply_until_done(delivered: list[Delivered]) -> None:
        # faust acks a taken batch even if the agent fails on it, so a batch must never
        # fail: the tracker parks events a projection cannot apply (errors tied to the
        # data), so what reaches here is the infrastructure (a lost connection, a lock
        # timeout): reconnect and retry (with backoff) until it is applied.
        pause = 0.5
        while True:
            try:
                await tracker.apply(await connection(), projections, delivered)
                return
            except Exception:
                log.exception("projection batch failed; retrying in %.1f s", pause)
                if state["conn"] is not None:
                    await state["conn"].close()
                    state["conn"] = None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    # After a broker restart the group can form before the broker has loaded the events
    # topic: faust's assignor then ignores it ("Ignoring missing topic"), no rebalance
    # follows, and the projector would sit assigned nothing for good. So one that holds no
    # partition of the topic for a while crashes, and its runner starts it afresh (run no
    # more projectors than the topic has partitions, or the spare ones keep restarting).
    unassigned: dict[str, float | None] = {"since": None}

    @app.timer(interval=max(1.0, config.unassigned_restart_s / 4))
    async def restart_when_unassigned() -> None:
        now = asyncio.get_running_loop().time()
        if any(tp.topic == config.events_topic for tp in app.consumer.assignment()):
            unassigned["since"] = None
            return
        since = unassigned["since"] = unassigned["since"] or now
        if now - since >= config.unassigned_restart_s:
            log.warning("no partition of %s assigned for %.0f s: starting afresh", config.events_topic, now - since)
            await app.crash(TopicNotAssigned(f"no partition of {config.events_topic} assigned"))

    @app.agent(events)
    async def project_events(stream: faust.Stream) -> None:
        async for batch in stream.take_events(config.batch_size, within=config.batch_within_s):
            delivered = []
            for event in batch:
                body = decode(event.value)
                if body is None:
                    # Only the relay writes this topic; a foreign message is logged, not fatal.
                    log.error("skipping a message that is not a Verkosto event at offset %s", event.message.offset)
                    continue
                delivered.append(Delivered(event.message.partition, event.message.offset, body))
            if delivered:
                await apply_until_done(delivered)

    return app
