"""Health in numbers, read from PostgreSQL at scrape time: the database is where every
process records its effects and positions, so one scrape of the API sees them all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from psycopg import sql

from projections.catalog import all_projections
from projections.reading import position
from projections.registry import active_schema


@dataclass
class Health:
    events: int = 0
    relay_position: int = 0
    relay_lag_seconds: float = 0.0
    projections: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (lag events, lag s)
    commands: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def relay_lag(self) -> int:
        return max(self.events - self.relay_position, 0)

    @property
    def dead_lettered(self) -> int:
        return sum(n for (source, outcome, _), n in self.commands.items() if source == "kafka" and outcome == "rejected")


def _age_after(conn: psycopg.Connection[Any], schema: sql.Identifier, after: int) -> float:
    """Seconds since the first event after ``after`` was recorded: how long it has waited."""
    row = conn.execute(
        sql.SQL(
            "SELECT extract(epoch FROM now() - (convert_from(state, 'UTF8')::jsonb -> 'meta' ->> 'recorded_at')"
            "::timestamptz) FROM {}.verkosto_events WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
        ).format(schema),
        (after,),
    ).fetchone()
    value = row[0] if row and not isinstance(row, dict) else (next(iter(row.values())) if row else None)
    return max(float(value or 0.0), 0.0)


def read_health(conn: psycopg.Connection[Any], base: str) -> Health:
    schema = sql.Identifier(base)
    health = Health()
    (health.events,) = _one(conn, sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}.verkosto_events").format(schema))
    (health.relay_position,) = _one(conn, sql.SQL("SELECT coalesce(max(position), 0) FROM {}.relay_positions").format(schema))
    if health.relay_lag:
        health.relay_lag_seconds = _age_after(conn, schema, health.relay_position)
    for projection in all_projections():
        rm = active_schema(conn, base, projection.name)
        applied = position(conn, rm)
        lag = max(health.events - applied, 0)
        health.projections[projection.name] = (lag, _age_after(conn, schema, applied) if lag else 0.0)
    for row in conn.execute(sql.SQL("SELECT source, outcome, reason, count FROM {}.command_outcomes").format(schema)):
        values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        health.commands[(values[0], values[1], values[2])] = values[3]
    return health


def _one(conn: psycopg.Connection[Any], query: sql.Composed) -> tuple[Any, ...]:
    row = conn.execute(query).fetchone()
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)  # type: ignore[union-attr]


class HealthCollector:
    """A prometheus_client collector that reads Health on every scrape."""

    def __init__(self, read: Any) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        health: Health = self.read()
        yield GaugeMetricFamily("verkosto_events_appended", "Events in the event store (last global position)",
                                value=health.events)
        commands = CounterMetricFamily("verkosto_commands", "Commands by source, outcome and reason",
                                       labels=["source", "outcome", "reason"])
        for (source, outcome, reason), count in sorted(health.commands.items()):
            commands.add_metric([source, outcome, reason], count)
        yield commands
        yield GaugeMetricFamily("verkosto_dlq_messages", "Kafka commands sent to the dead-letter topic",
                                value=health.dead_lettered)
        yield GaugeMetricFamily("verkosto_relay_lag_events", "Events not yet published", value=health.relay_lag)
        yield GaugeMetricFamily("verkosto_relay_lag_seconds", "Age of the oldest unpublished event",
                                value=health.relay_lag_seconds)
        events = GaugeMetricFamily("verkosto_projection_lag_events", "Events not yet applied", labels=["projection"])
        seconds = GaugeMetricFamily("verkosto_projection_lag_seconds", "Age of the oldest unapplied event",
                                    labels=["projection"])
        for name, (lag, age) in sorted(health.projections.items()):
            events.add_metric([name], lag)
            seconds.add_metric([name], age)
        yield events
        yield seconds
