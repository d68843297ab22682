"""`verkosto projections retry [NAME]`: apply parked events again, after a fix."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def cmd_retry(args: argparse.Namespace) -> int:
    """Re-applies each projection's parked events in order; clears those that apply and
    keeps the rest with their new reason. Exits 0 when nothing stays parked, 3 otherwise."""
    import psycopg

    from projections.catalog import all_projections, by_name
    from projections.queries.reading import parked
    from projections.registry import active_schema
    from projections.tracking import Tracker
    from services.composition import settings_for

    settings = settings_for(args)
    database_url = settings.require_database_url()
    try:
        chosen = [by_name(args.name)] if args.name else all_projections()
    except LookupError as error:
        print(f"verkosto: {error}")
        return 2

    async def retry() -> list[tuple[str, int, int]]:
        tracker = Tracker(settings.db_schema)
        results = []
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            for projection in chosen:
                cleared, left = await tracker.retry_parked(conn, projection)
                results.append((projection.name, cleared, left))
        return results

    remaining = 0
    with psycopg.connect(database_url) as conn:
        for name, cleared, left in asyncio.run(retry()):
            remaining += left
            line = f"{name}: {cleared} applied and cleared, {left} still parked"
            if left:
                _, first = parked(conn, active_schema(conn, settings.db_schema, name))
                line += f"; first: {first}"
            print(line)
    return 0 if remaining == 0 else 3


def add_commands(projections_sub: Any) -> None:
    retry = projections_sub.add_parser("retry", help="apply parked events again (after a fix); clear those that apply")
    retry.add_argument("name", nargs="?", help="one projection (default: all)")
    retry.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    retry.set_defaults(func=cmd_retry)
