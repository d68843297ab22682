"""Fixtures the integration tier shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.application import Verkosto
from services.auth import issue_token
from services.db import connect
from services.settings import Settings
from tests.kafka_helpers import RunningIngest


@pytest.fixture
def running(app: Verkosto, settings: Settings) -> Iterator[RunningIngest]:
    """The command ingest, running in a thread against the test's schema and topics."""
    ingest = RunningIngest(app, settings)
    yield ingest
    ingest.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The API as an integrator sees it: a token that may write and read history (a test
    module asking for other scopes defines its own ``client``)."""
    with connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "integrator", ["events:write", "history:read"])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client
