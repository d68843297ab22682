"""Each long-running component as a foreground process that stops cleanly on SIGTERM/SIGINT.

A component whose database or broker goes away does not die with it: the error is logged
(once per interval, not per attempt), the component is closed, and it is built again
after a backoff until the dependency is back. Asked to stop, every component is gone
within ``STOP_WITHIN_S`` seconds, whatever its dependencies are doing.

Nothing here ties a component to whoever started it: under `verkosto up` the supervisor
asks the kernel to signal its children if it dies (``PR_SET_PDEATHSIG``), so a component
started by hand with the same environment runs on its own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from services.db import open_application
from services.eventstore import CONNECT_TIMEOUT_S
from services.resilience import (
    BROKER,
    DATABASE,
    Backoff,
    RateLimitedLog,
    dependency_of,
    exit_soon,
    install_repeat_filter,
)
from services.settings import Settings

log = logging.getLogger(__name__)
HEALTHY_AFTER_S = 60.0  # a component that ran this long starts its backoff afresh


def bounded_connects() -> None:
    """Every libpq connection of this process (the projector's too) gives up after
    seconds on an unreachable server, unless the URL or environment says otherwise."""
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))


def stop_on_signals() -> threading.Event:
    bounded_connects()
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        exit_soon()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    install_repeat_filter()
    return stop


def _close(*parts: Any) -> None:
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception as error:  # closing after a lost dependency may fail too
            log.debug("closing %s failed: %s", type(part).__name__, error)


def _run_loop(settings: Settings, make: Callable[..., Any]) -> None:
    stop = stop_on_signals()
    backoff = Backoff()
    problems = RateLimitedLog(log)
    name = getattr(make, "__name__", "component")
    while not stop.is_set():
        app = component = None
        started = time.monotonic()
        try:
            app = open_application(settings.require_database_url(), settings.db_schema)
            component = make(app, settings)
            for dependency in (DATABASE, BROKER):  # said once, if it had failed before
                problems.recovered(dependency, "%s built again; the %s answers", name, dependency)
            component.run(stop)
            return
        except Exception as error:
            if stop.is_set():
                log.info("stopping after %s: %s", type(error).__name__, error)
                return
            dependency = dependency_of(error)
            if dependency is None:
                raise  # a bug or a broken invariant: let the supervisor see it
            if time.monotonic() - started > HEALTHY_AFTER_S:
                backoff.reset()
            delay = backoff.next()
            problems.failure(
                dependency,
                "the %s is unavailable (%s: %s); %s starts again in %.1f s",
                dependency,
                type(error).__name__,
                str(error).strip()[:300],
                name,
                delay,
            )
        finally:
            _close(component, app)
        stop.wait(delay)


def run_ingest(settings: Settings) -> None:
    from services.ingest import CommandIngest

    _run_loop(settings, CommandIngest)


def run_relay(settings: Settings) -> None:
    from services.relay import Relay

    _run_loop(settings, Relay)


def run_api(settings: Settings) -> None:
    import uvicorn

    from services.api.app import create_app

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            exit_soon()  # requests waiting on a lost database must not hold the stop
            super().handle_exit(sig, frame)

    install_repeat_filter()
    bounded_connects()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        timeout_graceful_shutdown=2,
    )
    Server(config).run()


PROJECTOR_ATTEMPT = "VERKOSTO_PROJECTOR_ATTEMPT"  # failed starts in a row, across exec


def run_projector(settings: Settings) -> None:
    """faust's worker, which exits when its broker or database fails it: then, unless it
    was asked to stop, this process waits (backing off) and replaces itself with a fresh
    projector (same pid, so a supervisor or systemd sees one process that recovers)."""
    import faust

    from services.composition import projector

    stopping: list[int] = []
    failures: list[BaseException] = []

    class Worker(faust.Worker):
        def _on_sigterm(self) -> None:
            stopping.append(signal.SIGTERM)
            exit_soon()
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            stopping.append(signal.SIGINT)
            exit_soon()
            super()._on_sigint()

        def _setup_logging(self) -> None:
            super()._setup_logging()  # faust replaces the handlers: filter the new ones
            install_repeat_filter()

        async def start(self) -> None:
            try:
                await super().start()
            except Exception as error:
                failures.append(error)
                raise

    install_repeat_filter()
    bounded_connects()
    started = time.monotonic()
    app = projector(settings)
    worker = Worker(app, loglevel="info")
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        if stopping or not done.code:
            raise
        reason = next((r for r in (*failures, worker.crash_reason, app.crash_reason) if r is not None), None)
        dependency = dependency_of(reason) if reason is not None else None
        if dependency is None:
            raise  # a bug: exit, and let whoever runs us decide
        attempt = 0 if time.monotonic() - started > HEALTHY_AFTER_S else int(os.environ.get(PROJECTOR_ATTEMPT, "0"))
        backoff = Backoff(maximum=15.0)  # a faust start is not cheap: wait longer between
        backoff.attempts = attempt
        delay = backoff.next()
        log.warning(
            "the %s is unavailable (%s: %s); the projector starts again in %.1f s",
            dependency,
            type(reason).__name__,
            str(reason).strip()[:300],
            delay,
        )
        time.sleep(delay)  # the event loop is closed: a SIGTERM now simply ends us
        restart_projector(settings, attempt + 1)


def restart_projector(settings: Settings, attempt: int) -> None:
    os.environ[PROJECTOR_ATTEMPT] = str(attempt)
    for name, value in (
        ("VERKOSTO_DATABASE_URL", settings.database_url),
        ("VERKOSTO_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
        ("VERKOSTO_DATA_DIR", str(settings.data_dir)),
    ):
        if value:
            os.environ[name] = value
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execv(sys.executable, [sys.executable, "-m", "services.cli", "run", "projector"])
