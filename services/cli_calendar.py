"""`verkosto import calendar FILE.ics --our-domain D [--our-domain D ...] [--timezone Z]
[--dry-run] [--actor NAME]`: meetings with known partners recorded as contacts
(services/calendar_capture.py), and a summary. Exit 0: done; 1: some contacts were
refused; 2: the file, the options or the system could not be used, and nothing was
recorded."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when run: `verkosto --help` need not load the contract
    from services.calendar_capture import Ours, Report

KEPT_HELP = """kept: for a meeting in which one of ours took part and whose other attendees include
a known partner's mail domain or exact name, a contact (channel meeting) on that
partnership: when, which partner, and the names of ours who took part. Dropped: every
address, the other attendees, the title, description and location."""
SHOWN = 200  # skipped and refused meetings listed; the summary counts them all


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"calendar:{getpass.getuser()}"  # who ran it, as far as this machine knows
    except (KeyError, OSError):
        return "calendar"


def run_capture(settings: Any, data: bytes, ours: Ours, actor: str, dry_run: bool) -> Report:
    from services.calendar_capture import capture, matcher_in
    from services.composition import application
    from services.db import connect

    app = application(settings)
    try:
        with connect(settings.require_database_url(), autocommit=True) as conn:
            return capture(app, data, ours, actor, matcher_in(conn, settings.db_schema), dry_run=dry_run)
    finally:
        app.close()


def show(report: Report, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    for title, rows, columns in (
        ("skipped", [(s.uid, s.start.isoformat() if s.start else "", s.reason) for s in report.skipped],
         ("UID", "start", "reason")),
        ("refused", [(r.uid, str(r.partnership_id), r.code, r.message) for r in report.refused],
         ("UID", "partnership id", "code", "message")),
    ):  # fmt: skip
        if rows:
            table = Table(title=f"{title} ({len(rows)})")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows[:SHOWN]:
                table.add_row(*(escape(cell) for cell in row))
            console.print(table)
    summary = Table(title="calendar (dry run: nothing recorded)" if report.dry_run else "calendar")
    counts = {"meetings": report.meetings, "recorded": report.recorded, "moved": report.moved,
              "cancelled": report.cancelled, "unchanged": report.unchanged, "skipped": len(report.skipped),
              "unmatched": report.unmatched, "refused": len(report.refused)}  # fmt: skip
    if report.dry_run:
        counts = {"meetings": report.meetings, "would record": report.recorded, "already recorded":
                  report.already_recorded, "would cancel": report.cancelled, "skipped": len(report.skipped),
                  "unmatched": report.unmatched}  # fmt: skip
    for column in counts:
        summary.add_column(column, justify="right")
    summary.add_row(*(f"{n:,}" for n in counts.values()))
    console.print(summary)


def cmd_import_calendar(args: argparse.Namespace) -> int:
    from rich.console import Console

    from services.calendar_capture import MalformedIcs, Ours
    from services.composition import settings_for

    try:
        ours = Ours.of(args.our_domain or [], args.timezone)
    except ValueError as error:
        print(f"verkosto: {error}", file=sys.stderr)
        return 2
    console = Console()
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        report = run_capture(settings_for(args), data, ours, _actor(args), args.dry_run)
    except OSError as error:
        print(f"verkosto: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    except MalformedIcs as error:
        print(f"verkosto: {args.file} {error}; nothing was recorded", file=sys.stderr)
        return 2
    except LookupError as error:  # no directory read model: nothing to match partners on
        print(f"verkosto: {error}", file=sys.stderr)
        return 2
    show(report, console)
    return 1 if report.refused else 0


def add_calendar(import_sub: Any) -> None:
    """Adds `calendar` to the `verkosto import` group."""
    calendar = import_sub.add_parser(
        "calendar",
        help="meetings with known partners, from an ICS file, as contacts",
        description=__doc__,
        epilog=KEPT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calendar.add_argument("file", metavar="FILE.ics", help="the iCalendar file; - reads standard input")
    calendar.add_argument(
        "--our-domain",
        action="append",
        metavar="DOMAIN",
        help="a mail domain of our organisation (and those below it): repeat for each; at least one",
    )
    calendar.add_argument(
        "--timezone", default="UTC", help="the zone of floating times and all-day dates (IANA name; default UTC)"
    )
    calendar.add_argument("--dry-run", action="store_true", help="say what would be recorded; record nothing")
    calendar.add_argument("--actor", help="recorded as who imported (default calendar:<your user name>)")
    calendar.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    calendar.set_defaults(func=cmd_import_calendar)
