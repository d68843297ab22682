"""Health in numbers, read from PostgreSQL at scrape time: the database is where every
process records its effects and positions, so one scrape of the API sees them all.

Every figure is read on its own (in a savepoint): one that cannot be read is reported as
an error of its check, and the others are still answered. Nothing here raises.

Projection lag is measured per partition of the events topic: the relay records, from
the broker's acknowledgements, the last offset (and event position) it wrote to each
partition; each projection version records the furthest offset and position it applied
per partition. A partition is behind when the relay wrote an event there beyond what the
projection applied (or replayed in a rebuild); the events behind are the offsets between.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from psycopg import sql
from psycopg.rows import dict_row

from projections.catalog import all_projections
from projections.queries.reading import parked, partition_positions
from projections.registry import active_schema
from projections.tracking import REPLAY_PARTITION
from services.store import EventStore

log = logging.getLogger(__name__)


@dataclass
class ProjectionHealth:
    lag: int = 0  # events published and not applied, all partitions
    lag_seconds: float = 0.0  # age of the oldest of them (an upper bound)
    partitions: dict[int, tuple[int, float]] = field(default_factory=dict)  # partition -> (lag events, lag s)
    parked: int = 0
    first_parked: str | None = None


@dataclass
class Health:
    events: int = 0
    relay_position: int = 0
    relay_lag_seconds: float = 0.0
    relay_partitions: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (offset, position)
    projections: dict[str, ProjectionHealth] = field(default_factory=dict)
    commands: dict[tuple[str, str, str], int] = field(default_factory=dict)
    checks: dict[str, str | None] = field(default_factory=dict)  # check -> None if read, else the error

    @property
    def relay_lag(self) -> int:
        return max(self.events - self.relay_position, 0)

    @property
    def dead_lettered(self) -> int:
        return sum(
            n for (source, outcome, _), n in self.commands.items() if source == "kafka" and outcome == "rejected"
        )

    @property
    def errors(self) -> dict[str, str]:
        return {check: error for check, error in self.checks.items() if error is not None}

    @property
    def parked(self) -> int:
        return sum(p.parked for p in self.projections.values())

    @property
    def behind(self) -> int:
        return (self.relay_lag if self.checks.get("relay", "") is None else 0) + sum(
            p.lag for name, p in self.projections.items() if self.checks.get(f"projection:{name}", "") is None
        )

    def ok(self) -> bool:
        """Nothing behind, nothing parked, and every figure could be read."""
        return not self.errors and self.behind == 0 and self.parked == 0


def failed(check: str, error: BaseException) -> Health:
    """Health when nothing could be read at all (e.g. no database connection)."""
    health = Health()
    health.checks[check] = f"{type(error).__name__}: {error}".strip()
    return health


def _scalar(conn: psycopg.Connection[Any], query: sql.Composable, params: tuple[Any, ...] = ()) -> Any:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    return next(iter(row.values())) if row else None


def _age_after(conn: psycopg.Connection[Any], schema: sql.Identifier, after: int) -> float:
    """Seconds since the first event after ``after`` was recorded: how long it has waited.
    Parsed here, not by PostgreSQL, whose json refuses an old event's escaped NUL."""
    state = EventStore(schema).state_after(conn, after)
    if state is None:
        return 0.0
    recorded = datetime.fromisoformat(json.loads(state)["meta"]["recorded_at"])
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - recorded).total_seconds(), 0.0)


def _check(conn: psycopg.Connection[Any], health: Health, check: str, read: Callable[[], None]) -> None:
    try:
        with conn.transaction():  # a savepoint: a failed figure leaves the others readable
            read()
    except Exception as error:  # reported as this check's error, never raised
        log.warning("health check %s failed: %s", check, error)
        health.checks[check] = f"{type(error).__name__}: {error}".strip()
    else:
        health.checks[check] = None


def read_health(conn: psycopg.Connection[Any], base: str) -> Health:
    schema = sql.Identifier(base)
    health = Health()

    def events() -> None:
        health.events = EventStore(schema).last_position(conn)

    def relay() -> None:
        health.relay_position = int(
            _scalar(conn, sql.SQL("SELECT coalesce(max(position), 0) FROM {}.relay_positions").format(schema))
        )
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                sql.SQL("SELECT partition, last_offset, position FROM {}.relay_partitions").format(schema)
            ).fetchall()
        for partition, offset, position in (tuple(r.values()) for r in rows):
            if partition not in health.relay_partitions or position > health.relay_partitions[partition][1]:
                health.relay_partitions[partition] = (int(offset), int(position))
        if health.checks.get("events", "") is None and health.relay_lag:
            health.relay_lag_seconds = _age_after(conn, schema, health.relay_position)

    def commands() -> None:
        with conn.cursor(row_factory=dict_row) as cur:
            for row in cur.execute(
                sql.SQL("SELECT source, outcome, reason, count FROM {}.command_outcomes").format(schema)
            ):
                health.commands[(row["source"], row["outcome"], row["reason"])] = int(row["count"])

    _check(conn, health, "events", events)
    _check(conn, health, "relay", relay)
    _check(conn, health, "commands", commands)
    for projection in all_projections():
        figures = health.projections[projection.name] = ProjectionHealth()

        def lag(name: str = projection.name, figures: ProjectionHealth = figures) -> None:
            if health.checks["relay"] is not None:
                raise RuntimeError("the relay's positions could not be read")
            _projection_lag(conn, schema, active_schema(conn, base, name), health, figures)

        def parked_events(name: str = projection.name, figures: ProjectionHealth = figures) -> None:
            figures.parked, figures.first_parked = parked(conn, active_schema(conn, base, name))

        _check(conn, health, f"projection:{projection.name}", lag)
        _check(conn, health, f"parked:{projection.name}", parked_events)
    return health


def _projection_lag(
    conn: psycopg.Connection[Any], schema: sql.Identifier, rm: sql.Identifier, health: Health, figures: ProjectionHealth
) -> None:
    own = partition_positions(conn, rm)
    replayed = own.pop(REPLAY_PARTITION, (0, 0))[1]  # a rebuild applied everything up to here
    for partition, (offset, position) in sorted(health.relay_partitions.items()):
        own_offset, own_position = own.get(partition, (-1, 0))
        reached = max(own_position, replayed)
        if position <= reached:
            figures.partitions[partition] = (0, 0.0)
            continue
        # Behind by position, so at least one event, whatever the offsets say (an offset
        # from a topic that was since recreated may be larger).
        behind = max(offset - own_offset, 1)
        figures.partitions[partition] = (behind, _age_after(conn, schema, reached))
    # Whatever the partitions show, every published event after the furthest one applied
    # anywhere is behind: this also covers a relay that has not yet recorded partitions.
    furthest = max([replayed, *(position for _, position in own.values())])
    floor = max(health.relay_position - furthest, 0)
    figures.lag = max(sum(lag for lag, _ in figures.partitions.values()), floor)
    ages = [age for lag, age in figures.partitions.values() if lag]
    if floor and not ages:
        ages.append(_age_after(conn, schema, furthest))
    figures.lag_seconds = max(ages, default=0.0)


class HealthCollector:
    """A prometheus_client collector that reads Health on every scrape."""

    def __init__(self, read: Callable[[], Health]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        try:
            health = self.read()
        except Exception as error:  # a scrape always answers; the failure is a figure
            log.warning("reading health failed: %s", error)
            health = failed("database", error)
        up = GaugeMetricFamily(
            "verkosto_health_up", "1 if the figures of this check could be read, else 0", labels=["check"]
        )
        for check, error in sorted(health.checks.items()):
            up.add_metric([check], 0 if error else 1)
        yield up
        ok = {check for check, error in health.checks.items() if error is None}
        if "events" in ok:
            yield GaugeMetricFamily(
                "verkosto_events_appended", "Events in the event store (last global position)", value=health.events
            )
        if "commands" in ok:
            commands = CounterMetricFamily(
                "verkosto_commands", "Commands by source, outcome and reason", labels=["source", "outcome", "reason"]
            )
            for (source, outcome, reason), count in sorted(health.commands.items()):
                commands.add_metric([source, outcome, reason], count)
            yield commands
            yield GaugeMetricFamily(
                "verkosto_dlq_messages", "Kafka commands sent to the dead-letter topic", value=health.dead_lettered
            )
        if {"events", "relay"} <= ok:
            yield GaugeMetricFamily("verkosto_relay_lag_events", "Events not yet published", value=health.relay_lag)
            yield GaugeMetricFamily(
                "verkosto_relay_lag_seconds", "Age of the oldest unpublished event", value=health.relay_lag_seconds
            )
        events = GaugeMetricFamily(
            "verkosto_projection_lag_events", "Published events not yet applied", labels=["projection"]
        )
        seconds = GaugeMetricFamily(
            "verkosto_projection_lag_seconds", "Age of the oldest unapplied event", labels=["projection"]
        )
        by_partition = GaugeMetricFamily(
            "verkosto_projection_partition_lag_events",
            "Events published to a partition and not yet applied from it",
            labels=["projection", "partition"],
        )
        by_partition_s = GaugeMetricFamily(
            "verkosto_projection_partition_lag_seconds",
            "Age of the oldest unapplied event of a partition (an upper bound)",
            labels=["projection", "partition"],
        )
        parked_events = GaugeMetricFamily(
            "verkosto_projection_parked_events",
            "Events a projection could not apply, parked until `verkosto projections retry`",
            labels=["projection"],
        )
        for name, figures in sorted(health.projections.items()):
            if f"projection:{name}" in ok:
                events.add_metric([name], figures.lag)
                seconds.add_metric([name], figures.lag_seconds)
                for partition, (lag, age) in sorted(figures.partitions.items()):
                    by_partition.add_metric([name, str(partition)], lag)
                    by_partition_s.add_metric([name, str(partition)], age)
            if f"parked:{name}" in ok:
                parked_events.add_metric([name], figures.parked)
        yield from (events, seconds, by_partition, by_partition_s, parked_events)
