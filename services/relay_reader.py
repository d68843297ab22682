"""The relay's reader: a child process that reads the notification log and encodes each
event as the bus carries it, a page or two ahead of the relay that sends them.

Why a process: kafka-python's ``send`` costs the relay's interpreter most of its time,
and reading, unsealing and encoding an event costs about as much again under the same
lock (the GIL). In a process of its own that work runs beside the sending, on another
core, instead of before it.

The reader only reads: it never records a position. The relay sends what it receives in
order and records positions only once the broker has acknowledged them, so a reader that
runs ahead changes nothing about what a restarted relay resends.

Protocol over one pipe: the reader first says ``("ready", None)`` once it can read. Each
``True`` the relay sends asks for the next page after the last one read; ``None`` says
stop. The reader answers ``("page", [(position, key, value), …])`` or ``("error",
exception)``. When nothing is new it keeps looking (every ``idle_s``) and answers as soon
as something is, or with an empty page once ``hold_s`` has passed. Answering an empty
page at once instead left the relay sleeping on it while the pages read ahead went stale:
one or two idle sleeps more on every write's way to the read models. The reader
ends when asked, or when the relay's end of the pipe closes (the relay died), which its
blocking ``recv``/``send`` notice, or when the relay's process dies (SIGTERM from the
kernel, on Linux), so it never outlives the relay.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

Page = list[tuple[int, bytes, bytes]]  # (position, key, value) of each event, in order
PREFETCH = 2  # pages asked for ahead: one being read while the relay sends another
FIRST_PAGE = 250  # events; pages double from here up to the relay's batch size
STOP_S = 5.0


def encode_page(app: Any, position: int, limit: int, reveal: bool) -> Page:
    """The events after ``position`` as the relay publishes them (contract.events)."""
    from contract.events import published_event

    notifications = app.recorder.select_notifications(start=position, limit=limit, inclusive_of_start=False)
    unseal = app.reveal if reveal else None
    if reveal:  # the page's subjects' keys in one query, not a round trip each
        app.keys.prefetch(n.state for n in notifications)
    dumps = json.dumps
    return [
        (n.id, str(n.originator_id).encode(), dumps(published_event(n.topic, n.state, n.id, unseal)).encode())
        for n in notifications
    ]


@dataclass(frozen=True)
class Pacing:
    """How the reader waits while nothing is new (from the relay's settings)."""

    idle_s: float  # between looks at the notification log
    hold_s: float  # before it answers "nothing new" (the relay then settles its page in flight)


def _next_page(app: Any, position: int, size: int, reveal: bool, pacing: Pacing) -> Page:
    """The next page, waiting up to ``pacing.hold_s`` for one that is not empty."""
    give_up = time.monotonic() + pacing.hold_s
    while not (page := encode_page(app, position, size, reveal)) and time.monotonic() < give_up:
        time.sleep(pacing.idle_s)
    return page


def _serve(
    pipe: Connection,
    relay_pid: int,
    database_url: str,
    schema: str,
    position: int,
    limit: int,
    reveal: bool,
    pacing: Pacing,
) -> None:
    from services.db import open_application
    from services.embedded import _die_with_parent

    # A relay killed while we wait on a hung database must not leave us behind (the pipe
    # would tell us only once the database answers). Bound to the relay's thread that
    # started us: the one that runs the relay.
    _die_with_parent()
    if os.getppid() != relay_pid:
        return  # it died before we asked to die with it
    # Ctrl-C reaches the whole process group: the relay stops, and its closing the pipe
    # stops this process (no second traceback from here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = None
    try:
        app = open_application(database_url, schema)
        pipe.send(("ready", None))
        # The first pages are small and grow to ``limit``: the relay sends nothing until a
        # page is read, so a large first page would only delay the pipeline filling.
        size = min(limit, FIRST_PAGE)
        while pipe.recv():
            page = _next_page(app, position, size, reveal, pacing)
            size = min(limit, size * 2)
            if page:
                position = page[-1][0]
            pipe.send(("page", page))
    except (EOFError, BrokenPipeError):
        return  # the relay is gone
    except Exception as error:  # the relay raises it (a lost database is retried there)
        try:
            pipe.send(("error", error))
        except Exception:
            pipe.send(("error", RuntimeError(f"relay reader failed: {type(error).__name__}: {error}")))
    finally:
        if app is not None:
            app.close()


class PageReader:
    """The relay's side: pages of encoded events after ``position``, read ahead."""

    def __init__(self, database_url: str, schema: str, position: int, limit: int, reveal: bool, pacing: Pacing) -> None:
        # spawn, not fork: the relay's process already runs the producer's I/O thread.
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=_serve,
            args=(child, os.getpid(), database_url, schema, position, limit, reveal, pacing),
            name="verkosto-relay-reader",
            daemon=True,
        )
        self.process.start()
        child.close()  # ours is the only end left in this process: the reader sees us go
        self.ready = False
        for _ in range(PREFETCH):
            self.pipe.send(True)

    def wait_ready(self) -> None:
        """Returns once the reader has started (a new interpreter, its imports and its
        database connection: most of a second, once per relay)."""
        if not self.ready:
            kind, _ = self._receive()
            assert kind == "ready", kind
            self.ready = True

    def _receive(self) -> tuple[str, Any]:
        """The reader's next message; its error, if it sent one, raised here."""
        try:
            kind, body = self.pipe.recv()
        except EOFError:
            raise RuntimeError(f"the relay's reader ended (exit code {self.process.exitcode})") from None
        if kind == "error":
            raise body
        return kind, body

    def next_page(self) -> Page:
        self.wait_ready()
        _, body = self._receive()
        self.pipe.send(True)  # keep PREFETCH pages asked for
        page: Page = body
        return page

    def close(self) -> None:
        try:
            self.pipe.send(None)
        except OSError:
            pass  # already gone
        self.pipe.close()
        self.process.join(STOP_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_S)
