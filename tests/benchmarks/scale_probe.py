"""Timing helpers of the scale benchmark: HTTP probes with p50/p99 and sizes, Kafka
sends, and waiting for the ingest to have taken every command."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.bus import producer as make_producer
from services.db import connect
from services.metrics import read_health
from services.settings import Settings


@dataclass
class Row:
    """One line of the table: latencies in ms (or a rate), the answers' size, the statuses."""

    what: str
    latencies_ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    rate: float | None = None  # per second, for throughput rows
    unit: str = ""
    note: str = ""

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)

    @property
    def size(self) -> int | None:
        return int(statistics.median(self.sizes)) if self.sizes else None

    def as_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "n": len(self.latencies_ms),
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "bytes": self.size,
            "rate": self.rate,
            "unit": self.unit,
            "non_2xx": sum(1 for s in self.statuses if not 200 <= s < 300),
            "note": self.note,
        }


def probe(
    client: httpx.Client, what: str, method: str, make: Callable[[int], tuple[str, Any]], samples: int, warm: int = 2
) -> Row:
    """``samples`` requests, one after another; ``make(i)`` gives (path, JSON body or None).
    A couple of unmeasured ones first, so connection set-up and first-use caches are not counted."""
    row = Row(what)
    for i in range(-warm, samples):
        path, body = make(i)
        started = time.perf_counter()
        try:
            answer = client.request(method, path, json=body)
        except httpx.TransportError as error:  # a server that dropped the connection: reported, not fatal
            row.statuses.append(599)
            row.note = f"{type(error).__name__}: {error}"[:80]
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 0:
            row.latencies_ms.append(elapsed)
            row.sizes.append(len(answer.content))
            row.statuses.append(answer.status_code)
            if answer.status_code >= 400 and not row.note:
                row.note = f"{answer.status_code}: {answer.text[:70]}"
    return row


def commands_taken(settings: Settings) -> tuple[int, int]:
    """(accepted, refused) Kafka commands so far, as `verkosto status` counts them."""
    with connect(settings.require_database_url()) as conn:
        counts = read_health(conn, settings.db_schema).commands
    accepted = sum(n for (src, outcome, _), n in counts.items() if src == "kafka" and outcome != "rejected")
    refused = sum(n for (src, outcome, _), n in counts.items() if src == "kafka" and outcome == "rejected")
    return accepted, refused


def send_and_wait(settings: Settings, messages: list[tuple[bytes, bytes]], timeout_s: float) -> tuple[float, int]:
    """Sends ``messages`` to the commands topic and waits until the ingest has taken them
    all; returns (seconds from the first send, commands refused meanwhile)."""
    before = commands_taken(settings)
    producer = make_producer(settings)
    started = time.perf_counter()
    for key, value in messages:
        producer.send(settings.commands_topic, key=key, value=value)
    producer.flush()
    producer.close()
    deadline = time.monotonic() + timeout_s
    while True:
        accepted, refused = commands_taken(settings)
        if accepted + refused - sum(before) >= len(messages):
            return time.perf_counter() - started, refused - before[1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the ingest took {accepted + refused - sum(before)} of {len(messages)} commands")
        time.sleep(0.05)


class Background:
    """Sends commands at about ``rate`` a second from a thread, until stopped."""

    def __init__(self, settings: Settings, make: Callable[[int], tuple[str, dict[str, Any]]], rate: float) -> None:
        self.settings, self.make, self.rate = settings, make, rate
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        producer = make_producer(self.settings)
        started = time.perf_counter()
        while not self.stop.is_set():
            due = int((time.perf_counter() - started) * self.rate)
            while self.sent < due:
                key, command = self.make(self.sent)
                producer.send(self.settings.commands_topic, key=key.encode(), value=json.dumps(command).encode())
                self.sent += 1
            time.sleep(0.01)
        producer.flush()
        producer.close()

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)
