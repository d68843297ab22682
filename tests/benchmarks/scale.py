"""Verkosto at an organisation's size: builds it through the real paths, then prints
p50/p99 for each row of issue 9's table.

    python -m tests.benchmarks.scale --partners 5000 --long 20 --long-events 3000 --years 6
    make bench-scale                       # the same, with SCALE_ARGS="..." to change it

The system runs as a deployment does: `verkosto run ingest | relay | projector | api`, each
a process of its own, on one PostgreSQL and one broker (VERKOSTO_DATABASE_URL /
VERKOSTO_KAFKA_BOOTSTRAP, else embedded PostgreSQL and Apache Kafka, Tansu without Java).
The organisation is sent as Kafka commands (the ingest records them, the relay publishes,
the projector applies); `--direct` records it straight through the application instead
(for ~1M events; the output says so), relay and projector still doing their part.

Sizes are knobs; times are reported, never asserted. A Rich table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from services import demo
from services.embedded import free_port
from services.settings import Settings, tansu_environment
from tests.benchmarks import scale_rows
from tests.benchmarks.infra import load_average, servers
from tests.benchmarks.scale_data import organisation
from tests.benchmarks.scale_probe import Row, send_and_wait
from tests.e2e.components import Deployment, wait_until


@dataclass
class Sizes:
    partners: int = 5000
    long: int = 20
    long_events: int = 3000
    years: float = 6.0
    samples: int = 50  # requests per row
    ingest_commands: int = 1000  # Kafka commands into long partnerships, then into short ones
    freshness_rate: float = 300.0
    direct: bool = False
    hold: bool = False  # keep the system up after the table, until Ctrl-C (for inspection)


@dataclass
class Outcome:
    rows: list[Row]
    commands: int  # sent to build the organisation
    refused: int  # of those, refused by the rules
    events: int  # in the event store at the end
    sent: int  # every command sent: the organisation's, the rows' Kafka commands and POSTs answered 2xx
    accepted: int  # commands accepted, from every source (command_outcomes)
    rejected: int  # commands rejected, from every source
    context: dict[str, Any] = field(default_factory=dict)


def settings_of(deployment: Deployment) -> Settings:
    env = deployment.env
    return Settings(
        database_url=deployment.database_url,
        kafka_bootstrap=deployment.bootstrap,
        db_schema=deployment.name,
        data_dir=Path(env["VERKOSTO_DATA_DIR"]),
        commands_topic=deployment.commands_topic,
        events_topic=deployment.events_topic,
        dlq_topic=deployment.dlq_topic,
        ingest_group=env["VERKOSTO_INGEST_GROUP"],
        projector_group=env["VERKOSTO_PROJECTOR_GROUP"],
    )


def load_directly(settings: Settings, messages: list[tuple[bytes, bytes]]) -> tuple[float, int]:
    """Records the commands through the application, 500 a batch (what the ingest does,
    without Kafka); returns (seconds, refused)."""
    from contract.commands import any_command
    from services.application import Rejected, Request
    from services.db import open_application

    app = open_application(settings.require_database_url(), settings.db_schema)
    refused = 0
    started = time.perf_counter()
    try:
        for first in range(0, len(messages), 500):
            requests = []
            for _, value in messages[first : first + 500]:
                body = json.loads(value)
                actor = body.pop("actor")
                requests.append(Request(any_command.validate_python(body), actor=actor, source="kafka"))
            refused += sum(isinstance(o, Rejected) for o in app.execute(requests))
    finally:
        app.close()
    return time.perf_counter() - started, refused


def last_position(settings: Settings) -> int:
    from services.db import connect
    from services.store import EventStore

    with connect(settings.require_database_url()) as conn:
        return int(EventStore(settings.db_schema).last_position(conn))


def outcomes(settings: Settings) -> tuple[int, int]:
    """(accepted, rejected) commands from every source, as counted with their effects."""
    from services.db import connect
    from services.metrics import read_health

    with connect(settings.require_database_url()) as conn:
        counts = read_health(conn, settings.db_schema).commands
    accepted = sum(n for (_, outcome, _), n in counts.items() if outcome == "accepted")
    rejected = sum(n for (_, outcome, _), n in counts.items() if outcome == "rejected")
    return accepted, rejected


def run(database_url: str, bootstrap: str, sizes: Sizes, console: Console | None = None) -> Outcome:
    def say(text: str) -> None:
        if console is not None:
            console.print(text)

    work = Path(tempfile.mkdtemp(prefix="verkosto-scale-"))
    port = free_port()
    # The group timeouts chosen for the broker (short ones on Tansu) reach every component.
    timeouts = {k: v for k, v in os.environ.items() if k in tansu_environment()}
    deployment = Deployment(database_url, bootstrap, work, extra={**timeouts, "VERKOSTO_API_PORT": str(port)})
    try:
        deployment.migrate()
        deployment.create_topics()
        for kind in ("ingest", "relay", "projector", "api"):
            deployment.start(kind)
        settings = settings_of(deployment)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _up(base), 90, "the API to answer /healthz", 0.3)
        token = deployment.cli(
            "token",
            "issue",
            "--name",
            "scale-bench",
            "--scope",
            "events:write",
            "history:read",
            "dashboards:read",
            "admin",
        )
        assert token.returncode == 0, token.stderr
        org = organisation(sizes.partners, sizes.long, sizes.long_events, sizes.years, datetime.now(UTC))
        messages = org.messages()
        how = "DIRECTLY through the application (--direct)" if sizes.direct else "through Kafka"
        say(
            f"building {sizes.partners:,} partnerships ({sizes.long} long of {sizes.long_events:,} events): "
            f"{len(messages):,} commands {how}"
        )
        seconds = refused = 0
        for wave in demo.networks_last(messages):
            if sizes.direct:
                taken, refusals = load_directly(settings, wave)
            else:
                taken, refusals = send_and_wait(settings, wave, timeout_s=6 * 3600)
            seconds, refused = seconds + taken, refused + refusals
        load_row = Row(
            "load of the organisation" + (" (--direct, no Kafka)" if sizes.direct else " through Kafka"),
            rate=len(messages) / seconds,
            unit="commands/s",
            note=f"{len(messages):,} in {seconds:.0f} s, {refused} refused",
        )
        events = last_position(settings)
        caught = deployment.catch_up(timeout_s=6 * 3600)
        say(f"loaded in {seconds:.0f} s; relay and projections caught up {caught:.0f} s later; {events:,} events")
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        posted = Counter[bool]()

        def count_posts(response: httpx.Response) -> None:
            if response.request.method == "POST":
                posted[response.is_success] += 1

        hooks = {"response": [count_posts]}
        with httpx.Client(base_url=base, headers=headers, timeout=60, event_hooks=hooks) as client:
            target = scale_rows.Target(
                client,
                settings,
                {k: v for k, v in deployment.env.items() if k.startswith("VERKOSTO_")},
                org,
                sizes.samples,
                sizes.ingest_commands,
            )
            rows = [load_row, *scale_rows.writes(target)]
            deployment.catch_up(timeout_s=3600)
            rows += scale_rows.reads(target)
            rows.append(scale_rows.freshness(target, sizes.freshness_rate))
            deployment.catch_up(timeout_s=3600)
            rows.append(scale_rows.rebuild(target, last_position(settings)))
        deployment.assert_alive()
        accepted, rejected = outcomes(settings)
        sent = len(messages) + target.kafka_sent + posted[True]
        outcome = Outcome(rows, len(messages), refused, last_position(settings), sent, accepted, rejected)
        if sizes.hold:
            report(outcome, console or Console(width=170))
            hold(deployment, base, headers)
    except BaseException:
        print(f"the components' logs are kept in {work}", file=sys.stderr)
        raise
    finally:
        deployment.stop_all()
        deployment.drop()
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def hold(deployment: Deployment, base: str, headers: dict[str, str]) -> None:
    """Keeps the system up, saying how to reach it, until Ctrl-C or SIGTERM."""
    print(f"holding: API {base}, {headers['Authorization']}", flush=True)
    for name, value in sorted(deployment.env.items()):
        if name.startswith("VERKOSTO_"):
            print(f"  {name}={value}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (a background job ignores SIGINT)
        print("stopping", flush=True)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def report(outcome: Outcome, console: Console) -> None:
    table = Table(title="Verkosto at scale (p50 / p99 of sequential requests; this machine)")
    for column in ("what", "n", "p50 ms", "p99 ms", "bytes", "rate", "non-2xx", "note"):
        table.add_column(column, justify="left" if column in ("what", "note") else "right")
    for r in outcome.rows:
        rate = f"{r.rate:,.0f} {r.unit}" if r.rate is not None else ""
        non_ok = sum(1 for s in r.statuses if not 200 <= s < 300)
        size = f"{r.size:,}" if r.size is not None else ""
        table.add_row(r.what, str(len(r.latencies_ms) or ""), _ms(r.p50), _ms(r.p99), size, rate, str(non_ok), r.note)
    console.print(table)
    print(
        json.dumps(
            {
                **outcome.context,
                "commands": outcome.commands,
                "sent": outcome.sent,
                "accepted": outcome.accepted,
                "refused": outcome.refused,
                "events": outcome.events,
                "rows": [r.as_json() for r in outcome.rows],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=5000, help="partnerships in all (the long ones included)")
    parser.add_argument("--long", type=int, default=20, help="partnerships with a long history")
    parser.add_argument("--long-events", type=int, default=3000, help="events of each long partnership")
    parser.add_argument("--years", type=float, default=6.0, help="the span of history")
    parser.add_argument("--samples", type=int, default=50, help="requests per table row")
    parser.add_argument(
        "--ingest-commands", type=int, default=1000, help="Kafka commands into long, then short, partnerships"
    )
    parser.add_argument(
        "--freshness-rate", type=float, default=300.0, help="background commands/s while freshness is measured"
    )
    parser.add_argument(
        "--direct", action="store_true", help="load through the application, not Kafka (for ~1M events)"
    )
    parser.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto")
    parser.add_argument("--hold", action="store_true", help="after the table, keep the system up until Ctrl-C")
    args = parser.parse_args()
    sizes = Sizes(
        partners=args.partners,
        long=args.long,
        long_events=args.long_events,
        years=args.years,
        samples=args.samples,
        ingest_commands=args.ingest_commands,
        freshness_rate=args.freshness_rate,
        direct=args.direct,
        hold=args.hold,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the embedded servers on the way out
    console = Console(width=170)
    with servers(args.broker) as found:
        start_load = load_average()
        console.print(f"broker: {found.broker}; load average at start: {start_load}")
        outcome = run(found.database_url, found.bootstrap, sizes, console)
        end_load = load_average()
        console.print(f"load average at end: {end_load}")
        outcome.context = {
            "broker": found.broker,
            "load_start": start_load,
            "load_end": end_load,
            "sizes": vars(args),
            "direct": args.direct,
        }
        report(outcome, console)


if __name__ == "__main__":
    main()
