"""What a command costs on a long aggregate, with and without snapshots and the cache.

    python -m tests.benchmarks.write_cost [--long 3000] [--commands 200]

Builds one partnership of ``--long`` events, then times ``--commands`` single-command
executes against it and against fresh partnerships, three ways: replaying everything
(``incremental_loading`` off: the behaviour before snapshots), cold (cache emptied before
each command: the latest snapshot plus the events after it) and hot (this process's
cache); then reads of current state and as_of/known_at (from checkpoints). Also the
Kafka-free decide+commit throughput of batches of 500 commands spread over long
partnerships. Uses VERKOSTO_DATABASE_URL when set, else an embedded PostgreSQL.
Reports; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract import commands as c
from domain.history import partnership_then
from domain.partnership import Partnership
from services.application import Request, Verkosto
from services.db import migrate, open_application
from services.history_checkpoints import state_then
from tests.benchmarks.infra import load_average


def opening(pid: uuid.UUID) -> Any:
    partner = {"name": "Pirkko Partneri", "kind": "person", "roles": ["user"]}
    return c.OpenPartnership(partnership_id=pid, partner=partner, owner_unit="research", steward="Aino Aalto")


def contact(pid: uuid.UUID) -> Any:
    return c.LogContact(
        type="contact_logged",
        partnership_id=pid,
        channel="call",
        direction="inbound",
        participants=("Aino Aalto",),
        summary="talked about the pilot",
    )


def requests(*commands: Any) -> list[Request]:
    return [Request(command, actor="bench", source="api") for command in commands]


def build(app: Verkosto, events: int) -> uuid.UUID:
    pid = uuid.uuid4()
    app.execute(requests(opening(pid)))
    for start in range(1, events, 500):
        app.execute(requests(*(contact(pid) for _ in range(min(500, events - start)))))
    return pid


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def timed(n: int, step: Callable[[int], None]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        step(i)
        samples.append(time.perf_counter() - started)
    return samples


@contextmanager
def database() -> Iterator[str]:
    configured = os.environ.get("VERKOSTO_DATABASE_URL")
    if configured:
        yield configured
        return
    from services.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="verkosto-write-cost-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        try:
            yield postgres.start()
        finally:
            postgres.stop()


def measure(app: Verkosto, long_events: int, n: int) -> dict[str, Any]:
    long_ids = [build(app, long_events) for _ in range(3)]
    results: dict[str, Any] = {}
    for mode in ("replay", "cold", "hot"):
        app.incremental_loading = mode != "replay"
        app.cache.clear()
        fresh = [uuid.uuid4() for _ in range(n)]
        app.execute(requests(*(opening(f) for f in fresh)))
        app.get(long_ids[0], Partnership)  # warm: the first load of a mode fills cache/snapshot

        def on_long(_: int) -> None:
            if mode == "cold":
                app.cache.clear()
            app.execute(requests(contact(long_ids[0])))

        def on_fresh(i: int) -> None:
            if mode == "cold":
                app.cache.clear()
            app.execute(requests(contact(fresh[i])))

        long_samples, fresh_samples = timed(n, on_long), timed(n, on_fresh)
        results[mode] = {
            "long": percentiles(long_samples),
            "fresh": percentiles(fresh_samples),
            "ratio_p50": round(statistics.median(long_samples) / statistics.median(fresh_samples), 2),
        }
        now = datetime.now(UTC) + timedelta(minutes=1)
        reads: dict[str, Callable[[int], Any]] = {
            "get_long": lambda _: app.get(long_ids[0], Partnership),
            "get_fresh": lambda i: app.get(fresh[i], Partnership),
            "as_of_long": lambda _: state_then(app, long_ids[0], Partnership, partnership_then, now, now),
            "as_of_fresh": lambda i: state_then(app, fresh[i], Partnership, partnership_then, now, now),
        }
        for name, read in reads.items():
            read(0)  # the first read of a mode may write its snapshot or checkpoints
            results[mode][name] = percentiles(timed(n, read))
        # Kafka-free decide+commit: batches of 500 commands over the long partnerships.
        batches = 4
        started = time.perf_counter()
        for b in range(batches):
            app.execute(requests(*(contact(long_ids[(b + k) % len(long_ids)]) for k in range(500))))
        results[mode]["decide_commit_per_s"] = round(batches * 500 / (time.perf_counter() - started))
    app.incremental_loading = True
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", type=int, default=3000)
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    with database() as url:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        migrate(url, schema)
        app = open_application(url, schema)
        try:
            results = measure(app, args.long, args.commands)
        finally:
            app.close()
    print(json.dumps({"load": load_average(), "long_events": args.long, "commands": args.commands, **results}))


if __name__ == "__main__":
    main()
