"""Living with lost infrastructure, piece by piece: which dependency an error names, a
component rebuilt after its database failed it, logs that say a repeated failure once per
interval, and a stop that cannot hang (services/resilience.py, services/runners.py)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from eventsourcing import persistence
from kafka.errors import KafkaError, KafkaTimeoutError

from projections.app import TopicNotAssigned
from services import resilience
from services.resilience import BROKER, DATABASE, Backoff, RateLimitedLog, RepeatFilter, dependency_of
from services.settings import Settings

UNREACHABLE = "postgresql://postgres@/postgres?host=/nonexistent-verkosto-socket-dir"


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except BaseException as error:
        return error


def test_errors_name_the_dependency_that_failed() -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(UNREACHABLE, connect_timeout=2)
    assert dependency_of(refused.value) == DATABASE
    assert dependency_of(psycopg_pool.PoolTimeout("couldn't get a connection after 1.00 sec")) == DATABASE
    assert dependency_of(raised_from(persistence.OperationalError("x"), refused.value)) == DATABASE
    assert dependency_of(KafkaTimeoutError("no metadata")) == BROKER
    # A rebalance callback that queried a lost database: the database is what failed.
    assert dependency_of(raised_from(KafkaError("User rebalance callback throws an error"), refused.value)) == DATABASE
    assert dependency_of(psycopg.errors.AdminShutdown()) == DATABASE  # the server is going away
    # The server answered: not an outage, but a bug or a conflict to report as such.
    assert dependency_of(psycopg.errors.DeadlockDetected()) is None
    assert dependency_of(psycopg.errors.UndefinedTable()) is None
    assert dependency_of(ValueError("bad input")) is None
    # An inner layer's own error that names its cause (it may not import kafka).
    assert dependency_of(TopicNotAssigned("no partition of the events topic assigned")) == BROKER


def test_backoff_grows_to_a_cap_and_starts_again() -> None:
    backoff = Backoff(initial=0.5, maximum=5.0)
    delays = [backoff.next() for _ in range(8)]
    assert 0.4 <= delays[0] <= 0.5 and delays[1] > delays[0] and delays[2] > delays[1]
    assert max(delays) <= 5.0 and delays[-1] >= 4.0
    backoff.reset()
    assert backoff.next() <= 0.5


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"test_resilience.{time.monotonic_ns()}")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    log.handlers.clear()


def test_a_repeated_failure_is_logged_once_per_interval_with_a_count(logger: logging.Logger) -> None:
    first, second = Records(), Records()
    repeat = RepeatFilter(interval_s=0.3)
    for handler in (first, second):
        handler.addFilter(repeat)
        logger.addHandler(handler)
    for attempt in range(500):
        logger.warning("Unable connect to node with id %s: %s", 1, f"attempt {attempt}")
    logger.info("progress is never held back")
    logger.info("progress is never held back")
    assert first.messages == second.messages  # one decision per record, whichever handler
    assert first.messages[0] == "Unable connect to node with id 1: attempt 0"
    assert first.messages[1:] == ["progress is never held back"] * 2
    time.sleep(0.35)
    logger.warning("Unable connect to node with id %s: %s", 1, "again")
    assert first.messages[-1] == "Unable connect to node with id 1: again [499 more like this in the last 0.3 s]"
    logger.error("a different failure")
    assert first.messages[-1] == "a different failure"


def test_a_component_says_a_failure_once_and_that_it_recovered(logger: logging.Logger) -> None:
    records = Records()
    logger.addHandler(records)
    log = RateLimitedLog(logger, interval_s=0.3)
    assert log.failure("database", "the database is unavailable")
    assert not any(log.failure("database", "the database is unavailable") for _ in range(50))
    time.sleep(0.35)
    assert log.failure("database", "the database is unavailable")
    log.recovered("database", "the database is back")
    log.recovered("database", "the database is back")  # said once
    assert records.messages == [
        "the database is unavailable",
        "the database is unavailable (50 more like this in the last 0.3 s)",
        "the database is back",
    ]


class Flaky:
    """A component whose first life meets an unreachable database; the second one works."""

    lives: list[float] = []
    closed = 0

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        Flaky.lives.append(time.monotonic())

    def run(self, stop: threading.Event) -> None:
        if len(Flaky.lives) == 1:
            psycopg.connect(UNREACHABLE, connect_timeout=2)  # raises OperationalError
        self.app.recorder.max_notification_id()  # the real database answers (else a third life)
        stop.set()

    def close(self) -> None:
        Flaky.closed += 1


class Broken(Flaky):
    def run(self, stop: threading.Event) -> None:
        raise ValueError("a bug, not an outage")


@pytest.fixture
def runner_process_state() -> Iterator[None]:
    """_run_loop installs signal handlers and a log filter: give the test process its own back."""
    import os

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    connect_timeout = os.environ.get("PGCONNECT_TIMEOUT")
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    if connect_timeout is None:
        os.environ.pop("PGCONNECT_TIMEOUT", None)
    else:
        os.environ["PGCONNECT_TIMEOUT"] = connect_timeout
    for handler in logging.getLogger().handlers:
        handler.removeFilter(resilience._SHARED_FILTER)


def test_a_component_failed_by_its_database_is_rebuilt_after_a_backoff(
    settings: Settings,
    runner_process_state: None,
) -> None:
    from services.runners import _run_loop

    Flaky.lives, Flaky.closed = [], 0
    _run_loop(settings, Flaky)
    assert len(Flaky.lives) == 2 and Flaky.closed == 2
    assert Flaky.lives[1] - Flaky.lives[0] >= 0.35  # it backed off before the second life


def test_a_bug_still_stops_the_component(settings: Settings, runner_process_state: None) -> None:
    from services.runners import _run_loop

    Flaky.lives, Flaky.closed = [], 0
    with pytest.raises(ValueError, match="a bug"):
        _run_loop(settings, Broken)
    assert len(Flaky.lives) == 1 and Flaky.closed == 1


def test_a_stop_that_hangs_ends_the_process_anyway() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nfrom services.resilience import exit_soon\nexit_soon(0.5)\ntime.sleep(30)\n",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == resilience.FORCED_EXIT_CODE, done.stderr
    assert time.monotonic() - started < 10


def test_a_projector_started_before_its_broker_waits_for_it_then_runs(settings: Settings, tmp_path: Any) -> None:
    """faust's worker exits when it cannot bootstrap; the projector process stays (same
    pid), backs off, starts again, and runs once the broker is there."""
    import os

    from services.bus import ensure_topics
    from services.embedded import EmbeddedKafka, free_port

    port = free_port()
    env = {
        **os.environ,
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",  # nothing listens there yet
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "VERKOSTO_EVENTS_TOPIC": settings.events_topic,
        "VERKOSTO_PROJECTOR_GROUP": settings.projector_group,
        "VERKOSTO_DATA_DIR": str(tmp_path),
    }
    log_path = tmp_path / "projector.log"

    def wait_for(text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"no {text!r} in: {log_path.read_text(errors='replace')[-3000:]}"
            time.sleep(0.2)

    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "projector"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    kafka = EmbeddedKafka(port=port, log_path=tmp_path / "tansu.log")
    try:
        wait_for("the broker is unavailable", 30)
        wait_for("the projector starts again", 5)
        time.sleep(2.0)
        assert process.poll() is None  # still the same process, waiting
        kafka.start()
        ensure_topics(settings.model_copy(update={"kafka_bootstrap": kafka.bootstrap}))
        wait_for("[^Worker]: Ready", 90)
        started = time.monotonic()
        process.terminate()
        process.wait(10)
        assert time.monotonic() - started < 5.0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        kafka.stop()
