"""A rebuild's replay of history, and its division by aggregate between worker processes.

Folding an event is Python work (decoding, unsealing, the trust model), so one process
uses one core however fast PostgreSQL is. Each worker opens its own share of the history
(every aggregate's events land in exactly one share, in order) and applies it to the new
versions with its own connection; the shares touch disjoint rows, so the workers never
wait for each other except on the versions' one replay ``positions`` row, which each
batch updates last (see ``projections.tracking``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg

from projections.registry import Projection
from projections.tracking import REPLAY_PARTITION, Delivered, Tracker

# Below this many events a rebuild runs in its own process: a worker's start-up (a fresh
# interpreter importing the projections) costs more than it would save.
PARALLEL_FROM = 20_000
MAX_WORKERS = 4

# A share of the history, described in JSON: "factory" names a callable as "module:name"
# (services/replay.py's StoreHistory; this layer does not import services) and "args" are
# its arguments. Tasks travel to workers as JSON, never pickled.
Opener = dict[str, Any]


def open_share(opener: Opener) -> Any:
    module, _, name = opener["factory"].partition(":")
    return getattr(importlib.import_module(module), name)(*opener["args"])


# Events per page (and per transaction): large enough that the per-statement cost
# vanishes, small enough that a page's decoded events stay a few tens of megabytes.
PAGE = 10_000
Progress = Callable[[int, int], None]  # (position reached, last position)


class EventSource(Protocol):
    """The history a rebuild replays. The event store lives in the services layer, which
    this one does not import: its caller passes it in (services/replay.py's StoreHistory)."""

    def last_position(self) -> int:
        """The global position of the last recorded event (0 if none)."""
        ...

    def events_after(self, after: int, until: int | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` published events (contract.events.published_event, personal
        fields revealed: read models hold what was revealed, never ciphertext) after
        position ``after`` and up to ``until`` if given, in global order."""
        ...

    def close(self) -> None: ...


Page = Callable[[int, int | None, int], tuple[list[dict[str, Any]], int]]


def _pages(source: EventSource) -> Page:
    """``source``'s pages as (events, position of the last row read): a share of a
    history may read rows that are none of its own (see services/replay.py)."""
    page: Page | None = getattr(source, "events_page", None)
    if page is not None:
        return page

    def events_page(after: int, until: int | None, limit: int) -> tuple[list[dict[str, Any]], int]:
        events = source.events_after(after, until, limit)
        return events, (events[-1]["position"] if events else after)

    return events_page


async def replay(
    conn: psycopg.AsyncConnection[Any],
    source: EventSource,
    base: str,
    projections: Sequence[Projection],
    schemas: dict[str, str],
    after: int,
    until: int | None,
    progress: Progress,
) -> int:
    """Applies the history after ``after`` (up to ``until``) to the new versions; returns
    the last position read. Reading runs in a thread one page ahead of applying, so the
    database's work on one page overlaps the reading and decoding of the next."""
    tracker = Tracker(base)
    page = _pages(source)

    def read(after: int) -> tuple[list[Delivered], int]:
        events, read_to = page(after, until, PAGE)
        return [Delivered(REPLAY_PARTITION, e["position"], e) for e in events], read_to

    ahead = asyncio.ensure_future(asyncio.to_thread(read, after))
    try:
        while True:
            batch, read_to = await ahead
            if read_to == after:
                return after
            after = read_to
            ahead = asyncio.ensure_future(asyncio.to_thread(read, after))
            if batch:
                await tracker.apply(conn, projections, batch, schemas=schemas)
            progress(after, max(until or after, after))
    finally:
        if not ahead.done():
            ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)


def default_workers(events: int) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS)) if events >= PARALLEL_FROM else 1


def splittable(source: Any, projections: Sequence[Projection]) -> bool:
    """The source can open shares in other processes, and the projections are the
    catalog's own, so a worker finds them by name."""
    from projections.catalog import by_name

    if not callable(getattr(source, "shares", None)):
        return False
    try:
        return all(type(by_name(p.name)) is type(p) for p in projections)
    except (KeyError, LookupError, ValueError):
        return False


def replay_in_workers(
    database_url: str,
    base: str,
    projections: Sequence[Projection],
    schemas: dict[str, str],
    openers: Sequence[Opener],
    until: int,
    progress: Progress,
) -> None:
    """Replays every share up to ``until`` in its own process; returns when all are
    done, raises if one fails (the new versions are then left unswapped)."""
    # Fresh interpreters running this module, not multiprocessing's spawn: that would
    # import the caller's __main__ again, and a script without a main guard would rebuild
    # in every worker. The task goes in as JSON on stdin, progress comes back as lines.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
        )
        for _ in openers
    ]
    lines: queue.Queue[tuple[int, str]] = queue.Queue()
    done: set[int] = set()

    def listen(index: int, worker: subprocess.Popen[bytes]) -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            lines.put((index, line.decode().strip()))
        lines.put((index, "exited"))

    try:
        for index, (worker, opener) in enumerate(zip(workers, openers, strict=True)):
            assert worker.stdin is not None
            task = {
                "opener": opener,
                "database_url": database_url,
                "base": base,
                "projections": [p.name for p in projections],
                "schemas": schemas,
                "until": until,
            }
            worker.stdin.write(json.dumps(task).encode())
            worker.stdin.close()
            threading.Thread(target=listen, args=(index, worker), daemon=True).start()
        reached = dict.fromkeys(range(len(workers)), 0)
        while len(done) < len(workers):
            index, line = lines.get()
            kind, _, value = line.partition(" ")
            if kind == "at":
                reached[index] = int(value)
                # Every share is applied up to the slowest one's position.
                progress(min(reached.values()), until)
            elif kind == "done":
                done.add(index)
            elif kind == "exited" and index not in done:
                code = workers[index].wait()
                raise RuntimeError(f"rebuild worker {index} exited ({code}) before it finished (see its stderr)")
    finally:
        for index, worker in enumerate(workers):
            if index in done:
                try:
                    worker.wait(timeout=10)  # done: it only closes its connection
                    continue
                except subprocess.TimeoutExpired:
                    pass
            if worker.poll() is None:
                worker.kill()  # a failed rebuild stops every share
            worker.wait()


def _work() -> None:
    from projections.catalog import by_name
    from projections.gc_tuning import tune_gc

    task = json.loads(sys.stdin.buffer.read())
    tune_gc()
    database_url, base, schemas, until = task["database_url"], task["base"], task["schemas"], task["until"]
    projections = [by_name(name) for name in task["projections"]]
    out = sys.stdout

    def report(reached: int, _last: int) -> None:
        out.write(f"at {reached}\n")
        out.flush()

    source = open_share(task["opener"])
    try:

        async def share() -> None:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                await replay(conn, source, base, projections, schemas, 0, until, report)

        asyncio.run(share())
    finally:
        source.close()
    out.write("done\n")
    out.flush()


if __name__ == "__main__":
    _work()
