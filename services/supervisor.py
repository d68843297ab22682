"""`verkosto up`: start the infrastructure (embedded unless configured), then every
component as a child process; restart a child that dies; stop all in order on Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
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
from services.embedded import EmbeddedKafka, EmbeddedPostgres, free_port, wait_for_port
from services.settings import Settings

log = logging.getLogger(__name__)
COMPONENTS = ("api", "ingest", "relay", "projector")


@dataclass
class Child:
    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        log_file = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.name],
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor decides the order of stopping
        )
        log_file.close()

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def bootstrap(settings: Settings, console: Console) -> str:
    """Migrations, topics and the development token; returns the token."""
    from services.auth import issue_token
    from services.db import connect, migrate

    database_url = settings.require_database_url()
    migrate(database_url, settings.db_schema)
    ensure_topics(settings)
    token_file = settings.data_dir / "dev-token"
    with connect(database_url, autocommit=True) as conn:
        if token_file.exists():
            from services.auth import authenticate

            token = token_file.read_text().strip()
            if authenticate(conn, settings.db_schema, token) is not None:
                return token
        token = issue_token(conn, settings.db_schema, "developer", ["admin"])
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token


def up(settings: Settings, console: Console | None = None, demo: bool = False) -> int:
    console = console or Console()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    postgres = EmbeddedPostgres(data_dir / "pg") if not settings.database_url else None
    kafka = EmbeddedKafka(log_path=logs / "tansu.log") if not settings.kafka_bootstrap else None
    children: list[Child] = []
    try:
        if postgres:
            settings.database_url = postgres.start()
        if kafka:
            settings.kafka_bootstrap = kafka.start()
        if settings.api_port == 0:
            settings.api_port = free_port()
        token = bootstrap(settings, console)
        env = {
            **os.environ,
            "VERKOSTO_DATABASE_URL": settings.require_database_url(),
            "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
            "VERKOSTO_API_PORT": str(settings.api_port),
            "VERKOSTO_DATA_DIR": str(data_dir),
            "VERKOSTO_PARENT_PID": str(os.getpid()),
        }
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
            "pid": os.getpid(),
        }
        (data_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")
        if demo:
            load_demo_if_empty(settings, console)
        show(console, endpoints, token, data_dir)
        while not stop.wait(0.5):
            for child in children:
                if child.process is not None and child.process.poll() is not None:
                    restart(child, console, stop)
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

    with connect(settings.require_database_url()) as conn:
        row = conn.execute(f'SELECT count(*) AS n FROM "{settings.db_schema}".verkosto_events').fetchone()
    if row and row["n"]:
        return
    with console.status("Loading the demo organisation through Kafka…"):
        accepted, refused = load(settings)
    console.print(f"Demo loaded: {accepted} commands recorded, {refused} refused.")


def restart(child: Child, console: Console, stop: threading.Event) -> None:
    now = time.monotonic()
    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
    code = child.process.returncode if child.process else None
    console.print(f"[yellow]{child.name} exited ({code}); restarting. See {child.log_path}[/yellow]")
    # Back off when it keeps failing, so a broken dependency does not spin the CPU.
    if len(child.restarts) > 1 and stop.wait(min(30, 2 ** (len(child.restarts) - 1))):
        return
    child.start()


def show(console: Console, endpoints: dict[str, object], token: str, data_dir: Path) -> None:
    table = Table(title="Verkosto is up", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("API", str(endpoints["api_url"]))
    table.add_row("OpenAPI", f"{endpoints['api_url']}/docs")
    table.add_row("Kafka bootstrap", str(endpoints["kafka_bootstrap"]))
    table.add_row("PostgreSQL", str(endpoints["database_url"]))
    table.add_row("Development token", token)
    table.add_row("Data and logs", str(data_dir))
    console.print(table)
    console.print("Press Ctrl-C to stop.")
