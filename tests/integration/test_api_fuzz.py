"""schemathesis against the live API's own OpenAPI document: generated requests, valid
and invalid, for every operation; no answer may be a server error, and every answer must
match the schema the document declares for it (problems included)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.api.app import create_app
from services.auth import issue_token
from services.db import connect
from services.embedded import free_port
from services.settings import Settings


class LiveAPI:
    """The real API in uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveAPI:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str]]:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "fuzzer", ["admin"])
    with LiveAPI(settings) as api:
        # Something to find, so reads get past "unknown id" now and then.
        httpx.post(
            f"{api.url}/v1/partnerships",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "partner": {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]},
                "owner_unit": "research",
                "steward": "alice",
            },
        ).raise_for_status()
        yield api.url, token


EXAMPLES_PER_OPERATION = int(os.environ.get("VERKOSTO_FUZZ_EXAMPLES", "12"))  # more, by hand: 200


def test_no_generated_request_gets_a_server_error_or_an_undeclared_answer(live: tuple[str, str]) -> None:
    url, token = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            call()
        except Exception as failure:  # noqa: BLE001  (collected, then reported together)
            failures[f"{operation.method.upper()} {operation.path}"] = str(failure)[:2000]
    assert operations >= 15, "the document lists fewer operations than the API has"
    assert not failures, "\n\n".join(f"{name}:\n{detail}" for name, detail in failures.items())
