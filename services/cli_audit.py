"""The auditor's and the privacy officer's commands: verify, checkpoint, export, erase."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from uuid import UUID

from services.composition import settings_for


def cmd_audit(args: argparse.Namespace) -> int:
    from datetime import UTC

    from services.audit.chain import verify
    from services.audit.checkpoint import check, generate_key, sign
    from services.db import connect

    if args.audit_command == "export":
        return audit_export(args)
    if args.audit_command == "keygen":
        public = generate_key(Path(args.key))
        print(f"private key: {args.key} (keep it on the system)\npublic key: {public} (give it to the auditor)")
        return 0
    settings = settings_for(args)
    with connect(settings.require_database_url()) as conn:
        if args.audit_command == "checkpoint":
            checkpoint = sign(verify(conn, settings.db_schema), Path(args.key), datetime.now(UTC))
            text = json.dumps(checkpoint, indent=2)
            Path(args.output).write_text(text + "\n") if args.output else print(text)
            return 0
        if args.checkpoint:
            ok, message = check(
                conn, settings.db_schema, json.loads(Path(args.checkpoint).read_text()), Path(args.public_key)
            )
            print(("OK: " if ok else "FAILED: ") + message)
            return 0 if ok else 1
        verdict = verify(conn, settings.db_schema)
    if verdict.ok:
        print(f"OK: {verdict.checked} events chained; head at position {verdict.head_position} ({verdict.head_hash})")
        return 0
    print(f"FAILED at position {verdict.failed_at}: {verdict.problem} ({verdict.checked} events verified before it)")
    return 1


def audit_export(args: argparse.Namespace) -> int:
    """Streams a search as JSON Lines or CSV, and records the read like the API does."""
    import csv
    import getpass

    from psycopg import sql
    from psycopg.types.json import Jsonb
    from rich.progress import Progress

    from services.audit.search import EventQuery, search_all
    from services.db import connect
    from services.privacy import KeyStore, unseal_event

    settings = settings_for(args)
    keys = KeyStore(settings.require_database_url(), settings.db_schema)
    reveal = lambda topic, state: unseal_event(topic, state, keys)  # noqa: E731

    def when(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    query = EventQuery(
        args.actor,
        args.type,
        args.source,
        UUID(args.aggregate_id) if args.aggregate_id else None,
        args.aggregate_type,
        when(args.occurred_from),
        when(args.occurred_to),
        when(args.recorded_from),
        when(args.recorded_to),
    )
    columns = [
        "position",
        "aggregate_type",
        "aggregate_id",
        "version",
        "type",
        "occurred_at",
        "recorded_at",
        "actor",
        "on_behalf_of",
        "source",
        "command_id",
        "data",
    ]
    with (
        connect(settings.require_database_url(), autocommit=True) as conn,
        open(args.output, "w", newline="") as out,
        Progress(transient=True) as progress,
    ):
        conn.execute(
            sql.SQL("INSERT INTO {}.audit_reads (actor, path, query) VALUES (%s, %s, %s)").format(
                sql.Identifier(settings.db_schema)
            ),
            (
                f"cli:{getpass.getuser()}",
                "verkosto audit export",
                Jsonb(
                    {k: v for k, v in vars(query).items() if v is not None}, dumps=lambda v: json.dumps(v, default=str)
                ),
            ),
        )
        task = progress.add_task("exporting", total=None)
        writer = csv.DictWriter(out, columns, extrasaction="ignore") if args.format == "csv" else None
        if writer:
            writer.writeheader()
        count = 0
        for event in search_all(conn, settings.db_schema, query, reveal=reveal, keys=keys):
            if writer:
                writer.writerow({**event, "data": json.dumps(event["data"], sort_keys=True)})
            else:
                out.write(json.dumps(event, sort_keys=True) + "\n")
            count += 1
            progress.update(task, completed=count)
    print(f"exported {count} events to {args.output}")
    return 0


def cmd_privacy_erase(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from services.erasure import erase_subject

    settings = settings_for(args)
    with Progress() as progress:
        tasks: dict[str, int] = {}

        def advance(name: str, reached: int, last: int) -> None:
            task = tasks.setdefault(name, progress.add_task(f"rebuilding {name}", total=last))
            progress.update(task, completed=reached, total=max(last, reached))

        try:
            erase_subject(settings.require_database_url(), settings.db_schema, args.subject, advance)
        except ValueError as error:
            print(f"verkosto: {error}", file=sys.stderr)
            return 2
    print(f"erased {args.subject}: its key is destroyed and every read model was rebuilt")
    return 0
