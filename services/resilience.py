"""Living with lost infrastructure: naming the dependency behind an error, backing off
before trying again, saying so in the log once per interval rather than per attempt, and
stopping on time whatever a dependency is doing."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

DATABASE = "database"
BROKER = "broker"
STOP_WITHIN_S = 4.0  # a component asked to stop is gone within this, finished or not
FORCED_EXIT_CODE = 143  # 128 + SIGTERM: stopped by a signal, without finishing cleanly
LOG_INTERVAL_S = 10.0
# Connection exceptions, the server shutting down or starting up, too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _database_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from eventsourcing import persistence

    # PoolTimeout is a psycopg.OperationalError; eventsourcing re-raises psycopg's errors
    # as its own classes of the same names.
    return (psycopg.OperationalError, psycopg.InterfaceError, persistence.OperationalError, persistence.InterfaceError)


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kafka.errors import KafkaError

    return (KafkaError,)


def dependency_of(error: BaseException) -> str | None:
    """``database`` or ``broker`` when the error (or one it was raised from) means that
    dependency is unreachable or failing; None for anything else (a bug, bad input)."""
    database, broker = _database_errors(), _broker_errors()
    found: str | None = None
    for link in _chain(error):
        sqlstate = getattr(link, "sqlstate", None)
        if sqlstate and not sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return None  # the server answered: a deadlock, a lock timeout, a bad query
        if isinstance(link, database):
            return DATABASE  # also beneath a Kafka error (a rebalance callback that queried)
        if isinstance(link, broker) or type(link).__module__.startswith(("aiokafka", "kafka")):
            found = found or BROKER
        elif getattr(link, "dependency", None) in (DATABASE, BROKER):
            found = found or link.dependency  # an inner layer's own error naming its cause
    return found


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s, … up to ``maximum`` (each try is
    cheap: a refused connection), so a dependency that is back is used within seconds."""

    def __init__(self, initial: float = 0.5, maximum: float = 5.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempts = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempts = 0


class RateLimitedLog:
    """Logs a failure at most once per ``interval_s`` per key, then says how many
    repeats it left out; ``recovered`` says once that the trouble is over."""

    def __init__(self, logger: logging.Logger, interval_s: float = LOG_INTERVAL_S) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def failure(self, key: str, msg: str, *args: Any, level: int = logging.WARNING, exc_info: Any = None) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            suppressed = self._suppressed.pop(key, 0)
            self._last[key] = now
        if suppressed:
            msg = f"{msg} ({suppressed} more like this in the last {self.interval_s:g} s)"
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def recovered(self, key: str, msg: str, *args: Any) -> None:
        with self._lock:
            was_failing = self._last.pop(key, None) is not None
            suppressed = self._suppressed.pop(key, 0)
        if was_failing:
            if suppressed:
                msg = f"{msg} (after {suppressed} more failures not logged)"
            self.logger.info(msg, *args)


class RepeatFilter(logging.Filter):
    """For handlers: a warning or error with the same logger, level, message template and
    exception type passes once per interval; the next one that passes says how many were
    left out. Client libraries retrying a lost connection (aiokafka, kafka-python,
    psycopg's pool) otherwise write thousands of identical lines."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._windows: dict[tuple[Any, ...], list[float]] = {}  # key -> [start, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_verkosto_repeat", None)
        if decided is not None:  # the same record reaching a second handler
            return bool(decided)
        verdict = self._decide(record)
        record._verkosto_repeat = verdict  # type: ignore[attr-defined]
        return verdict

    def _decide(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window[0] < self.interval_s:
                window[1] += 1
                return False
            suppressed = int(window[1]) if window else 0
            self._windows[key] = [now, 0]
            if len(self._windows) > 1000:  # forget the oldest quiet keys
                for old in sorted(self._windows, key=lambda k: self._windows[k][0])[:500]:
                    del self._windows[old]
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} more like this in the last {self.interval_s:g} s]"
        return True


def install_repeat_filter(logger: logging.Logger | None = None) -> None:
    """Puts one RepeatFilter on every handler of the (root) logger, once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(_SHARED_FILTER)


_SHARED_FILTER = RepeatFilter()
_watchdog_armed = threading.Event()


def exit_soon(within_s: float = STOP_WITHIN_S, code: int = FORCED_EXIT_CODE) -> None:
    """Arms a watchdog (once): if the process is still alive ``within_s`` from now, it
    ends without further cleanup. A stop that waits on a lost dependency stays short."""
    if _watchdog_armed.is_set():
        return
    _watchdog_armed.set()

    def watch() -> None:
        time.sleep(within_s)
        logging.getLogger(__name__).warning("still stopping after %.0f s; exiting now", within_s)
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # noqa: S110  (exiting anyway)
                pass
        os._exit(code)

    threading.Thread(target=watch, name="stop-watchdog", daemon=True).start()
