"""Each long-running component as a foreground process that stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from services.db import open_application
from services.settings import Settings

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    watch_parent()
    return stop


def watch_parent() -> None:
    """Under `verkosto up`, exit if the supervisor dies, so nothing is left orphaned."""
    expected = os.environ.get("VERKOSTO_PARENT_PID")
    if not expected:
        return

    def watch() -> None:
        while True:
            if os.getppid() != int(expected):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _run_loop(settings: Settings, make: Callable[..., object]) -> None:
    stop = stop_on_signals()
    app = open_application(settings.require_database_url(), settings.db_schema)
    component = make(app, settings)
    try:
        component.run(stop)  # type: ignore[attr-defined]
    finally:
        component.close()  # type: ignore[attr-defined]
        app.close()


def run_ingest(settings: Settings) -> None:
    from services.ingest import CommandIngest

    _run_loop(settings, CommandIngest)


def run_relay(settings: Settings) -> None:
    from services.relay import Relay

    _run_loop(settings, Relay)


def run_api(settings: Settings) -> None:
    import uvicorn

    from services.api.app import create_app

    watch_parent()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")


def run_projector(settings: Settings) -> None:
    import faust

    from projections.app import create_app

    watch_parent()
    worker = faust.Worker(create_app(settings), loglevel="info")
    worker.execute_from_commandline()
