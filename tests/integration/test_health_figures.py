"""/metrics and `verkosto status` answer whatever state the read models are in: a figure
that cannot be read is reported as that figure's error, never as a 500 or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from projections.registry import active_schema
from services.api.app import create_app
from services.settings import Settings


def cli(settings: Settings, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VERKOSTO_DATABASE_URL": database_url or settings.require_database_url(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "VERKOSTO_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_a_broken_read_model_is_reported_as_its_figure_not_a_500(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        healthy = samples(client.get("/metrics").text)
        assert healthy['verkosto_health_up{check="projection:trust"}'] == 1
        assert healthy['verkosto_projection_parked_events{projection="trust"}'] == 0
        assert cli(settings, "status").returncode == 0

        with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
            trust = active_schema(conn, settings.db_schema, "trust")
            conn.execute(sql.SQL("DROP TABLE {}.positions").format(trust))  # lag cannot be read
            conn.execute(sql.SQL("DROP TABLE {}.parked").format(trust))  # nor what is parked
            # And a projection whose active version was lost altogether.
            conn.execute(
                sql.SQL("DELETE FROM {}.rm_active WHERE projection = 'networks'").format(
                    sql.Identifier(settings.db_schema)
                )
            )

        response = client.get("/metrics")
        assert response.status_code == 200
        broken = samples(response.text)
        for check in ("projection:trust", "parked:trust", "projection:networks", "parked:networks"):
            assert broken[f'verkosto_health_up{{check="{check}"}}'] == 0, check
        for check in ("events", "relay", "commands", "projection:ownership", "parked:ownership"):
            assert broken[f'verkosto_health_up{{check="{check}"}}'] == 1, check
        # Figures that could not be read are absent, not a reassuring 0.
        assert 'verkosto_projection_lag_events{projection="trust"}' not in broken
        assert 'verkosto_projection_parked_events{projection="networks"}' not in broken
        assert broken['verkosto_projection_lag_events{projection="ownership"}'] == 0
        assert "verkosto_events_appended" in broken

    status = cli(settings, "status")
    assert status.returncode == 4, status.stdout + status.stderr
    assert "Traceback" not in status.stderr
    assert "UndefinedTable" in status.stdout and "no active version" in status.stdout
    assert "projection ownership" in status.stdout  # the rest still answers


def test_status_without_a_database_says_so_without_a_traceback(settings: Settings) -> None:
    status = cli(settings, "status", database_url="postgresql://nobody@127.0.0.1:1/none")
    assert status.returncode == 4
    assert "Traceback" not in status.stderr and "database" in status.stdout
