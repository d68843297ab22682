"""`verkosto import partnerships FILE.csv [--dry-run] [--allow-similar] [--actor NAME]`:
onboarding what the organisation already has (services/importer.py), with a progress bar
and a summary. Exit 0: every row imported (or already there); 1: rows were refused; 2:
the file or the system could not be used, and nothing was imported."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when run: `verkosto --help` need not load the contract
    from services.importer import Report

COLUMNS_HELP = """columns (header row; ; or , delimited): partner, roles, unit, steward, since (required);
kind, stage, segment_now, segment_future, last_contact, contact_channel, contact_direction,
domains. Roles and domains: several separated by ; or , (quote them in a file of that
delimiter). since, last_contact: a date (midnight UTC) or ISO 8601 with an offset."""
SHOWN = 200  # rows listed a table; the summary counts them all


class NoDirectory(Exception):
    """The directory read model the duplicate check searches is not there."""


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"import:{getpass.getuser()}"  # who ran it, as far as this machine knows
    except (KeyError, OSError):
        return "import"


def run_import(settings: Any, data: bytes, actor: str, dry_run: bool, allow_similar: bool, console: Any) -> Report:
    """What the command does once the file is read: the benchmark times this too."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.composition import application
    from services.db import connect
    from services.importer import import_partnerships, similar_in

    app = application(settings)
    try:
        with connect(settings.require_database_url(), autocommit=True) as conn:
            try:
                similar = None if allow_similar else similar_in(conn, settings.db_schema)
            except LookupError as error:  # no directory read model: no duplicate check possible
                raise NoDirectory(str(error)) from error
            columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=console, transient=True, disable=dry_run) as bar:
                task = bar.add_task("rows", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                return import_partnerships(app, data, actor, dry_run=dry_run, similar=similar, progress=advance)
    finally:
        app.close()


def _segment(values: Any) -> str:
    return f"{values.segment_now.value} → {values.segment_future.value}" if values.segment_now else ""


def show(report: Report, seconds: float, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    if report.dry_run and report.created:
        table = Table(title=f"would be created ({len(report.created)})")
        for column in ("line", "partner", "stage", "segment", "partnership id"):
            table.add_column(column)
        for p in report.created[:SHOWN]:
            v = p.values
            table.add_row(str(p.row), escape(v.partner), v.stage.value, _segment(v), str(p.partnership_id))
        console.print(table)
    if report.refused:
        table = Table(title=f"refused ({len(report.refused)})")
        for column in ("line", "column", "reason", "message"):
            table.add_column(column, overflow="fold")
        for r in report.refused[:SHOWN]:
            table.add_row(str(r.row), r.column or "", r.reason, escape(r.message))
        console.print(table)
    if max(len(report.created), len(report.refused)) > SHOWN:
        console.print(f"(the first {SHOWN} rows of each table are shown)")
    summary = Table(title="import (dry run: nothing recorded)" if report.dry_run else "import")
    for column in ("would be created" if report.dry_run else "created", "already imported", "refused rows"):
        summary.add_column(column, justify="right")
    summary.add_column("events recorded", justify="right")
    summary.add_column("seconds", justify="right")
    refused_rows = len({r.row for r in report.refused})
    counts = (len(report.created), len(report.already_imported), refused_rows, report.events)
    summary.add_row(*(f"{n:,}" for n in counts), f"{seconds:.1f}")
    console.print(summary)


def cmd_import_partnerships(args: argparse.Namespace) -> int:
    from rich.console import Console

    from services.composition import settings_for
    from services.importer import MalformedCsv, read_rows

    console = Console()
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        read_rows(data)  # an unreadable file is said before anything connects
        started = time.perf_counter()
        report = run_import(settings_for(args), data, _actor(args), args.dry_run, args.allow_similar, console)
    except OSError as error:
        print(f"verkosto: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    except MalformedCsv as error:
        print(f"verkosto: {args.file} {error}; nothing was imported", file=sys.stderr)
        return 2
    except NoDirectory as error:
        print(f"verkosto: {error}; or pass --allow-similar to import without the duplicate check", file=sys.stderr)
        return 2
    show(report, time.perf_counter() - started, console)
    return 1 if report.refused else 0


def add_partnerships(import_sub: Any) -> None:
    """Adds `partnerships` to the `verkosto import` group."""
    partnerships = import_sub.add_parser(
        "partnerships",
        help="partnerships from a CSV file, one a row",
        description=__doc__,
        epilog=COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    partnerships.add_argument("file", metavar="FILE.csv", help="the CSV file; - reads standard input")
    partnerships.add_argument("--dry-run", action="store_true", help="list what would be created; record nothing")
    partnerships.add_argument(
        "--allow-similar", action="store_true", help="import rows whose partner closely matches an existing one"
    )
    partnerships.add_argument("--actor", help="recorded as who imported (default import:<your user name>)")
    partnerships.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    partnerships.set_defaults(func=cmd_import_partnerships)
