"""Apache Kafka itself (KRaft mode, no ZooKeeper) on the machine's Java, started by Python.

The jars come from Maven Central (deploy/kafka/pom.xml), copied once into a cache by
``kafka_libs()``; no binary distribution is downloaded. ``ApacheKafka`` is one combined
broker/controller on loopback with the same interface as ``services.embedded.EmbeddedKafka``
(``start() -> bootstrap``, ``stop()``, ``bootstrap``, ``process``, ``log_path``), but its log
is on disk and kept between runs: a restarted broker still has every acknowledged message.
``ApacheKafkaCluster`` runs n such nodes sharing one controller quorum, for failure tests.

Nothing happens at import time; Java and Maven are needed only when a broker is started.
"""

from __future__ import annotations

import base64
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.embedded import _die_with_parent, free_port
from services.kafka_libs import KafkaUnavailable, kafka_libs, require

log = logging.getLogger(__name__)

__all__ = ["ApacheKafka", "KafkaUnavailable", "kafka_libs", "random_cluster_id"]

# A 2-core machine shared with PostgreSQL and the tests: a small heap and few GC and JIT
# threads. Tiered compilation stopped at C1 starts the broker faster and uses less CPU;
# throughput is plenty for tests and a single-machine deployment.
DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms128m",
    "-Xmx384m",
    "-XX:MaxDirectMemorySize=128m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:ParallelGCThreads=2",
    "-XX:ConcGCThreads=1",
    "-XX:CICompilerCount=2",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Xss512k",
    "-Djava.awt.headless=true",
    "-Dcom.sun.management.jmxremote=false",
)
_TOOL_JVM_OPTIONS: tuple[str, ...] = (
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by services/kafka_broker.py: everything to stdout, which goes to the log file. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="WARN"/>
  </Loggers>
</Configuration>
"""


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, as
    ``kafka-storage random-uuid`` prints (never starting with '-', which reads as a flag)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _properties(values: Mapping[str, Any]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 20_000))
        return "\n".join(handle.read().decode(errors="replace").splitlines()[-lines:])


def _describe_cluster(bootstrap: str, timeout_ms: int = 5000) -> dict[str, Any]:
    from kafka import KafkaAdminClient  # imported here: no import-time work

    client = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=timeout_ms,
    )
    try:
        return dict(client.describe_cluster())
    finally:
        client.close()


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ApacheKafka:
    """One Apache Kafka node, broker and KRaft controller in one JVM, on loopback.

    Everything lives under ``data_dir``: ``server.properties``, ``log4j2.xml`` and the log
    (``data_dir/log``, formatted on first start only, when it has no ``meta.properties``).
    Starting again on the same directory brings back every topic and message.

    For a cluster, pass ``node_id``, the shared ``voters`` string
    (``id@host:port,...``) and ``cluster_id``; ``ApacheKafkaCluster`` does.

    Ports are free loopback ports picked once per instance (pass ``port`` to fix the
    bootstrap address across runs). The JVM gets SIGTERM when the *thread* that started it
    ends (PR_SET_PDEATHSIG is per thread): start it from a thread that lives as long as it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        log_path: Path | None = None,
        *,
        controller_port: int | None = None,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        config: Mapping[str, Any] | None = None,
        jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS,
        libs: Path | None = None,
        start_timeout_s: float = 90.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.log_path = log_path if log_path is not None else self.data_dir / "kafka.log"
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id
        self.config = dict(config or {})
        self.jvm_options = tuple(jvm_options)
        self.libs = libs
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None

    # -- addresses and files ---------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def server_properties(self) -> dict[str, Any]:
        voters = len(self.voters.split(","))
        replicas = min(3, voters)
        values: dict[str, Any] = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.log_dir,
            "metadata.log.dir": self.log_dir,
            # Internal topics: replicated as far as the cluster allows.
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(2, replicas),
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min(2, replicas),
            "default.replication.factor": replicas,
            "num.partitions": 3,
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            # Few threads: this shares a small machine.
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "num.replica.fetchers": 1,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
            "log.index.size.max.bytes": 1024 * 1024,
            "log.segment.bytes": 64 * 1024 * 1024,
            # Fence a dead broker quickly so leadership moves within seconds.
            "broker.heartbeat.interval.ms": 500,
            "broker.session.timeout.ms": 3000,
            "replica.lag.time.max.ms": 10_000,
            "unclean.leader.election.enable": "false",
        }
        values.update(self.config)
        return values

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(_properties(self.server_properties()))
        (self.data_dir / "log4j2.xml").write_text(_LOG4J2)

    def _java(self, options: tuple[str, ...], main: str, *args: str) -> list[str]:
        libs = kafka_libs(self.libs)
        return [
            require("java"),
            *options,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def format(self) -> None:
        """Formats the log directory (only ever on first start)."""
        cluster_id = self.cluster_id or random_cluster_id()
        self.cluster_id = cluster_id
        command = self._java(
            _TOOL_JVM_OPTIONS,
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(self.properties_path),
            "--cluster-id",
            cluster_id,
        )
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        self._append_log(f"$ kafka-storage format --cluster-id {cluster_id}\n{result.stdout}{result.stderr}")
        if result.returncode != 0 or not self.formatted():
            raise KafkaUnavailable(f"formatting {self.log_dir} failed:\n{result.stdout}{result.stderr}")

    def _append_log(self, text: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")

    # -- life cycle --------------------------------------------------------------

    def launch(self) -> None:
        """Writes the configuration, formats the log if new, and starts the JVM
        (without waiting for it to serve)."""
        if self.alive():
            return
        self.write_config()
        if not self.formatted():
            self.format()
        command = self._java(self.jvm_options, "kafka.Kafka", str(self.properties_path))
        output = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=_die_with_parent,  # and it dies with us if we are killed
            )
        finally:
            output.close()
        self.started_at = time.monotonic()

    def wait_ready(self, brokers: int = 1, timeout_s: float | None = None) -> None:
        """Until the broker answers metadata with ``brokers`` live brokers and a controller."""
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        last: object = None
        while True:
            if not self.alive():
                code = self.process.returncode if self.process is not None else None
                raise KafkaUnavailable(
                    f"Kafka node {self.node_id} exited ({code}) while starting; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if _listening(self.port):
                try:
                    cluster = _describe_cluster(self.bootstrap, timeout_ms=3000)
                    live = [b for b in cluster.get("brokers", []) if not b.get("is_fenced", False)]
                    if len(live) >= brokers and cluster.get("controller_id", -1) >= 0:
                        return
                    last = cluster
                except Exception as error:  # not ready yet: NoBrokersAvailable, timeouts...
                    last = error
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"Kafka node {self.node_id} did not become ready ({last!r}); "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.2)

    def start(self) -> str:
        self.launch()
        self.wait_ready()
        return self.bootstrap

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL, as a crash: no controlled shutdown, no flush."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL if it takes too long."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("Kafka node %s ignored SIGTERM for %ss; killing it", self.node_id, timeout_s)
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> str:
        """Stops it and starts it again on the same ports and data: nothing is lost."""
        self.stop()
        return self.start()

    def memory_rss_bytes(self) -> int | None:
        """Resident memory of the JVM (Linux), for reports."""
        if not self.alive():
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None
