"""Typed configuration, read from ``VERKOSTO_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERKOSTO_", extra="ignore")

    # Unset means "embedded": `verkosto up` starts PostgreSQL and Tansu itself and
    # passes their addresses to the processes it runs through these same variables.
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path(".verkosto")

    db_schema: str = Field("verkosto", pattern=r"^[a-z_][a-z0-9_]*$")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # /docs (Swagger UI, served from the package); false turns it off. /redoc is always off.
    docs_enabled: bool = True
    # Failed bearer-token checks allowed per client address per minute before 429.
    auth_failures_per_minute: int = Field(10, ge=1)

    commands_topic: str = "verkosto.commands.v1"
    events_topic: str = "verkosto.events.v1"
    dlq_topic: str = "verkosto.commands.dlq.v1"
    topic_partitions: int = 3
    topic_replication: int = 1

    # Near 10 s suits both Tansu (which holds a group join for part of the rebalance
    # timeout) and Apache Kafka; every batch we process finishes far inside it.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_max_poll_interval_ms: int = 10_000
    kafka_request_timeout_ms: int = 30_000

    ingest_group: str = "verkosto-ingest"
    ingest_batch_size: int = 1000
    relay_batch_size: int = 2000
    relay_idle_sleep_s: float = 0.05
    projector_group: str = "verkosto-projector"
    projector_batch_size: int = 2000
    projector_batch_within_s: float = 0.2

    # Request limits: refused before the body is read whole or parsed (see api/limits.py).
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 20
    max_json_items: int = 5_000  # object members plus array items in one body

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "VERKOSTO_DATABASE_URL is not set: run `verkosto up`, or point it at PostgreSQL"
            )
        return self.database_url

    def require_kafka_bootstrap(self) -> str:
        if not self.kafka_bootstrap:
            raise RuntimeError(
                "VERKOSTO_KAFKA_BOOTSTRAP is not set: run `verkosto up`, or point it at Kafka"
            )
        return self.kafka_bootstrap
