"""Onboarding throughput: `verkosto import partnerships FILE.csv` on a generated file.

    .venv/bin/python -m tests.benchmarks.import_bench [--rows 10000] [--existing 1000]
                                                      [--broker auto|kafka|tansu]

First ``--existing`` partnerships are opened through the command path and the read models
rebuilt, so the duplicate check searches a directory that holds them. Then what the CLI
runs once it has read its arguments (services/cli_import.run_import, progress bar and
all; interpreter start-up not counted) takes a file of ``--rows`` rows (every stage but
ended, three in four segmented, half with a last contact: 3.05 events a row): a dry run
without the duplicate check and one with it (their difference is the check's cost), the
import, the same file again (idempotent: nothing recorded); then the relay publishes
what the import recorded to Kafka. Uses VERKOSTO_DATABASE_URL / VERKOSTO_KAFKA_BOOTSTRAP
when set, else embedded servers (tests/benchmarks/infra.py). Prints a table and one JSON
line; reports, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from contract import commands as c
from services.application import Request, Verkosto
from services.db import drop_everything, open_application
from services.relay import Relay
from services.settings import Settings
from tests.benchmarks.infra import environment, load_average, servers
from tests.benchmarks.run_benchmarks import fresh_settings, settings_env

HEADER = "partner,kind,roles,unit,steward,since,stage,segment_now,segment_future,last_contact,contact_channel,contact_direction,domains"  # noqa: E501
STAGES = ("analyse", "prioritise", "maintain", "manage", "wind_down")
IMPORTANCE = ("--", "-", "+", "++")
ROLES = ("customer", "funder", "user", "researcher", "supplier", "authority")
UNITS = ("research", "sales", "operations", "partnerships", "services")
NOW = datetime.now(UTC)


@dataclass
class Step:
    what: str
    rows: int
    events: int  # recorded by this step (published, for the relay)
    seconds: float
    refused: int = 0
    exit_code: int | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else float("nan")


def names(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """Made-up names of two four-syllable words: they share trigrams as real names do (the
    duplicate check has candidates to weigh), yet few come near enough to be refused."""
    found: list[str] = []
    while len(found) < count:
        words = ("".join(rng.choice("bdfghjklmnprstvz") + rng.choice("aeiouy") for _ in range(4)) for _ in range(2))
        name = " ".join(word.capitalize() for word in words)
        name += rng.choice(("", " Oy", " ry", " Ab"))
        if name not in taken:
            taken.add(name)
            found.append(name)
    return found


def csv_file(rng: random.Random, partners: list[str]) -> str:
    lines = [HEADER]
    for n, partner in enumerate(partners):
        since = NOW - timedelta(days=rng.randint(400, 4000))
        stage = STAGES[n % len(STAGES)]
        segment = (rng.choice(IMPORTANCE), rng.choice(IMPORTANCE)) if n % 4 else ("", "")
        contact = ("", "", "")
        if n % 2:
            at = since + timedelta(days=rng.randint(1, 390))
            contact = (
                at.date().isoformat(),
                rng.choice(("meeting", "call", "email")),
                rng.choice(("inbound", "outbound")),
            )
        roles = ";".join(rng.sample(ROLES, rng.randint(1, 2)))
        unit, steward = rng.choice(UNITS), f"Steward {n % 300:03d}"
        cells = (partner, "", f'"{roles}"', unit, steward, since.date().isoformat(), stage, *segment, *contact, "")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def seed(app: Verkosto, partners: list[str]) -> None:
    model = c.model("OpenPartnership")
    for start in range(0, len(partners), 500):
        app.execute(
            [
                Request(model.model_validate({"partner": {"name": name, "kind": "organisation", "roles": ["user"]},
                                              "owner_unit": "existing", "steward": "Seed"}), "bench", "api")
                for name in partners[start : start + 500]
            ]
        )  # fmt: skip


def rebuild(settings: Settings) -> None:
    """`verkosto projections rebuild`, in this process: the directory then holds the seeded partnerships."""
    from services.cli import main

    with environment(settings_env(settings)), contextlib.redirect_stdout(io.StringIO()):
        if main(["projections", "rebuild"]) != 0:
            raise RuntimeError("rebuild failed")


def timed_import(
    settings: Settings, app: Verkosto, what: str, path: Path, dry_run: bool = False, allow_similar: bool = False
) -> Step:
    """What `verkosto import partnerships` runs once it has parsed its arguments, with the
    duplicate check; its tables are printed where nobody reads them."""
    from services.cli_import import run_import, show

    before = app.recorder.max_notification_id() or 0
    quiet = Console(file=io.StringIO())
    started = time.perf_counter()
    found = run_import(settings, path.read_bytes(), "bench", dry_run, allow_similar, quiet)
    seconds = time.perf_counter() - started
    show(found, seconds, quiet)
    rows = len(found.created) + len(found.already_imported) + len({r.row for r in found.refused})
    events = (app.recorder.max_notification_id() or 0) - before
    return Step(what, rows, events, seconds, len({r.row for r in found.refused}), 1 if found.refused else 0)


def publish(app: Verkosto, settings: Settings, what: str = "") -> Step:
    relay = Relay(app, settings)
    try:
        relay.resume()
        started = time.perf_counter()
        while relay.publish_batch():
            pass
        return Step(what, 0, relay.published, time.perf_counter() - started)
    finally:
        relay.close()


def run(database_url: str, bootstrap: str, rows: int, existing: int, seed_value: int = 7) -> list[Step]:
    rng = random.Random(seed_value)
    taken: set[str] = set()
    settings = fresh_settings(database_url, bootstrap)
    app = open_application(database_url, settings.db_schema)
    path = settings.data_dir / f"partnerships-{uuid.uuid4().hex[:6]}.csv"
    try:
        seed(app, names(rng, existing, taken))
        rebuild(settings)
        publish(app, settings)  # the seeded events: the relay step below times the import's alone
        path.write_text(csv_file(rng, names(rng, rows, taken)), encoding="utf-8")
        return [
            timed_import(settings, app, "dry run, no duplicate check", path, dry_run=True, allow_similar=True),
            timed_import(settings, app, "dry run (nothing recorded)", path, dry_run=True),
            timed_import(settings, app, "import", path),
            timed_import(settings, app, "same file again (idempotent)", path),
            publish(app, settings, "relay: the import's events → Kafka"),
        ]
    finally:
        app.close()
        drop_everything(database_url, settings.db_schema)
        shutil.rmtree(settings.data_dir, ignore_errors=True)


def report(steps: list[Step], console: Console, context: dict[str, object]) -> None:
    table = Table(title="verkosto import partnerships (this machine; the CLI's own function, in process)")
    for column in ("step", "rows", "events", "seconds", "rows/s", "events/s", "exit code", "refused rows"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for s in steps:
        table.add_row(
            s.what,
            f"{s.rows:,}" if s.rows else "",
            f"{s.events:,}",
            f"{s.seconds:.2f}",
            f"{s.rows_per_s:,.0f}" if s.rows else "",
            f"{s.events_per_s:,.0f}" if s.events else "",
            "" if s.exit_code is None else str(s.exit_code),
            str(s.refused),
        )
    console.print(table)
    rows = [
        {**asdict(s), "rows_per_s": round(s.rows_per_s, 1), "events_per_s": round(s.events_per_s, 1)} for s in steps
    ]
    print(json.dumps({**context, "steps": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--existing", type=int, default=1_000)
    parser.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # embedded servers stop on the way out
    console = Console(width=140)
    with servers(args.broker) as found:
        load_before = load_average()
        console.print(f"broker: {found.broker}; load average at start: {load_before}")
        steps = run(found.database_url, found.bootstrap, args.rows, args.existing)
        load_after = load_average()
        console.print(f"load average at end: {load_after}")
        context = {"broker": found.broker, "rows": args.rows, "existing": args.existing}
        report(steps, console, {**context, "load_start": load_before, "load_end": load_after})


if __name__ == "__main__":
    main()
