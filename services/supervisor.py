"""`verkosto up`: start the infrastructure (embedded unless configured), then every
component as a child process; restart a child that dies, and an embedded PostgreSQL or
broker that dies; stop all in order on Ctrl-C.

The embedded broker is Apache Kafka (services/kafka_broker.py) with its log in
``<data_dir>/kafka`` and fixed ports kept there, so nothing acknowledged is lost and the
bootstrap address stays the same between runs; without Java (or the jars) it is Tansu,
which keeps messages in memory only, and `verkosto up` says so loudly.

Children get SIGTERM from the kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``,
set in the child before it runs), so nothing is left orphaned, and a component started
by hand with the same environment is never stopped by it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.bus import ensure_topics
from services.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    _die_with_parent,
    become_subreaper,
    free_port,
    reap_orphans,
    wait_for_port,
)
from services.kafka_broker import ApacheKafka
from services.private_files import private_dir, write_private
from services.resilience import install_repeat_filter
from services.settings import Settings, tansu_environment

log = logging.getLogger(__name__)
COMPONENTS = ("api", "ingest", "relay", "projector")
# Their consumer groups, producers and topic ids belong to one broker: a new (empty)
# broker means starting them afresh, which also makes the relay refill the events topic.
KAFKA_CLIENTS = ("ingest", "relay", "projector")
TANSU_WARNING = (
    "The embedded broker is Tansu, which keeps messages in memory only: commands produced "
    "to the bus and not yet recorded are LOST when it restarts. Install Java 17+ (and Maven, "
    "or the Kafka jars: `make kafka`) for the durable default, Apache Kafka."
)


@dataclass
class Child:
    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    due: float | None = None  # when a child that died is started again (backoff)

    def start(self) -> None:
        log_file = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.name],
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor decides the order of stopping
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, libc loaded before fork)
        )
        log_file.close()
        self.due = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Broker:
    """The embedded broker and what it is: ``kind`` "kafka" (durable) or "tansu"."""

    def __init__(self, server: EmbeddedKafka | ApacheKafka, kind: str, warning: str | None = None) -> None:
        self.server = server
        self.kind = kind
        self.warning = warning

    @property
    def durable(self) -> bool:
        return self.kind == "kafka"


def _fixed_ports(directory: Path) -> tuple[int, int]:
    """The broker's and its controller's ports, chosen once and kept in ``ports.json``
    beside its log so the bootstrap address is the same on every run; chosen again (and
    said so) only if another program has taken one meanwhile."""
    path = directory / "ports.json"
    try:
        saved = json.loads(path.read_text())
        ports = int(saved["port"]), int(saved["controller_port"])
    except (OSError, ValueError, KeyError, TypeError):
        ports = None
    # A broker of this directory orphaned by a supervisor killed just now may still be
    # stopping (it got SIGTERM with its parent): its ports, and its log, free up shortly.
    deadline = time.monotonic() + 30.0
    while ports is not None and any(_taken(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.5)
    if ports is not None and not any(_taken(port) for port in ports):
        return ports
    if ports is not None:
        log.warning("the broker's ports %s are taken by another program; choosing new ones", ports)
    fresh = free_port(), free_port()
    while fresh[1] == fresh[0]:
        fresh = fresh[0], free_port()
    directory.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"port": fresh[0], "controller_port": fresh[1]}) + "\n")
    return fresh


def _taken(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def embedded_broker(settings: Settings, data_dir: Path, logs: Path, console: Console, strict: bool = False) -> Broker:
    """Apache Kafka in ``data_dir/kafka`` when ``settings.embedded_broker`` is "kafka" and
    Java and the jars are there; else Tansu, with a loud warning (unless ``strict``: a
    broker asked for by name that cannot run is an error)."""
    if settings.embedded_broker == "kafka":
        from services.kafka_broker import KafkaUnavailable, kafka_libs

        try:
            if shutil.which("java") is None:
                raise KafkaUnavailable("`java` is not on PATH")
            with console.status("Apache Kafka: finding its jars (fetched once from Maven Central)…"):
                libs = kafka_libs()
        except KafkaUnavailable as error:
            if strict:
                raise
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.warning("Apache Kafka is unavailable (%s); falling back to Tansu", reason)
            return Broker(
                EmbeddedKafka(log_path=logs / "tansu.log"),
                "tansu",
                f"Apache Kafka is unavailable ({reason}). {TANSU_WARNING}",
            )
        directory = data_dir / "kafka"
        port, controller_port = _fixed_ports(directory)
        return Broker(
            ApacheKafka(directory, port, logs / "kafka.log", controller_port=controller_port, libs=libs), "kafka"
        )
    return Broker(EmbeddedKafka(log_path=logs / "tansu.log"), "tansu", TANSU_WARNING)


def bootstrap(settings: Settings, console: Console) -> str:
    """Migrations, topics and the development token; returns the token."""
    from services.auth import issue_token
    from services.db import connect, migrate

    database_url = settings.require_database_url()
    migrate(database_url, settings.db_schema)
    ensure_topics(settings)
    token_file = private_dir(settings.data_dir) / "dev-token"
    with connect(database_url, autocommit=True) as conn:
        if token_file.exists():
            from services.auth import authenticate

            token = token_file.read_text().strip()
            if authenticate(conn, settings.db_schema, token) is not None:
                token_file.chmod(0o600)  # one an older version left readable to others
                return token
        token = issue_token(conn, settings.db_schema, "developer", ["admin"])
    write_private(token_file, token + "\n")  # 0600 from its first byte
    return token


def up(settings: Settings, console: Console | None = None, demo: bool = False, strict_broker: bool = False) -> int:
    console = console or Console()
    data_dir = settings.data_dir.resolve()
    private_dir(data_dir)  # 0700: it holds the token, the endpoints and the database
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    become_subreaper()  # the postmaster, once pg_ctl exits, stays in our family
    install_repeat_filter()

    postgres = EmbeddedPostgres(data_dir / "pg") if not settings.database_url else None
    broker = embedded_broker(settings, data_dir, logs, console, strict_broker) if not settings.kafka_bootstrap else None
    kafka = broker.server if broker else None
    children: list[Child] = []
    try:
        if broker is not None and broker.warning:
            loud(console, broker.warning)
        if postgres:
            settings = settings.model_copy(update={"database_url": postgres.start()})
        if kafka:
            # From this (the main) thread, which lives as long as the broker: the JVM's
            # PR_SET_PDEATHSIG is tied to the thread that started it.
            with console.status(f"Starting the embedded broker ({broker.kind})…"):  # type: ignore[union-attr]
                settings = settings.model_copy(update={"kafka_bootstrap": kafka.start()})
        if settings.api_port == 0:
            settings = settings.model_copy(update={"api_port": free_port()})
        token = bootstrap(settings, console)
        env = {
            **os.environ,
            "VERKOSTO_DATABASE_URL": settings.require_database_url(),
            "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
            "VERKOSTO_API_PORT": str(settings.api_port),
            "VERKOSTO_DATA_DIR": str(data_dir),
        }
        env.pop("VERKOSTO_PARENT_PID", None)  # older versions tied children to us with it
        if broker is not None and broker.kind == "tansu":
            # Tansu holds a group join for part of the rebalance timeout: short group
            # timeouts, unless set explicitly. Apache Kafka keeps the clients' defaults.
            env = {**tansu_environment(), **env}
        children = [Child(name, env, logs / f"{name}.log") for name in COMPONENTS]
        for child in children:
            child.start()
        wait_for_port(settings.api_port, timeout_s=60)
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        endpoints = {
            "api_url": api_url,
            "kafka_bootstrap": settings.kafka_bootstrap,
            "database_url": settings.database_url,
            "embedded": {"postgres": postgres is not None, "kafka": kafka is not None},
            "broker": broker.kind if broker is not None else "external",
            "durable_broker": broker.durable if broker is not None else None,
            "pid": os.getpid(),
        }
        if broker is not None and broker.warning:
            endpoints["warning"] = broker.warning
        write_private(data_dir / "endpoints.json", json.dumps(endpoints, indent=2) + "\n")
        if demo:
            load_demo_if_empty(settings, console)
        show(console, endpoints, token, data_dir)
        if broker is not None and broker.warning:
            loud(console, broker.warning)  # again, below the table, where it is seen
        while not stop.wait(0.5):
            keep_infrastructure(settings, postgres, kafka, children, console)
            for child in children:
                if child.process is not None and child.process.poll() is not None:
                    restart(child, console)
            keep = {c.process.pid for c in children if c.process is not None}
            if kafka and kafka.process is not None:
                keep.add(kafka.process.pid)
            reap_orphans(keep)
        console.print("[bold]Stopping…[/bold]")
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if kafka:
            kafka.stop()
        if postgres:
            postgres.stop()
        (data_dir / "endpoints.json").unlink(missing_ok=True)
        console.print("Stopped; data kept in", str(data_dir))


def load_demo_if_empty(settings: Settings, console: Console) -> None:
    from services.db import connect
    from services.demo import load
    from services.store import EventStore

    with connect(settings.require_database_url()) as conn:
        if EventStore(settings.db_schema).count(conn):
            return
    with console.status("Loading the demo organisation through Kafka…"):
        accepted, refused = load(settings)
    console.print(f"Demo loaded: {accepted} commands recorded, {refused} refused.")


def restart(child: Child, console: Console) -> None:
    """Starts a child that exited again, at once the first time and then with a growing
    pause (so a broken dependency does not spin the CPU); never blocks the watch loop."""
    now = time.monotonic()
    if child.due is None:
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        code = child.process.returncode if child.process else None
        pause = min(30, 2 ** (len(child.restarts) - 1)) if len(child.restarts) > 1 else 0
        console.print(f"[yellow]{child.name} exited ({code}); restarting in {pause} s. See {child.log_path}[/yellow]")
        child.due = now + pause
    if now >= child.due:
        child.start()


def loud(console: Console, warning: str) -> None:
    log.warning("%s", warning)
    console.print(f"[bold red]WARNING: {warning}[/bold red]")


def keep_infrastructure(
    settings: Settings,
    postgres: EmbeddedPostgres | None,
    kafka: EmbeddedKafka | ApacheKafka | None,
    children: list[Child],
    console: Console,
) -> None:
    """Starts an embedded PostgreSQL or broker that died, like any other child."""
    if postgres is not None and not postgres.alive():
        console.print("[yellow]PostgreSQL stopped; starting it again on the same data[/yellow]")
        log.warning("embedded PostgreSQL (pid %s) stopped; starting it again", postgres.pid())
        try:
            url = postgres.restart(timeout_s=20)
        except Exception as error:  # tried again on the next round
            console.print(f"[red]PostgreSQL did not start: {error}[/red]")
            return
        if url != settings.database_url:  # not expected: the socket directory is fixed
            console.print(f"[yellow]PostgreSQL moved to {url}; restarting the components[/yellow]")
            for child in children:
                child.env["VERKOSTO_DATABASE_URL"] = url
            restart_all(children, COMPONENTS)
        console.print("PostgreSQL is back")
    if isinstance(kafka, ApacheKafka) and not kafka.alive():
        restart_durable_broker(settings, kafka, console)
    elif kafka is not None and not kafka.alive():
        code = kafka.process.returncode if kafka.process is not None else None
        console.print(f"[yellow]The broker exited ({code}); starting an empty one on the same port[/yellow]")
        log.warning("embedded broker exited (%s); starting it again", code)
        # Its clients go first: none of them may reach the new broker with the old one's
        # group membership, producer id or offsets.
        clients = stop_all(children, KAFKA_CLIENTS)
        try:
            kafka.restart()
            ensure_topics(settings)
        except Exception as error:  # all of it tried again on the next round
            console.print(f"[red]The broker did not start: {error}[/red]")
            kafka.stop()
            return
        finally:
            for child in clients:
                child.start()
        console.print("The broker is back; the relay refills the events topic from the event store")


def restart_durable_broker(settings: Settings, kafka: ApacheKafka, console: Console) -> None:
    """Apache Kafka comes back on the same log, ports and cluster id: topics, their ids,
    committed offsets and every acknowledged message are still there, so its clients
    simply reconnect (nothing to recreate or refill, nobody to restart)."""
    code = kafka.process.returncode if kafka.process is not None else None
    console.print(f"[yellow]The broker exited ({code}); starting it again on its log[/yellow]")
    log.warning("embedded Apache Kafka exited (%s); starting it again on the same log", code)
    try:
        kafka.restart()  # from the main thread, as at first start
        ensure_topics(settings)  # nothing to do unless someone deleted one meanwhile
    except Exception as error:  # tried again on the next round
        console.print(f"[red]The broker did not start: {error}[/red]")
        kafka.stop()
        return
    console.print("The broker is back, with every message it had acknowledged")


def stop_all(children: list[Child], names: tuple[str, ...]) -> list[Child]:
    chosen = [c for c in children if c.name in names]
    for child in chosen:  # all asked at once: each stops within a few seconds
        if child.alive():
            child.process.terminate()  # type: ignore[union-attr]
    for child in chosen:
        child.stop()
    return chosen


def restart_all(children: list[Child], names: tuple[str, ...]) -> None:
    for child in stop_all(children, names):
        child.start()


def show(console: Console, endpoints: dict[str, object], token: str, data_dir: Path) -> None:
    table = Table(title="Verkosto is up", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("API", str(endpoints["api_url"]))
    table.add_row("OpenAPI", f"{endpoints['api_url']}/docs")
    table.add_row("Kafka bootstrap", str(endpoints["kafka_bootstrap"]))
    broker = {
        "kafka": "embedded Apache Kafka (durable, log in kafka/)",
        "tansu": "[bold red]embedded Tansu: IN MEMORY ONLY, commands on the bus are lost on restart[/bold red]",
        "external": "external (VERKOSTO_KAFKA_BOOTSTRAP)",
    }
    table.add_row("Broker", broker.get(str(endpoints.get("broker")), str(endpoints.get("broker"))))
    table.add_row("PostgreSQL", str(endpoints["database_url"]))
    table.add_row("Development token", token)
    table.add_row("Data and logs", str(data_dir))
    console.print(table)
    console.print("Press Ctrl-C to stop.")
