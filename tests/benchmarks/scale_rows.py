"""The scale benchmark's measurements, one per row of issue 9's table, against a running
Verkosto (its API through ``client``, its Kafka topics through ``settings``)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.settings import Settings
from tests.benchmarks.infra import environment
from tests.benchmarks.scale_data import RARE_ACTOR, Organisation, contact
from tests.benchmarks.scale_probe import Background, Row, probe, send_and_wait

OPENING = {"partner": {"name": "Fresh Oy", "kind": "organisation", "roles": ["customer"]}, "owner_unit": "research"}


@dataclass
class Target:
    client: httpx.Client
    settings: Settings
    env: dict[str, str]  # VERKOSTO_* of the deployment, for the CLI run in this process
    org: Organisation
    samples: int
    ingest_commands: int  # sent to long partnerships, then as many to short ones
    kafka_sent: int = 0  # commands the rows sent through Kafka (the organisation's not counted)
    wrote: tuple[datetime, datetime] | None = None  # when writes() started and ended


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def writes(t: Target) -> list[Row]:
    """POST an event to a long partnership and to fresh ones; Kafka ingest into long and short."""
    began = datetime.now(UTC)
    fresh = []
    for i in range(5):
        answer = t.client.post("/v1/partnerships", json={**OPENING, "steward": f"Fresh{i}"})
        answer.raise_for_status()
        fresh.append(answer.json()["id"])
    body = {k: v for k, v in contact("x").items() if k not in ("partnership_id", "actor")}
    longs, shorts = t.org.long_ids, t.org.short_ids
    # First touches: the API process has never loaded these (the organisation was recorded
    # by the ingest, or in --direct by this process), so each load starts from the latest
    # snapshot plus the events after it. As many short partnerships, equally untouched,
    # are the like-for-like comparison; then the same writes again, now cached, against
    # partnerships opened just now.
    untouched = shorts[-len(longs) :]
    writes = [  # (row, partnerships, requests, unmeasured ones first)
        ("POST event → long partnership, first touch", longs, len(longs), 0),
        ("POST event → short partnership, first touch", untouched, len(untouched), 0),
        ("POST event → long partnership", longs, t.samples, 2),
        ("POST event → fresh partnership", fresh, t.samples, 2),
    ]
    rows = [
        probe(
            t.client,
            what,
            "POST",
            lambda i, ids=ids: (f"/v1/partnerships/{ids[i % len(ids)]}/events", body),
            samples,
            warm=warm,
        )
        for what, ids, samples, warm in writes
    ]
    for row, other, what in ((rows[0], rows[1], "an untouched short one"), (rows[2], rows[3], "a fresh one")):
        if row.p50 and other.p50:
            row.note = f"{row.p50 / other.p50:.1f}× {what} (p50)"
    writes_so_far = len(rows)
    n = t.ingest_commands
    # As many short partnerships as long ones: the two differ only in their history's length.
    for label, ids in (("long", longs), ("short", shorts[: len(longs)])):
        messages = [(ids[i % len(ids)].encode(), _json(contact(ids[i % len(ids)]))) for i in range(n)]
        seconds, refused = send_and_wait(t.settings, messages, timeout_s=600)
        t.kafka_sent += n
        rows.append(
            Row(
                f"Kafka ingest → {label} partnerships",
                rate=n / seconds,
                unit="commands/s",
                note=f"{n} sent, {refused} refused",
            )
        )
    kafka_long, kafka_short = rows[writes_so_far], rows[writes_so_far + 1]
    if kafka_long.rate and kafka_short.rate:
        kafka_long.note += f"; {kafka_long.rate / kafka_short.rate:.2f}× the short rate"
    t.wrote = (began, datetime.now(UTC))
    return rows


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def fixed(path: str) -> Callable[[int], tuple[str, Any]]:
    return lambda _: (path, None)


def reads(t: Target) -> list[Row]:
    long, short = t.org.long_ids[0], t.org.short_ids[0]
    middle = t.org.start + (t.org.now - t.org.start) / 2
    known = datetime.now(UTC)
    steward = "Aino"
    gets = [
        ("GET state, long", f"/v1/partnerships/{long}"),
        ("GET state, short", f"/v1/partnerships/{short}"),
        ("GET as_of/known_at, long", f"/v1/partnerships/{long}?as_of={_iso(middle)}&known_at={_iso(known)}"),
        ("GET owners?at=, long", f"/v1/partnerships/{long}/owners?at={_iso(middle)}"),
        ("GET lifecycle first page (limit=100)", "/v1/projections/lifecycle?limit=100"),
        ("GET lifecycle ?steward=", f"/v1/projections/lifecycle?steward={steward}&limit=100"),
        ("GET lifecycle ?flag=under_served", "/v1/projections/lifecycle?flag=under_served&limit=100"),
        ("GET portfolio", "/v1/projections/portfolio"),
        ("GET history, long (first page)", f"/v1/partnerships/{long}/history?limit=100"),
        ("GET trust, long (first page)", f"/v1/projections/trust/{long}?limit=100"),
    ]
    rows = [probe(t.client, what, "GET", fixed(path), t.samples) for what, path in gets]
    state_long, state_short = rows[0], rows[1]
    if state_long.p50 and state_short.p50:
        state_long.note = f"{state_long.p50 / state_short.p50:.1f}× a short one (p50)"
    day = t.org.start + timedelta(days=200)
    # The writes() phase: a window with events in it (reads() itself records none).
    recorded_from, recorded_to = t.wrote or (datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC))
    searches = [
        ("audit: actor (rare)", f"actor={RARE_ACTOR}"),
        ("audit: type", "type=ownership_transferred"),
        ("audit: source", "source=api"),
        ("audit: aggregate", f"aggregate_id={long}"),
        ("audit: occurred_at range (a week)", f"occurred_from={_iso(day)}&occurred_to={_iso(day + timedelta(days=7))}"),
        (
            "audit: recorded_at range (the writes above)",
            f"recorded_from={_iso(recorded_from)}&recorded_to={_iso(recorded_to)}",
        ),
    ]
    rows += [probe(t.client, what, "GET", fixed(f"/v1/audit/events?{q}&limit=100"), t.samples) for what, q in searches]
    return rows


def freshness(t: Target, rate: float) -> Row:
    """A POSTed contact, then the trust projection asked to wait for its position: the time
    from the write's answer to an answer that says caught_up, with Kafka commands arriving
    at ``rate`` a second meanwhile."""
    shorts = t.org.short_ids
    row = Row(f"freshness: write → caught_up at ~{rate:.0f} cmd/s")
    body = {k: v for k, v in contact("x").items() if k not in ("partnership_id", "actor")}
    with Background(t.settings, lambda i: (shorts[i % len(shorts)], contact(shorts[i % len(shorts)])), rate) as load:
        time.sleep(1.0)  # the load is flowing before the first write
        for i in range(t.samples):
            pid = shorts[(i * 7) % len(shorts)]
            receipt = t.client.post(f"/v1/partnerships/{pid}/events", json=body)
            row.statuses.append(receipt.status_code)
            if receipt.status_code >= 300:
                continue
            written = time.perf_counter()
            answer = t.client.get(
                f"/v1/projections/trust/{pid}?min_position={receipt.json()['position']}&wait_ms=10000"
            )
            row.latencies_ms.append((time.perf_counter() - written) * 1000)
            row.statuses.append(answer.status_code)
            if not answer.json().get("caught_up"):
                row.note = "some answers were not caught_up within 10 s"
            time.sleep(0.05)
        sent = load.sent
    t.kafka_sent += sent
    row.note = row.note or f"{sent} background commands sent"
    return row


def rebuild(t: Target, events: int) -> Row:
    """`verkosto projections rebuild` (every projection) run in this process, start-up excluded."""
    from services.cli import main as cli

    error = ""
    with environment(t.env), contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        try:
            code = cli(["projections", "rebuild"])
        except Exception as failure:  # reported in the table; the other rows still stand
            code, error = 1, f"{type(failure).__name__}: {failure}"
        seconds = time.perf_counter() - started
    if code != 0:
        return Row("rebuild (all projections)", statuses=[500], note=(error or f"exit {code}")[:100])
    return Row(
        "rebuild (all projections)",
        rate=events / seconds,
        unit="events/s",
        statuses=[200],
        note=f"{events:,} events in {seconds:.1f} s",
    )
