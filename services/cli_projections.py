"""`verkosto projections rebuild [NAME]` and `verkosto projections retry [NAME]`."""

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


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Replays the event store into a new version of every chosen projection in one pass
    (divided between worker processes by aggregate on a large history), with a progress
    bar, then swaps the new versions in."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from projections.catalog import all_projections, by_name
    from projections.rebuild import rebuild_many_sync
    from services.composition import settings_for
    from services.replay import StoreHistory

    settings = settings_for(args)
    try:
        chosen = [by_name(args.name)] if args.name else all_projections()
    except LookupError as error:
        print(f"verkosto: {error}")
        return 2
    url = settings.require_database_url()
    what = chosen[0].name if len(chosen) == 1 else f"{len(chosen)} projections"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress, StoreHistory(url, settings.db_schema) as history:
        task = progress.add_task(f"rebuilding {what}", total=None)

        def advance(reached: int, last: int) -> None:
            progress.update(task, completed=reached, total=max(last, reached))

        started = time.perf_counter()
        built = rebuild_many_sync(url, settings.db_schema, chosen, advance, source=history, workers=args.workers)
        seconds = time.perf_counter() - started
        last = history.last_position()
        for projection, (version, schema) in zip(chosen, built, strict=True):
            progress.console.print(f"{projection.name}: version {version} is active ({schema})")
        progress.console.print(
            f"replayed {last:,} events in {seconds:.1f} s ({last / max(seconds, 1e-9):,.0f} events/s)"
        )
    return 0


def add_rebuild(projections_sub: Any) -> None:
    """`projections rebuild`, for services/cli.py to register in place of its own."""
    rebuild = projections_sub.add_parser("rebuild", help="replay history into a new version, then swap it in")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all, in one pass)")
    rebuild.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes replaying shares of the history (default: by size and cores)",
    )
    rebuild.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    rebuild.set_defaults(func=cmd_rebuild)


def add_commands(projections_sub: Any) -> None:
    retry = projections_sub.add_parser("retry", help="apply parked events again (after a fix); clear those that apply")
    retry.add_argument("name", nargs="?", help="one projection (default: all)")
    retry.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    retry.set_defaults(func=cmd_retry)
