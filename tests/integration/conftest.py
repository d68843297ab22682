"""Fixtures the integration tier shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.application import Verkosto
from services.settings import Settings
from tests.kafka_helpers import RunningIngest


@pytest.fixture
def running(app: Verkosto, settings: Settings) -> Iterator[RunningIngest]:
    """The command ingest, running in a thread against the test's schema and topics."""
    ingest = RunningIngest(app, settings)
    yield ingest
    ingest.close()
