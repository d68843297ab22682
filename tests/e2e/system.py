"""Runs `verkosto up` as a user would, and talks to it over HTTP and Kafka."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil


class System:
    """`verkosto up` in a data directory of its own. Without VERKOSTO_KAFKA_BOOTSTRAP it
    embeds the default broker, Apache Kafka (its JVM starts in a few seconds; the jars are
    cached by `make kafka`), or Tansu when the tests run with VERKOSTO_TEST_BROKER=tansu."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **(extra_env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, Any] = {}

    def start(self, timeout_s: float = 120.0) -> None:
        endpoints = self.data_dir / "endpoints.json"
        endpoints.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.output = open(self.data_dir / "up.out", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--data-dir", str(self.data_dir), "--api-port", "0"],
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while not endpoints.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"verkosto up exited: {(self.data_dir / 'up.out').read_text()[-3000:]}")
            assert time.monotonic() < deadline, "verkosto up did not come up in time"
            time.sleep(0.2)
        self.endpoints = json.loads(endpoints.read_text())
        self.started_in = time.monotonic() - (deadline - timeout_s)  # seconds until it was up
        self.token = (self.data_dir / "dev-token").read_text().strip()
        self.http = httpx.Client(base_url=self.endpoints["api_url"], timeout=30.0)

    def family(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as a person at the terminal would press it."""
        assert self.process is not None
        self.http.close()
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout_s)
        self.output.close()
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.interrupt()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "--data-dir", str(self.data_dir), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.auth(token))

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.auth(token))


def unique_names() -> dict[str, str]:
    """Own schema and topics, so a run against shared servers cannot collide with another.

    Servers named for the tests (VERKOSTO_TEST_*) are the system's servers here too, so
    the end-to-end run also covers pointing Verkosto at an existing PostgreSQL or Kafka.
    """
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    shared = {
        target: os.environ[source]
        for source, target in (
            ("VERKOSTO_TEST_DATABASE_URL", "VERKOSTO_DATABASE_URL"),
            ("VERKOSTO_TEST_KAFKA_BOOTSTRAP", "VERKOSTO_KAFKA_BOOTSTRAP"),
        )
        if os.environ.get(source)
    }
    return {
        **shared,
        "VERKOSTO_DB_SCHEMA": name,
        "VERKOSTO_COMMANDS_TOPIC": f"{name}.commands",
        "VERKOSTO_EVENTS_TOPIC": f"{name}.events",
        "VERKOSTO_DLQ_TOPIC": f"{name}.dlq",
        "VERKOSTO_INGEST_GROUP": f"{name}-ingest",
        "VERKOSTO_PROJECTOR_GROUP": f"{name}-projector",
    }


def run_system(tmp_path_factory: Any, label: str) -> Iterator[System]:
    """A module's own running system; on a shared server, nothing is left behind."""
    from services.db import drop_everything

    names = unique_names()
    running = System(tmp_path_factory.mktemp(label) / "data", names)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        if "VERKOSTO_DATABASE_URL" in names:
            drop_everything(names["VERKOSTO_DATABASE_URL"], names["VERKOSTO_DB_SCHEMA"])
