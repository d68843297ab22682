"""Typed configuration, read from ``VERKOSTO_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# What `verkosto up` (and the tests) set for every process when the broker is Tansu.
TANSU_GROUP_TIMEOUTS: dict[str, int] = {
    "kafka_session_timeout_ms": 10_000,
    "kafka_heartbeat_interval_ms": 3_000,
    "kafka_max_poll_interval_ms": 10_000,
}


def tansu_environment() -> dict[str, str]:
    """TANSU_GROUP_TIMEOUTS as the VERKOSTO_* variables every process reads."""
    return {f"VERKOSTO_{name.upper()}": str(value) for name, value in TANSU_GROUP_TIMEOUTS.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERKOSTO_", extra="ignore", frozen=True)

    # Unset means "embedded": `verkosto up` starts PostgreSQL and a broker itself and
    # passes their addresses to the processes it runs through these same variables.
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path(".verkosto")
    # Which broker `verkosto up` embeds when VERKOSTO_KAFKA_BOOTSTRAP is unset: "kafka"
    # (Apache Kafka on the machine's Java, its log in <data_dir>/kafka: nothing acknowledged
    # is lost) or "tansu" (memory only: commands on the bus are lost on restart). Without
    # Java (or the jars), "kafka" falls back to Tansu, loudly.
    embedded_broker: Literal["kafka", "tansu"] = "kafka"

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
    # min.insync.replicas of the topics ensure_topics creates; unset means
    # min(2, topic_replication) when replicated, so acks=all survives one broker's loss.
    topic_min_insync_replicas: int | None = None

    # Group timeouts: Apache Kafka's client defaults (session 45 s, heartbeat 3 s, max poll
    # 300 s). Under embedded Tansu, `verkosto up` gives its children TANSU_GROUP_TIMEOUTS
    # instead (Tansu holds a group join for part of the rebalance timeout).
    kafka_session_timeout_ms: int = 45_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_max_poll_interval_ms: int = 300_000
    kafka_request_timeout_ms: int = 30_000
    # kafka-python backs off reconnecting up to 30 s by default: after a broker restart
    # the ingest then sat idle for half a minute with commands waiting. Two seconds finds
    # a broker back soon, at a few connection attempts a second while it is down.
    kafka_reconnect_backoff_max_ms: int = 2_000

    ingest_group: str = "verkosto-ingest"
    ingest_batch_size: int = 1000
    relay_batch_size: int = 2000
    # While nothing is new the relay's reader looks again every idle_sleep_s (the mean
    # wait it adds to a write's way to the read models is half of it), and says "nothing
    # new" after idle_hold_s, when the relay settles the page it has in flight.
    relay_idle_sleep_s: float = Field(default=0.02, gt=0)
    relay_idle_hold_s: float = Field(default=0.25, gt=0)
    projector_group: str = "verkosto-projector"
    # A batch is taken when it is full or when this long has passed since the last one.
    # The wait adds to every write's way to a caught-up read model; a longer one makes
    # larger batches in a catch-up (measured at 183k events: 0.2 s caught up ~30 % faster
    # than 0.03 s, with write → caught_up p50/p99 207/629 ms against 148/487 ms).
    projector_batch_size: int = 2000
    projector_batch_within_s: float = 0.03

    # Request limits: refused before the body is read whole or parsed (see api/limits.py).
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 20
    max_json_items: int = 5_000  # object members plus array items in one body

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("VERKOSTO_DATABASE_URL is not set: run `verkosto up`, or point it at PostgreSQL")
        return self.database_url

    def require_kafka_bootstrap(self) -> str:
        if not self.kafka_bootstrap:
            raise RuntimeError("VERKOSTO_KAFKA_BOOTSTRAP is not set: run `verkosto up`, or point it at Kafka")
        return self.kafka_bootstrap
