"""The servers a benchmark runs against, started here unless configured.

VERKOSTO_DATABASE_URL / VERKOSTO_KAFKA_BOOTSTRAP name existing servers. Otherwise an
embedded PostgreSQL, and Apache Kafka (services/kafka_broker.ApacheKafka, as the test suite
and `verkosto up` use) when Java and its jars are there, else the embedded Tansu.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.embedded import EmbeddedKafka, EmbeddedPostgres
from services.settings import tansu_environment


@dataclass(frozen=True)
class Servers:
    database_url: str
    bootstrap: str
    broker: str  # "Apache Kafka", "Tansu" or "configured"


def _apache_kafka(stack: contextlib.ExitStack, tmp: Path) -> str | None:
    if shutil.which("java") is None:
        return None
    from services.kafka_broker import ApacheKafka, KafkaUnavailable

    # Started from the main thread, which lives as long as the benchmark: the JVM's
    # PR_SET_PDEATHSIG is tied to the thread that started it.
    kafka = ApacheKafka(tmp / "kafka")
    try:
        kafka.start()
    except KafkaUnavailable as error:
        kafka.stop()
        print(f"Apache Kafka cannot start ({str(error).splitlines()[0]}); using Tansu")
        return None
    stack.callback(kafka.stop)
    return kafka.bootstrap


@contextlib.contextmanager
def servers(broker: str = "auto") -> Iterator[Servers]:
    """``broker``: "auto" (Apache Kafka if Java is present, else Tansu), "kafka" or "tansu"."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="verkosto-bench-")))
        database_url = os.environ.get("VERKOSTO_DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(tmp / "pg")
            database_url = postgres.start()
            stack.callback(postgres.stop)
        bootstrap = os.environ.get("VERKOSTO_KAFKA_BOOTSTRAP")
        name = "configured"
        if not bootstrap and broker in ("auto", "kafka"):
            bootstrap = _apache_kafka(stack, tmp)
            name = "Apache Kafka"
        if not bootstrap:
            if broker == "kafka":
                raise SystemExit("Apache Kafka cannot start here: run `make kafka`, or use --broker tansu")
            # Tansu holds a group join for part of the rebalance timeout: this process and
            # every one it starts use the short timeouts (as the test suite does).
            os.environ.update(tansu_environment())
            kafka = EmbeddedKafka()
            bootstrap = kafka.start()
            stack.callback(kafka.stop)
            name = "Tansu"
        yield Servers(database_url, bootstrap, name)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Sets VERKOSTO_* variables for code run in this process (the CLI reads them), then
    puts back what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
