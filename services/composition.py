"""The composition root: where settings become the objects every process runs on.

Each process (`verkosto run …`, the CLI commands, the API) builds what it needs here and
nowhere else: its settings, the key store, the application, the read pool and the faust
app. Everything below takes what it needs as arguments.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from services.application import Verkosto
    from services.privacy import KeyStore


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings from the environment, else from a running system's endpoints.json."""
    settings = Settings()
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": Path(data_dir)})
    endpoints = settings.data_dir / "endpoints.json"
    if endpoints.exists() and getattr(args, "command", None) != "up":
        found = json.loads(endpoints.read_text())
        settings = settings.model_copy(
            update={
                "database_url": settings.database_url or found["database_url"],
                "kafka_bootstrap": settings.kafka_bootstrap or found["kafka_bootstrap"],
            }
        )
    return settings


def key_store(settings: Settings) -> KeyStore:
    from services.privacy import KeyStore

    return KeyStore(settings.require_database_url(), settings.db_schema)


def application(settings: Settings) -> Verkosto:
    from services.db import open_application

    return open_application(settings.require_database_url(), settings.db_schema)


def read_pool(settings: Settings) -> ConnectionPool:
    """The API's pool for read models, tokens and sessions: dict rows, short waits (a lost
    database is a quick 503, and the pool is used again once it is back)."""
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    from services.api import outage

    return ConnectionPool(
        settings.require_database_url(),
        min_size=1,
        max_size=8,
        open=True,
        kwargs={"autocommit": True, "row_factory": dict_row, **outage.connection_kwargs()},
        **outage.pool_settings(),
    )


def projector(settings: Settings) -> Any:
    """The faust app of the projector."""
    from projections.app import create_app

    return create_app(projector_config(settings))


def projector_config(settings: Settings) -> Any:
    """What the projector is told (a projections.app.ProjectorConfig)."""
    from projections.app import ProjectorConfig

    def seconds(ms: int | None) -> float | None:
        return ms / 1000 if ms is not None else None

    return ProjectorConfig(
        group=settings.projector_group,
        bootstrap=settings.require_kafka_bootstrap(),
        events_topic=settings.events_topic,
        database_url=settings.require_database_url(),
        db_schema=settings.db_schema,
        data_dir=settings.data_dir,
        batch_size=settings.projector_batch_size,
        batch_within_s=settings.projector_batch_within_s,
        session_timeout_s=seconds(settings.kafka_session_timeout_ms),
        heartbeat_interval_s=seconds(settings.kafka_heartbeat_interval_ms),
        max_poll_interval_s=seconds(settings.kafka_max_poll_interval_ms),
    )
