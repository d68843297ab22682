"""The event store's SQL on what is kept to load less: aggregates' snapshots
(services/snapshots.py), history checkpoints (services/history_checkpoints.py) and the
erasure generation that invalidates both; and the one round trip that loads aggregates
from them. Part of the adapter in services/store.py, on the same ``Tables``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.store import Row, Tables


class SnapshotStore(Tables):
    """The SQL on snapshots, history checkpoints and the erasure generation."""

    def load_rows(self, conn: Any, marks: dict[UUID, int | None]) -> list[Row]:
        """Everything loading these aggregates needs, in one round trip: rows of
        ``part`` 0 (one: the erasure generation, as originator_version), 1 (the snapshot
        of each aggregate whose mark is None) and 2 (each aggregate's events after its
        mark, or after its snapshot, or all), with originator_id, originator_version,
        topic, state, notification_id, by part, aggregate and version."""
        return self._all(
            conn,
            "WITH m AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[]) AS m(id, version)), "
            "s AS (SELECT s.originator_id, s.originator_version, s.topic, s.state "
            " FROM {schema}.aggregate_snapshots s JOIN m ON s.originator_id = m.id WHERE m.version IS NULL), "
            "b AS (SELECT m.id, coalesce(m.version, s.originator_version, 0) AS version "
            " FROM m LEFT JOIN s ON s.originator_id = m.id) "
            "SELECT 0 AS part, NULL::uuid AS originator_id, "
            " (SELECT coalesce(max(generation), 0) FROM {schema}.erasure_generation) AS originator_version, "
            " NULL::text AS topic, NULL::bytea AS state, NULL::bigint AS notification_id "
            "UNION ALL SELECT 1, originator_id, originator_version, topic, state, NULL FROM s "
            "UNION ALL SELECT 2, e.originator_id, e.originator_version, e.topic, e.state, e.notification_id "
            " FROM b JOIN {events} e ON e.originator_id = b.id AND e.originator_version > b.version "
            "ORDER BY part, originator_id, originator_version",
            (list(marks), list(marks.values())),
        )

    def save_snapshots(self, conn: Any, snapshots: Sequence[tuple[UUID, int, str, bytes]]) -> None:
        """Stores (originator_id, originator_version, topic, state) snapshots, each
        replacing an older one of its aggregate (never a newer one another writer left)."""
        if not snapshots:
            return
        ordered = sorted(snapshots, key=lambda s: str(s[0]))  # one lock order for every writer
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.aggregate_snapshots AS s (originator_id, originator_version, topic, state) "
                    "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) "
                    "ON CONFLICT (originator_id) DO UPDATE SET originator_version = EXCLUDED.originator_version, "
                    "topic = EXCLUDED.topic, state = EXCLUDED.state, created_at = now() "
                    "WHERE s.originator_version < EXCLUDED.originator_version"
                ),
                tuple(list(column) for column in zip(*ordered, strict=True)),
            )

    def checkpoint_for(self, conn: Any, aggregate_id: UUID, as_of: datetime, known_at: datetime) -> Row | None:
        """The latest history checkpoint whose events all occurred by ``as_of`` and were
        recorded by ``known_at`` (originator_version, max_occurred_at, max_recorded_at,
        view), with ``latest``, the version of the aggregate's latest checkpoint of all;
        None if the aggregate has none."""
        return self._one(
            conn,
            "SELECT c.originator_version, c.max_occurred_at, c.max_recorded_at, c.view, l.latest "
            "FROM (SELECT max(originator_version) AS latest FROM {schema}.history_checkpoints "
            "      WHERE originator_id = %(id)s) l "
            "LEFT JOIN LATERAL (SELECT * FROM {schema}.history_checkpoints WHERE originator_id = %(id)s "
            "      AND max_occurred_at <= %(as_of)s AND max_recorded_at <= %(known_at)s "
            "      ORDER BY originator_version DESC LIMIT 1) c ON true "
            "WHERE l.latest IS NOT NULL",
            {"id": aggregate_id, "as_of": as_of, "known_at": known_at},
        )

    def events_known(self, conn: Any, aggregate_id: UUID, after: int, as_of: datetime, known_at: datetime) -> list[Row]:
        """Like ``EventStore.events_since`` for one aggregate, but only the events that
        occurred by ``as_of`` and were recorded by ``known_at``: filtered here, so the
        events after a past moment are never sent, parsed or unsealed."""
        return self._all(
            conn,
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {events} "
            "WHERE originator_id = %s AND originator_version > %s "
            "AND ({schema}.stored_meta(state) ->> 'occurred_at')::timestamptz <= %s "
            "AND ({schema}.stored_meta(state) ->> 'recorded_at')::timestamptz <= %s "
            "ORDER BY originator_version",
            (aggregate_id, after, as_of, known_at),
        )

    def save_checkpoints(self, conn: Any, checkpoints: Sequence[tuple[UUID, int, datetime, datetime, bytes]]) -> None:
        """Stores (originator_id, originator_version, max_occurred_at, max_recorded_at,
        view) checkpoints; one already there (another reader's, equal) stays."""
        if not checkpoints:
            return
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.history_checkpoints "
                    "(originator_id, originator_version, max_occurred_at, max_recorded_at, view) "
                    "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::bytea[]) "
                    "ON CONFLICT DO NOTHING"
                ),
                tuple(list(column) for column in zip(*checkpoints, strict=True)),
            )

    def bump_erasure_generation(self, conn: Any) -> None:
        """Counts an erasure (call it in the transaction that destroys the key)."""
        with conn.cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {schema}.erasure_generation AS g (generation) VALUES (1) "
                    "ON CONFLICT (one) DO UPDATE SET generation = g.generation + 1"
                )
            )
